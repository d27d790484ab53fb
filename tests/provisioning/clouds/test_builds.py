"""The create-server flow against each REST fake, with a real sshd on
loopback standing in for the new machine's (the fakes give every node
127.0.0.1): node → running → inventory → ssh (host key pinned) → active
with the template's monitors; a lost create, a slow boot and 429s on the
way; a failed step retried from that step; destroy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infrawatch.provisioning import builds
from tests.conftest import Clients
from tests.credentials.sshd import SshServer, ssh_server
from tests.live import free_port
from tests.provisioning.clouds.fakes import serve_fake
from tests.provisioning.clouds.helpers import account, vault_key, wait_builds
from tests.provisioning.clouds.test_providers import IMAGES, REGIONS, SIZES

MONITORS = [{"name": "{server} ssh", "type": "tcp", "target": "{ip}:22"}]


@pytest.fixture
def sshd() -> Iterator[SshServer]:
    with ssh_server() as server:
        yield server


def create_body(kind: str, port: int, **fields: Any) -> dict[str, Any]:
    return {
        "provider_account": f"{kind}-main",
        "region": REGIONS[kind],
        "size": SIZES[kind],
        "image": IMAGES[kind],
        # No roles: the fake's machine is a loopback sshd, not a host to
        # configure (the lab test runs base and hardening for real).
        "base": False,
        "harden": False,
        "ssh_port": port,
        **fields,
    }


@pytest.mark.parametrize("kind", ["digitalocean", "linode", "vultr"])
async def test_servers_are_made_step_by_step_and_become_active_with_their_monitors(
    api: Clients, sshd: SshServer, kind: str
) -> None:
    async with serve_fake(kind) as cloud:
        cloud.faults.pending_seconds = 1.5  # `new` for a while
        cloud.faults.throttle = 2
        cloud.faults.lose_creates = 1  # the first create is made, then answers 500
        await account(api, cloud)
        key_id = await vault_key(api)
        template = await api.operator.post(
            "/api/v1/templates", json={"name": "web", "defaults": {"environment": "dev"}}
        )
        template_id = template.json()["id"]
        r = await api.operator.put(f"/api/v1/templates/{template_id}/monitors", json=MONITORS)
        assert r.status_code == 200, r.text
        r = await api.operator.post(
            "/api/v1/servers/create",
            json=create_body(
                kind,
                sshd.port,
                name_pattern="web-{n:02}",
                count=2,
                template="web",
                tags={"team": "core"},
            ),
        )
        assert r.status_code == 202, r.text
        made = r.json()["items"]
        assert [b["name"] for b in made] == ["web-01", "web-02"]
        assert all(b["status"] == "queued" and b["step"] == "node" for b in made)
        done = await wait_builds(api, [b["id"] for b in made])
        for build in done:
            assert build["status"] == "done", build
            assert set(build["steps_done"]) == set(builds.CREATE_STEPS)
            server = (await api.viewer.get(f"/api/v1/servers/{build['server_id']}")).json()
            assert server["lifecycle"] == "active" and server["provider"] == kind
            assert server["ip_address"] == "127.0.0.1" and server["region"] == REGIONS[kind]
            assert server["environment"] == "dev" and server["tags"] == {"team": "core"}
            assert server["attributes"]["node_id"] == build["node_id"]
            host_keys = (
                await api.operator.get(f"/api/v1/ssh-keys/host-keys?server_id={server['id']}")
            ).json()
            assert [k["port"] for k in host_keys] == [sshd.port]
            monitors = (await api.viewer.get(f"/api/v1/monitors?server_id={server['id']}")).json()
            assert [m["name"] for m in monitors["items"]] == [f"{server['name']} ssh"], monitors
        # One node per server, lost create and 429s notwithstanding.
        assert sorted(n.name for n in cloud.live()) == ["web-01", "web-02"]
        assert cloud.throttled == 2
        assignments = (await api.admin.get(f"/api/v1/ssh-keys/{key_id}/assignments")).json()
        assert {a["username"] for a in assignments} == {"infrawatch"}
        history = (await api.admin.get(f"/api/v1/servers/{done[0]['server_id']}/history")).json()
        moves = [
            (r["changes"]["before"]["lifecycle"], r["changes"]["after"]["lifecycle"])
            for r in reversed(history["items"])
            if r["action"] == "server.update"
        ]
        assert moves == [("planned", "provisioning"), ("provisioning", "active")], moves
        assert all(r["actor_username"].startswith("job:") for r in history["items"])

        # Destroy: decommissioning → gone at the provider → decommissioned.
        r = await api.operator.post(f"/api/v1/servers/{done[0]['server_id']}/destroy")
        assert r.status_code == 202, r.text
        (destroyed,) = await wait_builds(api, [done[0]["id"]])
        assert destroyed["status"] == "done" and destroyed["action"] == "destroy", destroyed
        server = (await api.viewer.get(f"/api/v1/servers/{done[0]['server_id']}")).json()
        assert server["lifecycle"] == "decommissioned"
        assert [n.name for n in cloud.live()] == ["web-02"]
        again = await api.operator.post(f"/api/v1/servers/{done[0]['server_id']}/destroy")
        assert again.status_code == 409


async def test_a_failed_step_fails_the_server_and_a_retry_starts_at_that_step(
    api: Clients, sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builds, "SSH_TIMEOUT", 1.0)
    async with serve_fake("digitalocean") as cloud:
        await account(api, cloud)
        await vault_key(api)
        closed = free_port()  # nothing listens: the ssh step cannot pass
        r = await api.operator.post(
            "/api/v1/servers/create", json=create_body("digitalocean", closed, name="db-1")
        )
        (build,) = r.json()["items"]
        (failed,) = await wait_builds(api, [build["id"]])
        assert failed["status"] == "failed" and failed["step"] == "ssh", failed
        assert f"127.0.0.1:{closed}" in failed["error"]
        server = (await api.viewer.get(f"/api/v1/servers/{failed['server_id']}")).json()
        assert server["lifecycle"] == "failed"
        # The operator fixes what was wrong and retries: no second node.
        r = await api.operator.patch(
            f"/api/v1/servers/{server['id']}", json={"ssh_port": sshd.port}
        )
        assert r.status_code == 200, r.text
        r = await api.operator.post(f"/api/v1/server-builds/{build['id']}/retry")
        assert r.status_code == 202, r.text
        assert r.json()["step"] == "ssh"
        (retried,) = await wait_builds(api, [build["id"]])
        assert retried["status"] == "done", retried
        assert retried["node_id"] == failed["node_id"] and len(cloud.live()) == 1
        server = (await api.viewer.get(f"/api/v1/servers/{server['id']}")).json()
        assert server["lifecycle"] == "active"
        assert (
            await api.operator.post(f"/api/v1/server-builds/{build['id']}/retry")
        ).status_code == 409


async def test_bad_create_requests_name_the_field_and_queue_nothing(api: Clients) -> None:
    async with serve_fake("vultr") as cloud:
        await account(api, cloud)
        body = create_body("vultr", 22, name="ok-1")
        cases = [
            ({"provider_account": "nope"}, 404),
            ({"name": "Bad_Name"}, 422),
            ({"name_pattern": "w-{n}", "count": 2}, 422),  # name and name_pattern
            ({"count": 3}, 422),  # count without a pattern
            ({"name": None, "name_pattern": "a{n:0}"}, 422),  # not a host name once rendered
            ({"stack": "nope"}, 422),
            ({"vars": {"x": 1}}, 422),
            ({"template": "nope"}, 404),
            ({"ssh_port": 0}, 422),
        ]
        for change, wanted in cases:
            r = await api.operator.post("/api/v1/servers/create", json={**body, **change})
            assert r.status_code == wanted, (change, r.text)
        # No login key in the vault yet: said, with the field.
        r = await api.operator.post("/api/v1/servers/create", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "key_id"]
        assert (await api.viewer.get("/api/v1/server-builds")).json()["items"] == []
        assert (await api.viewer.post("/api/v1/servers/create", json=body)).status_code == 403
        await vault_key(api)
        first = await api.operator.post(
            "/api/v1/servers/create", json=body, headers={"Idempotency-Key": "k1"}
        )
        replay = await api.operator.post(
            "/api/v1/servers/create", json=body, headers={"Idempotency-Key": "k1"}
        )
        assert first.status_code == replay.status_code == 202
        assert first.json()["items"][0]["id"] == replay.json()["items"][0]["id"]
        taken = await api.operator.post("/api/v1/servers/create", json=body)
        assert taken.status_code == 409 and "ok-1" in taken.json()["detail"]

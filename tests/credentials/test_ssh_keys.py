"""SSH keys against a real OpenSSH server on 127.0.0.1: generation and
import, connection tests (trust on first use, a changed host key),
rotation that never locks anyone out, and RBAC. Jobs run on the app's own
embedded worker, as in `infrawatch serve`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import asyncssh
import pytest
from sqlalchemy import text

from infrawatch.core.db import Database
from infrawatch.credentials import keys as credential_keys
from tests.credentials.sshd import SshServer, ssh_server
from tests.monitoring.helpers import create_server, eventually


@pytest.fixture
def sshd() -> Iterator[SshServer]:
    with ssh_server() as server:
        yield server


async def wait_job(api: Any, job_id: str, timeout: float = 60) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        job = (await api.admin.get(f"/api/v1/jobs/{job_id}")).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    result: dict[str, Any] = await eventually(probe, timeout=timeout, interval=0.2)
    return result


async def private_key(app: Any, key_id: str) -> str:
    """Straight from the vault, as a job would: the API never returns it."""
    runtime = app.state.runtime
    async with runtime.db.unit_of_work(write=False) as session:
        key = await credential_keys.require_key(session, uuid.UUID(key_id))
        return credential_keys.private_key_of(key, runtime.keyring)


async def server_for(api: Any, sshd: SshServer) -> str:
    response = await api.operator.post(
        "/api/v1/servers",
        json={
            "name": f"ssh-{uuid.uuid4().hex[:6]}",
            "ip_address": sshd.host,
            "ssh_port": sshd.port,
            "lifecycle": "active",
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def key_on_server(api: Any, db: Database, sshd: SshServer, **create: Any) -> tuple[str, str]:
    """A generated key, authorized on the test server and assigned to it."""
    response = await api.admin.post(
        "/api/v1/ssh-keys", json={"name": f"k-{uuid.uuid4().hex[:6]}", **create}
    )
    assert response.status_code == 201, response.text
    key = response.json()
    sshd.authorize(key["public_key"])
    server_id = await server_for(api, sshd)
    assigned = await api.admin.post(
        f"/api/v1/ssh-keys/{key['id']}/assignments",
        json={"server_id": server_id, "username": sshd.user},
    )
    assert assigned.status_code == 201, assigned.text
    assert assigned.json()["port"] == sshd.port
    return key["id"], server_id


async def run_test(api: Any, key_id: str, server_id: str) -> dict[str, Any]:
    started = await api.operator.post(
        f"/api/v1/ssh-keys/{key_id}/test", json={"server_id": server_id}
    )
    assert started.status_code == 202, started.text
    return await wait_job(api, started.json()["job_id"])


async def test_keys_are_generated_and_imported_and_the_private_part_never_leaves(
    api: Any, app: Any, db: Database
) -> None:
    ed = await api.admin.post("/api/v1/ssh-keys", json={"name": "deploy"})
    assert ed.status_code == 201, ed.text
    body = ed.json()
    assert (body["type"], body["algorithm"], body["status"]) == ("ed25519", "ssh-ed25519", "active")
    assert body["fingerprint"].startswith("SHA256:")
    assert "private" not in " ".join(body).lower()
    rsa = await api.admin.post("/api/v1/ssh-keys", json={"name": "legacy", "type": "rsa"})
    assert rsa.status_code == 201 and rsa.json()["bits"] == 4096

    original = asyncssh.generate_private_key("ssh-ed25519")
    imported = await api.admin.post(
        "/api/v1/ssh-keys",
        json={
            "name": "imported",
            "private_key": original.export_private_key("openssh", passphrase="s3cret").decode(),
            "passphrase": "s3cret",
        },
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["fingerprint"] == original.get_fingerprint("sha256")
    assert imported.json()["origin"] == "imported"

    wrong = await api.admin.post(
        "/api/v1/ssh-keys",
        json={
            "name": "wrong",
            "private_key": original.export_private_key("openssh", passphrase="s3cret").decode(),
            "passphrase": "nope",
        },
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "passphrase"]
    garbage = await api.admin.post(
        "/api/v1/ssh-keys", json={"name": "garbage", "private_key": "not a key"}
    )
    assert garbage.status_code == 422
    assert garbage.json()["detail"][0]["loc"] == ["body", "private_key"]
    duplicate = await api.admin.post("/api/v1/ssh-keys", json={"name": "deploy"})
    assert duplicate.status_code == 409

    public = await api.viewer.get(f"/api/v1/ssh-keys/{body['id']}/public-key")
    assert public.status_code == 200 and public.text.strip() == body["public_key"]
    listed = (await api.viewer.get("/api/v1/ssh-keys")).json()
    assert {k["name"] for k in listed} == {"deploy", "legacy", "imported"}

    secret_pem = await private_key(app, body["id"])
    async with db.unit_of_work(write=False) as session:
        audit = " ".join(
            str(r) for r in (await session.execute(text("SELECT * FROM audit_records"))).all()
        )
    assert "PRIVATE KEY" not in audit and secret_pem.splitlines()[1] not in audit
    for response in (ed, rsa, imported, public):
        assert "PRIVATE KEY" not in response.text


async def test_operators_test_connections_but_only_admins_manage_keys(api: Any) -> None:
    assert (await api.operator.post("/api/v1/ssh-keys", json={"name": "x"})).status_code == 403
    key = (await api.admin.post("/api/v1/ssh-keys", json={"name": "x"})).json()
    server_id = await create_server(api, "web-1")
    assign = {"server_id": server_id, "username": "deploy"}
    path = f"/api/v1/ssh-keys/{key['id']}"
    assert (await api.operator.post(f"{path}/assignments", json=assign)).status_code == 403
    assert (await api.admin.post(f"{path}/assignments", json=assign)).status_code == 201
    assert (await api.operator.post(f"{path}/rotate")).status_code == 403
    assert (await api.viewer.post(f"{path}/test", json={"server_id": server_id})).status_code == 403
    started = await api.operator.post(f"{path}/test", json={"server_id": server_id})
    assert started.status_code == 202
    bad_user = await api.admin.post(
        f"{path}/assignments", json={"server_id": server_id, "username": "no spaces"}
    )
    assert bad_user.status_code == 422 and bad_user.json()["detail"][0]["loc"][-1] == "username"
    assert (await api.admin.delete(path)).status_code == 409  # still assigned


async def test_a_connection_test_trusts_on_first_use_then_verifies(
    api: Any, db: Database, sshd: SshServer
) -> None:
    key_id, server_id = await key_on_server(api, db, sshd)
    first = await run_test(api, key_id, server_id)
    assert first["status"] == "succeeded", first
    result = first["result"]
    assert result["host_key"]["trust"] == "first use"
    assert set(result["timings_ms"]) == {"tcp", "handshake", "authentication", "command"}
    assert result["latency_ms"] > 0
    second = await run_test(api, key_id, server_id)
    assert second["result"]["host_key"]["trust"] == "verified"
    assert second["result"]["host_key"]["fingerprint"] == result["host_key"]["fingerprint"]
    assignments = (await api.viewer.get(f"/api/v1/ssh-keys/{key_id}/assignments")).json()
    assert assignments[0]["last_test_ok"] is True
    assert assignments[0]["host_key_fingerprint"] == result["host_key"]["fingerprint"]
    key = (await api.viewer.get(f"/api/v1/ssh-keys/{key_id}")).json()
    assert key["last_used_at"] is not None
    events = (await api.viewer.get(f"/api/v1/jobs/{first['id']}/events")).json()["events"]
    assert all("PRIVATE KEY" not in str(e) for e in events)


async def test_a_connection_test_names_the_failing_stage(
    api: Any, db: Database, sshd: SshServer
) -> None:
    key_id, server_id = await key_on_server(api, db, sshd)
    sshd.authorize()  # the key is no longer authorized
    denied = await run_test(api, key_id, server_id)
    assert denied["status"] == "failed"
    assert denied["error"].startswith("authentication: permission denied")
    assert denied["result"]["stage"] == "authentication"
    sshd.stop()
    refused = await run_test(api, key_id, server_id)
    assert refused["error"] == "tcp: connection refused"
    sshd.start()


async def test_a_changed_host_key_is_an_error_naming_both_fingerprints(
    api: Any, db: Database, sshd: SshServer
) -> None:
    key_id, server_id = await key_on_server(api, db, sshd)
    trusted = (await run_test(api, key_id, server_id))["result"]["host_key"]["fingerprint"]
    offered = sshd.new_host_key()
    changed = await run_test(api, key_id, server_id)
    assert changed["status"] == "failed"
    assert trusted in changed["error"] and offered in changed["error"]
    assert changed["result"]["stage"] == "host_key"
    # After the operator forgets the old host key, the new one is trusted.
    assert (await api.admin.delete(f"/api/v1/ssh-keys/host-keys/{server_id}")).status_code == 204
    again = await run_test(api, key_id, server_id)
    assert again["result"]["host_key"] == {
        "algorithm": "ssh-ed25519",
        "fingerprint": offered,
        "trust": "first use",
    }


async def test_rotation_replaces_the_key_on_the_server_and_retires_the_old_one(
    api: Any, app: Any, db: Database, sshd: SshServer
) -> None:
    key_id, server_id = await key_on_server(api, db, sshd, rotation_interval_days=30)
    old_private = await private_key(app, key_id)
    started = await api.admin.post(f"/api/v1/ssh-keys/{key_id}/rotate")
    assert started.status_code == 202
    job = await wait_job(api, started.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["result"]["rotated"] == 1 and job["result"]["failed"] == 0
    old = (await api.viewer.get(f"/api/v1/ssh-keys/{key_id}")).json()
    assert old["status"] == "retired" and old["replaced_by_id"]
    new = (await api.viewer.get(f"/api/v1/ssh-keys/{old['replaced_by_id']}")).json()
    assert new["status"] == "active" and new["name"] == old["name"]
    assert new["next_rotation_at"] is not None and new["rotation_interval_days"] == 30
    assert sshd.authorized_lines() == [new["public_key"]]
    assert await sshd.can_login(await private_key(app, new["id"]))
    assert not await sshd.can_login(old_private)
    assignments = (await api.viewer.get(f"/api/v1/ssh-keys/{new['id']}/assignments")).json()
    assert [a["server_id"] for a in assignments] == [server_id]


async def test_a_failed_rotation_leaves_the_old_key_working_and_a_rerun_finishes(
    api: Any, app: Any, db: Database, sshd: SshServer
) -> None:
    key_id, _ = await key_on_server(api, db, sshd)
    old_private = await private_key(app, key_id)
    sshd.authorized_keys.chmod(0o444)  # the login user cannot change it
    job = await wait_job(
        api, (await api.admin.post(f"/api/v1/ssh-keys/{key_id}/rotate")).json()["job_id"]
    )
    assert job["status"] == "failed"
    (server,) = job["result"]["servers"]
    assert (server["ok"], server["stage"]) == (False, "add_new_key")
    assert "Permission denied" in server["error"]
    assert await sshd.can_login(old_private)
    old = (await api.viewer.get(f"/api/v1/ssh-keys/{key_id}")).json()
    assert old["status"] == "active"  # nothing moved, so nothing changed
    successor = old["replaced_by_id"]
    assert (await api.viewer.get(f"/api/v1/ssh-keys/{successor}")).json()["status"] == "pending"

    sshd.authorized_keys.chmod(0o600)
    rerun = await wait_job(
        api, (await api.admin.post(f"/api/v1/ssh-keys/{key_id}/rotate")).json()["job_id"]
    )
    assert rerun["status"] == "succeeded", rerun
    assert (await api.viewer.get(f"/api/v1/ssh-keys/{key_id}")).json()["status"] == "retired"
    assert await sshd.can_login(await private_key(app, successor))
    assert not await sshd.can_login(old_private)


async def test_a_certificate_authority_signs_logins_without_authorized_keys(
    api: Any, app: Any, db: Database, sshd: SshServer
) -> None:
    ca = await api.admin.post("/api/v1/ssh-keys", json={"name": "user-ca", "purpose": "ca"})
    assert ca.status_code == 201 and ca.json()["purpose"] == "ca"
    sshd.trust_ca(ca.json()["public_key"])
    sshd.authorize()  # no key is authorized: only certificates get in
    key = (await api.admin.post("/api/v1/ssh-keys", json={"name": "via-ca"})).json()
    server_id = await server_for(api, sshd)
    not_a_login_key = await api.admin.post(
        f"/api/v1/ssh-keys/{ca.json()['id']}/assignments",
        json={"server_id": server_id, "username": sshd.user},
    )
    assert not_a_login_key.status_code == 409
    assigned = await api.admin.post(
        f"/api/v1/ssh-keys/{key['id']}/assignments",
        json={"server_id": server_id, "username": sshd.user, "ca_id": ca.json()["id"]},
    )
    assert assigned.status_code == 201 and assigned.json()["ca_id"] == ca.json()["id"]
    tested = await run_test(api, key["id"], server_id)
    assert tested["status"] == "succeeded", tested

    # An admin signs a short-lived certificate for a person's own key.
    person = asyncssh.generate_private_key("ssh-ed25519")
    signed = await api.admin.post(
        f"/api/v1/ssh-keys/{ca.json()['id']}/certificates",
        json={
            "public_key": person.export_public_key("openssh").decode(),
            "principals": [sshd.user],
            "valid_seconds": 300,
        },
    )
    assert signed.status_code == 201, signed.text
    body = signed.json()
    assert body["certificate"].startswith("ssh-ed25519-cert-v01@openssh.com ")
    cert = asyncssh.import_certificate(body["certificate"])
    async with asyncssh.connect(
        sshd.host,
        sshd.port,
        username=sshd.user,
        client_keys=[(person, cert)],
        known_hosts=None,
        agent_path=None,
        config=[],
    ) as conn:
        assert (await conn.run("id -un")).stdout.strip() == sshd.user
    wrong_principal = await api.admin.post(
        f"/api/v1/ssh-keys/{ca.json()['id']}/certificates",
        json={"key_id": key["id"], "principals": ["root"], "valid_seconds": 300},
    )
    rootcert = asyncssh.import_certificate(wrong_principal.json()["certificate"])
    private = asyncssh.import_private_key(await private_key(app, key["id"]))
    with pytest.raises(asyncssh.PermissionDenied):
        async with asyncssh.connect(
            sshd.host,
            sshd.port,
            username=sshd.user,
            client_keys=[(private, rootcert)],
            known_hosts=None,
            agent_path=None,
            config=[],
        ):
            pass
    not_a_ca = await api.admin.post(
        f"/api/v1/ssh-keys/{key['id']}/certificates",
        json={"key_id": key["id"], "principals": ["x"]},
    )
    assert not_a_ca.status_code == 409
    assert (
        await api.operator.post(
            f"/api/v1/ssh-keys/{ca.json()['id']}/certificates",
            json={"key_id": key["id"], "principals": ["x"]},
        )
    ).status_code == 403

    # Rotating a key that logs in through the CA edits no file.
    rotation = await wait_job(
        api, (await api.admin.post(f"/api/v1/ssh-keys/{key['id']}/rotate")).json()["job_id"]
    )
    assert rotation["status"] == "succeeded", rotation
    assert sshd.authorized_lines() == []
    assert (await api.viewer.get(f"/api/v1/ssh-keys/{key['id']}")).json()["status"] == "retired"

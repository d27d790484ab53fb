"""The create-server flow for real: the lab provider boots a Debian 12
host, the flow pins its host key and runs the base and hardening roles on
it, the server ends `active`; it hibernates (stopped) and wakes; destroy
removes the host."""

from __future__ import annotations

import pytest

from infrawatch.provisioning import builds
from infrawatch.provisioning.lab.hosts import Lab
from tests.conftest import Clients
from tests.provisioning.clouds.helpers import vault_key, wait_builds, wait_job
from tests.provisioning.conftest import _host_name

pytestmark = pytest.mark.hosts


async def test_a_lab_server_is_made_hardened_and_destroyed_through_the_flow(
    api: Clients, lab: Lab
) -> None:
    r = await api.admin.post(
        "/api/v1/provider-accounts", json={"name": "lab", "kind": "lab", "region": "lab"}
    )
    assert r.status_code == 201, r.text
    await vault_key(api)
    name = _host_name("build")
    r = await api.operator.post(
        "/api/v1/servers/create",
        json={"provider_account": "lab", "size": "nspawn", "image": "debian12", "name": name},
    )
    assert r.status_code == 202, r.text
    (build,) = r.json()["items"]
    try:
        (done,) = await wait_builds(api, [build["id"]], timeout=900)
        assert done["status"] == "done", done
        # (a JSON object: PostgreSQL keeps no key order)
        assert set(done["steps_done"]) == set(builds.CREATE_STEPS)
        run = (await api.viewer.get(f"/api/v1/provisioning/runs/{done['run_id']}")).json()
        assert run["status"] == "succeeded" and run["roles"] == [
            "base",
            "ssh_hardening",
            "firewall",
            "fail2ban",
            "auto_updates",
        ], run
        server = (await api.viewer.get(f"/api/v1/servers/{done['server_id']}")).json()
        assert server["lifecycle"] == "active" and server["provider"] == "lab"
        host = lab.get(name)
        assert host.pid is not None and server["ip_address"] == host.address
        assert host.build_tag == build["id"]

        # Hibernation for real: the lab stops the host, the server rests in
        # maintenance, and wakes running again with the same address.
        r = await api.operator.post(f"/api/v1/servers/{done['server_id']}/hibernate")
        slept = await wait_job(api, r.json()["job_id"])
        assert slept["status"] == "succeeded" and slept["result"]["result"] == "asleep (stop)", (
            slept
        )
        assert lab.get(name).pid is None
        server = (await api.viewer.get(f"/api/v1/servers/{done['server_id']}")).json()
        assert server["lifecycle"] == "maintenance"
        r = await api.operator.post(f"/api/v1/servers/{done['server_id']}/wake")
        woke = await wait_job(api, r.json()["job_id"])
        assert woke["status"] == "succeeded", woke
        assert lab.get(name).pid is not None
        server = (await api.viewer.get(f"/api/v1/servers/{done['server_id']}")).json()
        assert server["lifecycle"] == "active" and server["ip_address"] == host.address

        r = await api.operator.post(f"/api/v1/servers/{done['server_id']}/destroy")
        assert r.status_code == 202, r.text
        (gone,) = await wait_builds(api, [build["id"]], timeout=120)
        assert gone["status"] == "done" and gone["action"] == "destroy", gone
        assert name not in {h.name for h in lab.hosts()}
        server = (await api.viewer.get(f"/api/v1/servers/{done['server_id']}")).json()
        assert server["lifecycle"] == "decommissioned"
    finally:
        if name in {h.name for h in lab.hosts()}:
            lab.destroy(name)

"""The `agent` role on a real lab host: the agent runs as a systemd unit
with the server's own token and its first report reaches InfraWatch; a
second run changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from infrawatch.core.config import Settings
from infrawatch.provisioning.lab.hosts import Lab, LabHost
from tests.conftest import Clients
from tests.live import free_port, running_server
from tests.provisioning.conftest import ssh_to
from tests.provisioning.test_hardening import register, wait_for_run

pytestmark = pytest.mark.hosts


async def test_the_agent_role_installs_an_agent_whose_first_report_arrives(
    api: Clients,
    cli_env: dict[str, str],
    lab: Lab,
    fresh_host: LabHost,
    lab_key: asyncssh.SSHKey,
    tmp_path: Path,
    settings: Settings,
) -> None:
    server_id = await register(api, fresh_host, lab_key, "watched-1")
    gateway = lab._gateway()  # the lab bridge: the hosts' way to this machine
    port = free_port()
    # The same database and data dir (its master key) as the test's app.
    env = {
        **cli_env,
        "INFRAWATCH_DATA_DIR": str(settings.data_dir),
        "INFRAWATCH_DATABASE_URL": settings.effective_database_url,
        "INFRAWATCH_JOBS_ENABLED": "false",
    }
    with running_server(env, port=port, host=gateway) as (base, _):
        body: dict[str, Any] = {
            "servers": [server_id],
            "roles": ["agent"],
            "vars": {"agent_url": base},
            "snapshot": False,
        }
        r = await api.operator.post("/api/v1/provisioning/runs", json=body)
        assert r.status_code == 202, r.text
        run = await wait_for_run(api, r.json()["id"])
        log = (await api.admin.get(f"/api/v1/jobs/{run['job_id']}/events?limit=1000")).json()
        assert run["status"] == "succeeded", (
            run["hosts"][0].get("message"),
            [
                e.get("data")
                for e in log["events"]
                if e["kind"] == "error" or "failed" in e["message"]
            ],
        )
        for _ in range(120):
            latest = await api.viewer.get(f"/api/v1/servers/{server_id}/agent")
            if latest.status_code == 200:
                break
            await asyncio.sleep(0.5)
        else:
            key_file = tmp_path / "key"
            key_file.write_text(lab_key.export_private_key().decode())
            key_file.chmod(0o600)
            journal = ssh_to(
                fresh_host, key_file, "sudo journalctl -u infrawatch-agent --no-pager | tail -20"
            )
            raise AssertionError(
                f"no report; the agent's journal:\n{journal.stdout}{journal.stderr}"
            )
        readings = latest.json()["readings"]
        assert readings["hostname"] == fresh_host.name and readings["memory"]["total_bytes"] > 0
        # The token never shows in the run's log.
        events = (await api.admin.get(f"/api/v1/jobs/{run['job_id']}/events?limit=1000")).json()
        assert "iwa_" not in str(events)
        again = await wait_for_run(
            api, (await api.operator.post("/api/v1/provisioning/runs", json=body)).json()["id"]
        )
        assert again["status"] == "succeeded"
        assert again["hosts"][0]["recap"]["changed"] == 0, again["hosts"][0]
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/healthz")).status_code == 200

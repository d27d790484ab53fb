"""A worker killed with -9 in the middle of a run: another worker takes the
run over once the lease runs out, kills what the dead one left running, and
goes on from the roles that were not finished."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from infrawatch.core.config import Settings
from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.provisioning.test_hardening import HARDENING, all_events, register, wait_for_run

pytestmark = pytest.mark.hosts

ROOT = Path(__file__).resolve().parents[2]
LEASE = 6


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Only the worker processes of the test run jobs.
    return settings.model_copy(update={"jobs_enabled": False})


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    env.update(
        INFRAWATCH_DATA_DIR=str(settings.data_dir),
        INFRAWATCH_DATABASE_URL=settings.effective_database_url,
        INFRAWATCH_LAB_ENABLED="true",
        INFRAWATCH_LAB_DIR=str(settings.lab_dir),
        INFRAWATCH_JOBS_LEASE_SECONDS=str(LEASE),
        INFRAWATCH_ALERTING_ENABLED="false",
        PYTHONPATH=str(ROOT / "src"),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "worker"],
        cwd=settings.data_dir,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def leftovers(run_id: str) -> list[str]:
    found = subprocess.run(
        ["pgrep", "-f", f"provisioning/{run_id}/"], capture_output=True, text=True, check=False
    )
    return found.stdout.split()


async def test_a_run_whose_worker_is_killed_resumes_on_another_from_the_unfinished_roles(
    api: Clients,
    settings: Settings,
    fresh_host: LabHost,
    lab_key: asyncssh.SSHKey,
    tmp_path: Path,
) -> None:
    server_id = await register(api, fresh_host, lab_key, "web-9")
    r = await api.operator.post(
        "/api/v1/provisioning/runs",
        json={"servers": [server_id], "roles": HARDENING, "snapshot": False},
    )
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]
    first = start_worker(settings, tmp_path / "w1.log")
    second = None
    try:
        async with asyncio.timeout(300):
            while True:
                run = (await api.viewer.get(f"/api/v1/provisioning/runs/{run_id}")).json()
                done = run["hosts"][0]["done_roles"] if run["hosts"] else []
                if "ssh_hardening" in done:
                    break
                assert run["status"] in ("queued", "running"), run
                await asyncio.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = len(done)
        second = start_worker(settings, tmp_path / "w2.log")
        run = await wait_for_run(api, run_id, timeout=300)
        assert run["status"] == "succeeded", (run, (tmp_path / "w2.log").read_text()[-3000:])
        assert run["hosts"][0]["done_roles"] == HARDENING
        assert not leftovers(run_id)

        messages = [e["message"] for e in await all_events(api, run["job_id"])]
        takeover = next(i for i, m in enumerate(messages) if "stopped renewing its lease" in m)
        after = [m for m in messages[takeover:] if m.startswith("TASK [")]
        finished_before = HARDENING[:killed_at]
        assert after, messages[takeover:]
        assert not any(
            m.startswith(f"TASK [{role} : ") for m in after for role in finished_before
        ), after
        assert any(m.startswith(f"TASK [{HARDENING[-1]} : ") for m in after)
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                worker.wait()

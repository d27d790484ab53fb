"""`infrawatch worker` runs jobs that `serve` (with its own job worker off)
enqueued: the scale-out set-up, as real processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live import admin_token, running_server


def test_a_worker_process_runs_the_jobs_serve_enqueues(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "INFRAWATCH_JOBS_ENABLED": "false"}
    token = admin_token(env)
    with running_server(env) as (base, _):
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        scan = api.post(
            "/api/v1/discovery/scans", json={"cidr": "127.0.3.0/30", "ports": [9]}
        ).json()
        time.sleep(1.0)
        assert api.get(f"/api/v1/jobs/{scan['job_id']}").json()["status"] == "queued"
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "infrawatch", "worker"],
            env={**cli_env, "INFRAWATCH_JOBS_ENABLED": "true"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while (job := api.get(f"/api/v1/jobs/{scan['job_id']}").json())["status"] in (
                "queued",
                "running",
            ):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker never ran the scan"
                time.sleep(0.3)
            assert job["status"] == "succeeded", job
            assert (
                job["lease_owner"] is None and job["result"]["addresses"] == 2
            )  # a /30 has two hosts
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, (tmp_path / "worker.log").read_text()

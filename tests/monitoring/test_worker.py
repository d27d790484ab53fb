"""`infrawatch worker`: the engine and alerting without the web API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live import admin_token, free_port, running_server


def test_a_worker_process_checks_what_serve_stores_and_exports_its_metrics(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "INFRAWATCH_ENGINE_ENABLED": "false", "INFRAWATCH_ALERTING_ENABLED": "false"}
    token = admin_token(env)
    metrics_port = free_port()
    with running_server(env) as (base, _):
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        monitor = api.post(
            "/api/v1/monitors",
            json={
                "name": "api",
                "type": "http",
                "target": f"{base}/healthz",
                "interval_seconds": 1,
            },
        ).json()
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "infrawatch",
                "worker",
                "--location",
                "lab",
                "--metrics-port",
                str(metrics_port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while api.get(f"/api/v1/monitors/{monitor['id']}").json()["status"] != "up":
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker never checked the monitor"
                time.sleep(0.3)
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            assert "infrawatch_engine_monitors 1.0" in text
            # Its own engine's series; the fleet-wide ones are serve's to export.
            assert 'infrawatch_monitor_latency_seconds_count{monitor_id="' in text
            assert "infrawatch_monitor_up{" not in text
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, (tmp_path / "worker.log").read_text()

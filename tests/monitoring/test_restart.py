"""kill -9 and a restart: checks resume, nothing committed is lost, nothing
is alerted twice. Real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.live import admin_token, running_server


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    healthy = True

    def do_GET(self) -> None:
        self.send_response(200 if _Recorder.healthy else 503)
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Recorder.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        return


@pytest.fixture
def peer() -> Iterator[str]:
    """The monitored target and the notification receiver, in one thread."""
    _Recorder.received = []
    _Recorder.healthy = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _wait(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_after_kill_9_checks_resume_and_nothing_is_alerted_twice(
    cli_env: dict[str, str], peer: str
) -> None:
    env = {
        **cli_env,
        "INFRAWATCH_ENGINE_ENABLED": "true",
        "INFRAWATCH_ALERTING_ENABLED": "true",
        "INFRAWATCH_ALERT_SETTLE_SECONDS": "0",
        "INFRAWATCH_ENGINE_LEASE_SECONDS": "3",
    }
    token = admin_token(env)
    auth = {"Authorization": f"Bearer {token}"}
    processes: list[Any] = []
    with running_server(env, processes=processes) as (base, _):
        api = httpx.Client(base_url=base, headers=auth)
        channel = api.post(
            "/api/v1/notification-channels", json={"name": "rec", "url": f"json://{peer}/alerts"}
        ).json()
        api.post("/api/v1/alert-rules", json={"name": "all", "channel_ids": [channel["id"]]})
        monitor = api.post(
            "/api/v1/monitors",
            json={
                "name": "svc",
                "type": "http",
                "target": f"http://{peer}/",
                "interval_seconds": 1,
                "failure_threshold": 2,
            },
        ).json()
        path = f"/api/v1/monitors/{monitor['id']}"
        _wait(lambda: api.get(path).json()["status"] == "up")
        _Recorder.healthy = False
        _wait(lambda: len(_Recorder.received) == 1)
        results_before = api.get(f"{path}/results?limit=1").json()["total"]
        os.kill(processes[0].pid, signal.SIGKILL)
        processes[0].wait(timeout=10)
    with running_server(env) as (base, _):
        api = httpx.Client(base_url=base, headers=auth)
        # Committed results survived, and checking goes on from where it was.
        assert api.get(f"{path}/results?limit=1").json()["total"] >= results_before
        _wait(lambda: api.get(f"{path}/results?limit=1").json()["total"] >= results_before + 3)
        assert api.get(path).json()["status"] == "down"
        time.sleep(2)
        assert len(_Recorder.received) == 1  # the DOWN alert was not sent again
        _Recorder.healthy = True
        _wait(lambda: len(_Recorder.received) == 2)
        transitions = api.get(f"{path}/transitions").json()
        assert [(t["from_state"], t["to_state"]) for t in reversed(transitions)] == [
            ("pending", "up"),
            ("up", "down"),
            ("down", "up"),
        ]
        incidents = api.get("/api/v1/incidents").json()["items"]
        assert len(incidents) == 1 and incidents[0]["status"] == "resolved"
    titles = [r["title"] for r in _Recorder.received]
    assert titles[0].startswith("DOWN") and titles[1].startswith("RECOVERED")

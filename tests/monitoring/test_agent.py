"""The host agent: `infrawatch agent` reads this host with psutil and
reports to a real `infrawatch serve`; the report is the latest reading and
lands in 5 min / hour / day buckets; an agent monitor turns thresholds and
silence into states like any other monitor."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

import httpx

from infrawatch.core.db import Database
from tests.conftest import Clients
from tests.live import infrawatch, running_server
from tests.monitoring.helpers import create_server, eventually, running_engine


def reading(**changes: Any) -> dict[str, Any]:
    """A report as the agent sends it (figures chosen by the test)."""
    base: dict[str, Any] = {
        "agent_version": "0.1.0",
        "hostname": "web-1",
        "cpu_percent": 12.5,
        "cpu_count": 2,
        "load": [0.5, 0.4, 0.3],
        "memory": {"total_bytes": 4_000_000_000, "used_bytes": 1_000_000_000, "percent": 25.0},
        "swap": {"total_bytes": 0, "used_bytes": 0, "percent": 0.0},
        "disks": [{"mount": "/", "total_bytes": 100, "used_bytes": 50, "percent": 50.0}],
        "network": {"bytes_sent": 1000, "bytes_received": 2000},
        "uptime_seconds": 3600,
        "processes": 120,
    }
    return {**base, **changes}


async def _token(api: Clients, server_id: str) -> str:
    r = await api.operator.post("/api/v1/agents/tokens", json={"server_id": server_id})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def _report(api: Clients, token: str, body: dict[str, Any]) -> httpx.Response:
    return await api.anon.post(
        "/api/v1/agents/report", json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def _monitor(api: Clients, monitor_id: str) -> dict[str, Any]:
    return dict((await api.viewer.get(f"/api/v1/monitors/{monitor_id}")).json())


async def test_thresholds_and_silence_move_an_agent_monitor(
    api: Clients, app: Any, db: Database
) -> None:
    server_id = await create_server(api, "web-1")
    token = await _token(api, server_id)
    r = await api.operator.post(
        "/api/v1/monitors",
        json={
            "name": "web-1 agent",
            "type": "agent",
            "server_id": server_id,
            "interval_seconds": 5,
            "failure_threshold": 1,
            "settings": {"period_seconds": 5, "grace_seconds": 2, "disk_percent": 90},
            "conditions": ["[MEMORY] < 99"],
        },
    )
    assert r.status_code == 201, r.text
    monitor_id = r.json()["id"]
    assert (await _report(api, token, reading())).status_code == 202
    async with running_engine(db, app.state.runtime.bus, push_check_seconds=1):

        async def status_is(wanted: str) -> bool:
            return (await _monitor(api, monitor_id))["status"] == wanted

        await eventually(lambda: status_is("up"))
        full = reading(
            disks=[{"mount": "/var", "total_bytes": 100, "used_bytes": 95, "percent": 95.0}]
        )
        assert (await _report(api, token, full)).status_code == 202
        await eventually(lambda: status_is("down"))
        results = (await api.viewer.get(f"/api/v1/monitors/{monitor_id}/results")).json()
        assert "disk /var at 95.0 % > 90" in str(results), results
        assert (await _report(api, token, reading())).status_code == 202
        await eventually(lambda: status_is("up"))
        # Silence: DOWN once period + grace (7 s) pass without a report.
        await eventually(lambda: status_is("down"), timeout=20)
        results = (await api.viewer.get(f"/api/v1/monitors/{monitor_id}/results")).json()
        assert "no agent report for" in str(results), results
    server = (await api.viewer.get(f"/api/v1/servers/{server_id}")).json()
    assert server["health"] == "down"


async def test_reports_are_kept_as_the_latest_reading_and_in_rollups(api: Clients) -> None:
    server_id = await create_server(api, "db-1")
    token = await _token(api, server_id)
    for cpu, sent in ((10.0, 1000), (30.0, 6000)):
        r = await _report(
            api,
            token,
            reading(cpu_percent=cpu, network={"bytes_sent": sent, "bytes_received": 2000}),
        )
        assert r.status_code == 202 and r.json()["next_report_in_seconds"] == 30
    latest = (await api.viewer.get(f"/api/v1/servers/{server_id}/agent")).json()
    assert latest["readings"]["cpu_percent"] == 30.0
    for period in ("5m", "1h", "1d"):
        metrics = (
            await api.viewer.get(f"/api/v1/servers/{server_id}/host-metrics?period={period}")
        ).json()
        (bucket,) = metrics["items"]
        assert bucket["reports"] == 2 and bucket["cpu_avg"] == 20.0 and bucket["cpu_max"] == 30.0
        assert bucket["disk_max"] == 50.0 and bucket["load_per_core_max"] == 0.25
        assert bucket["network_bytes"] == 5000


async def test_bad_reports_and_tokens_are_refused_with_reasons(api: Clients) -> None:
    server_id = await create_server(api, "app-1")
    token = await _token(api, server_id)
    assert (await _report(api, "iwa_wrong", reading())).status_code == 401
    assert (await api.anon.post("/api/v1/agents/report", json=reading())).status_code == 401
    bad = await _report(api, token, reading(cpu_percent=250))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "cpu_percent"]
    assert (await _report(api, token, {"cpu_percent": 1})).status_code == 422
    # A new token replaces the old one.
    newer = await _token(api, server_id)
    assert (await _report(api, token, reading())).status_code == 401
    assert (await _report(api, newer, reading())).status_code == 202
    assert (
        await api.viewer.post("/api/v1/agents/tokens", json={"server_id": server_id})
    ).status_code == 403
    r = await api.operator.post(
        "/api/v1/monitors", json={"name": "no server", "type": "agent", "interval_seconds": 30}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "server_id"]
    assert (await api.operator.delete(f"/api/v1/agents/tokens/{server_id}")).status_code == 204
    assert (await _report(api, newer, reading())).status_code == 401
    missing = await api.viewer.get(f"/api/v1/servers/{server_id}/agent")
    assert missing.status_code == 200  # the last report stays readable


def test_the_agent_reports_this_host_to_a_real_server(cli_env: dict[str, str]) -> None:
    assert (
        infrawatch(
            cli_env,
            "users",
            "create",
            "admin",
            "--role",
            "admin",
            "--password-stdin",
            stdin="a long enough password\n",
        ).returncode
        == 0
    )
    admin = infrawatch(cli_env, "tokens", "create", "admin").stdout.strip().splitlines()[-1]
    with contextlib.ExitStack() as stack:
        base, _ = stack.enter_context(running_server(cli_env))
        http = stack.enter_context(
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"})
        )
        server = http.post(
            "/api/v1/servers", json={"name": "this-host", "lifecycle": "active"}
        ).json()
        made = infrawatch(cli_env, "agents", "token", "this-host")
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip().splitlines()[-1]
        assert token.startswith("iwa_")
        sent = subprocess.run(
            [sys.executable, "-m", "infrawatch", "agent", "--url", base, "--once"],
            env={**cli_env, "INFRAWATCH_AGENT_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout.strip().splitlines()[-1])["server_id"] == server["id"]
        latest = http.get(f"/api/v1/servers/{server['id']}/agent").json()["readings"]
        assert latest["cpu_count"] >= 1 and latest["memory"]["total_bytes"] > 0
        assert latest["disks"] and latest["processes"] > 0 and latest["uptime_seconds"] > 0
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "infrawatch",
                "agent",
                "--url",
                base,
                "--once",
                "--token",
                "iwa_nope",
            ],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode == 2 and "refused" in refused.stderr


def test_the_agent_imports_nothing_of_the_server() -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['infrawatch', 'agent', '--help']\n"
        "from infrawatch.entry import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "server = ('fastapi', 'sqlalchemy', 'ansible_runner', 'pydantic', 'typer', 'aiohttp')\n"
        "print([m for m in server if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout

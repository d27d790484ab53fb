"""Real `infrawatch worker --location` processes in three locations on
PostgreSQL, each sending its checks from its own address; one location's
path to the target is made to fail, then that location's worker is killed
with -9. The state follows the quorum, the transitions say which location
saw what, and the lost location raises its own alert, once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from infrawatch.core.config import Settings
from tests.alerting.receiver import receiving
from tests.live import admin_token, running_server
from tests.monitoring.helpers import eventually
from tests.monitoring.locations import SOURCES, PerSourceTarget
from tests.monitoring.servers import serve_http

LEASE = "3"


def start_worker(env: dict[str, str], location: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "worker", "--location", location],
        env={
            **env,
            "INFRAWATCH_PROBE_SOURCE_ADDRESS": SOURCES[location],
            # Alerting runs in serve; the workers only check.
            "INFRAWATCH_ALERTING_ENABLED": "false",
        },
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


async def test_workers_in_three_locations_and_one_killed(
    settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    if settings.is_sqlite:
        pytest.skip("worker processes in several locations share PostgreSQL; SQLite has one")
    env = {**cli_env, "INFRAWATCH_ENGINE_LEASE_SECONDS": LEASE}
    token = admin_token(env)
    target = PerSourceTarget()
    serve_env = {**env, "INFRAWATCH_ALERTING_ENABLED": "true", "INFRAWATCH_ENGINE_ENABLED": "false"}
    async with (
        receiving() as receiver,
        serve_http(target.app()) as (_, port),
    ):
        with running_server(serve_env) as (base, _):
            api = httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"})
            channel = await api.post(
                "/api/v1/notification-channels",
                json={"name": "ops", "url": f"json://{receiver.base}/alerts"},
            )
            assert channel.status_code == 201, channel.text
            rule = await api.post(
                "/api/v1/alert-rules",
                json={"name": "all", "channel_ids": [channel.json()["id"]]},
            )
            assert rule.status_code == 201, rule.text
            created = await api.post(
                "/api/v1/monitors",
                json={
                    "name": "shop",
                    "type": "http",
                    "target": f"http://127.0.0.1:{port}/",
                    "interval_seconds": 1,
                    "failure_threshold": 1,
                    "locations": list(SOURCES),
                },
            )
            assert created.status_code == 201, created.text
            monitor = created.json()["id"]
            workers = {
                loc: start_worker(env, loc, tmp_path / f"worker-{loc}.log") for loc in SOURCES
            }

            async def state() -> str:
                return str((await api.get(f"/api/v1/monitors/{monitor}")).json()["status"])

            async def last_reason() -> str:
                found = (await api.get(f"/api/v1/monitors/{monitor}/transitions")).json()
                return str(found[0]["reason"]) if found else ""

            async def is_(wanted: str) -> bool:
                for loc, worker in workers.items():
                    log = (tmp_path / f"worker-{loc}.log").read_text()
                    assert worker.poll() is None or loc == "ap-south", log
                return await state() == wanted

            async def spoke(count: int) -> bool:
                return len((await api.get(f"/api/v1/monitors/{monitor}/locations")).json()) == count

            def titles() -> list[str]:
                return [r.json["title"] for r in receiver.on("/alerts")]

            async def said(title: str) -> bool:
                return title in titles()

            try:
                await eventually(lambda: is_("up"), timeout=60)
                await eventually(lambda: spoke(3), timeout=30)

                target.fail("us-east")
                await eventually(lambda: is_("degraded"), timeout=20)
                assert "down from us-east" in await last_reason()

                target.fail("us-east", "ap-south")
                await eventually(lambda: is_("down"), timeout=20)
                reason = await last_reason()
                assert "down from" in reason and "us-east" in reason and "ap-south" in reason

                # The DOWN alert out before the kill: alerting waits a moment for
                # a state to settle, and the kill soon makes this one degraded.
                await eventually(lambda: said("DOWN: shop"), timeout=30)

                workers["ap-south"].send_signal(signal.SIGKILL)
                workers["ap-south"].wait(timeout=10)
                # Gone after one lease without a heartbeat; then its word stops
                # counting and one "down" of two left is no majority.
                await eventually(lambda: is_("degraded"), timeout=20)
                assert "not counted: ap-south (no live worker)" in await last_reason()

                # The location's own row follows a moment later (the location
                # watch runs every lease / 6), though the quorum already left it out.
                async def gone() -> bool:
                    found = {p["name"]: p for p in (await api.get("/api/v1/locations")).json()}
                    return bool(found["ap-south"]["state"] == "gone")

                await eventually(gone, timeout=10)
                places = {p["name"]: p for p in (await api.get("/api/v1/locations")).json()}
                assert places["eu-west"]["live_workers"] == 1, places

                await eventually(lambda: said("LOCATION GONE: ap-south"), timeout=20)
                await asyncio.sleep(2)
                assert titles().count("LOCATION GONE: ap-south") == 1, titles()
                assert titles().count("DOWN: shop") == 1, titles()
                results = (await api.get(f"/api/v1/monitors/{monitor}/results")).json()["items"]
                assert {r["location"] for r in results} == set(SOURCES)
            finally:
                for worker in workers.values():
                    if worker.poll() is None:
                        worker.send_signal(signal.SIGTERM)
                for loc, worker in workers.items():
                    code = worker.wait(timeout=30)
                    log = (tmp_path / f"worker-{loc}.log").read_text()
                    assert code in (0, -signal.SIGKILL), log
                await api.aclose()

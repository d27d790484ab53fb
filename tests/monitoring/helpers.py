from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.monitoring.engine.checks import MonitorSpec
from infrawatch.monitoring.engine.runner import Engine, EngineOptions, Tracked
from infrawatch.monitoring.engine.state import Position


class Switchable:
    """A target whose answer the test decides: 200, 500, or slow."""

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.hits = 0

    def app(self) -> web.Application:
        async def handle(_: web.Request) -> web.Response:
            self.hits += 1
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.Response(status=self.status, text="state")

        app = web.Application()
        app.router.add_get("/", handle)
        return app


@contextlib.asynccontextmanager
async def running_engine(
    db: Database, bus: EventBus, keyring: Keyring | None = None, **options: Any
) -> AsyncIterator[Engine]:
    engine = Engine(
        db,
        bus,
        EngineOptions(
            **{"flush_seconds": 0.1, "reconcile_seconds": 0.5, "join_seconds": 0.0, **options}
        ),
        keyring,
    )
    task = asyncio.create_task(engine.run())
    try:
        await asyncio.wait_for(engine.ready.wait(), 15)
        yield engine
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(
    probe: Callable[[], Awaitable[Any]], timeout: float = 15.0, interval: float = 0.1
) -> Any:
    """Poll until probe() returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


async def create_server(api: Any, name: str) -> str:
    response = await api.operator.post(
        "/api/v1/servers", json={"name": name, "lifecycle": "active"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def create_http_monitor(api: Any, url: str, **fields: Any) -> str:
    """An HTTP monitor checked every second, with a name of its own."""
    body = {
        "name": f"m-{uuid.uuid4().hex[:8]}",
        "type": "http",
        "target": url,
        "interval_seconds": 1,
    }
    response = await api.operator.post("/api/v1/monitors", json={**body, **fields})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def tracked_monitor(name: str, latencies: list[int] | None = None) -> Tracked:
    """An engine's record of an HTTP monitor, with latencies counted per bucket."""
    spec = MonitorSpec(
        id=uuid.uuid4(),
        name=name,
        type="http",
        target="http://127.0.0.1/",
        interval_seconds=30,
        timeout_seconds=10,
        retry_interval_seconds=30,
        failure_threshold=3,
        success_threshold=1,
        degraded_threshold_ms=None,
        conditions=(),
        settings={},
        server_id=None,
        critical=False,
        shard=0,
        version=1,
        host="127.0.0.1",
    )
    tracked = Tracked(spec=spec, position=Position("up"))
    for index, count in enumerate(latencies or []):
        tracked.latency_buckets[index] = count
    tracked.latency_count = sum(latencies or [])
    tracked.latency_sum = 0.004 * tracked.latency_count * 1000
    return tracked

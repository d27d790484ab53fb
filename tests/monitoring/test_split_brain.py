"""A worker cut off from PostgreSQL must stop checking when its leases run
out, and what it buffered must not be written once the link is back: no
target checked twice, no broken transition chain, one DOWN alert per outage."""

from __future__ import annotations

import asyncio
import collections
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.engine import make_url

from infrawatch.core.db import Database
from infrawatch.monitoring.models import ANY_POOL, MonitorTransition
from tests.alerting.receiver import receiving
from tests.alerting.test_flow import _channel_and_rule, running_alerting
from tests.conftest import Backend, Clients
from tests.monitoring.helpers import create_http_monitor, eventually, running_engine
from tests.monitoring.proxy import proxied
from tests.monitoring.servers import serve_http

MONITORS = 16
LEASE = 3.0


class CountingTarget:
    """Answers /m/<n> with `status`, and notes when each path was asked."""

    def __init__(self) -> None:
        self.status = 200
        self.hits: dict[str, list[float]] = collections.defaultdict(list)

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            self.hits[request.match_info["n"]].append(time.monotonic())
            return web.Response(status=self.status, text="state")

        app = web.Application()
        app.router.add_get("/m/{n}", handle)
        return app

    def most_per_monitor(self, since: float, until: float) -> int:
        return max(sum(1 for t in times if since <= t < until) for times in self.hits.values())


@pytest.fixture
async def target() -> AsyncIterator[tuple[CountingTarget, int]]:
    counting = CountingTarget()
    async with serve_http(counting.app()) as (_, port):
        yield counting, port


async def test_a_worker_cut_off_from_the_database_stops_and_writes_nothing_stale(
    api: Clients, app: Any, db: Database, backend: Backend, target: tuple[CountingTarget, int]
) -> None:
    if backend.name != "postgresql":
        pytest.skip("the cut is a TCP proxy in front of PostgreSQL")
    counting, port = target
    ids = [
        await create_http_monitor(
            api, f"http://127.0.0.1:{port}/m/{n}", interval_seconds=1, failure_threshold=1
        )
        for n in range(MONITORS)
    ]
    async with receiving() as receiver:
        await _channel_and_rule(api, receiver)
        url = make_url(backend.url)
        async with proxied(url.host or "127.0.0.1", url.port or 5432) as proxy:
            cut_off_db = Database(
                url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                app.state.runtime.bus,
            )
            bus = app.state.runtime.bus
            async with (
                running_engine(db, bus, lease_seconds=LEASE) as healthy,
                running_engine(cut_off_db, bus, lease_seconds=LEASE) as cut_off,
                running_alerting(app),
            ):
                await eventually(lambda: _split(healthy, cut_off))
                await asyncio.sleep(2)
                assert counting.most_per_monitor(time.monotonic() - 1.5, time.monotonic()) <= 2

                await proxy.cut()
                cut_at = time.monotonic()
                # Within a lease the cut-off worker stops; the healthy one
                # takes its shards once they run out.
                await eventually(lambda: _owns_all(healthy), timeout=LEASE * 4)
                assert cut_off.leaser.owned == {} or not any(
                    cut_off.leaser.holds(s) for s in cut_off.leaser.owned
                )
                settled = time.monotonic()
                assert settled - cut_at < LEASE * 4
                counting.status = 500  # an outage while the link is down
                await asyncio.sleep(4)
                # Each target once a second (interval 1 s), not twice.
                assert counting.most_per_monitor(settled + 0.5, time.monotonic()) <= 4

                await proxy.restore()
                await asyncio.sleep(LEASE * 2)  # the cut-off worker flushes what it buffered
                counting.status = 200
                await eventually(lambda: _all_up(api, ids), timeout=20)
                await asyncio.sleep(2)
            await cut_off_db.dispose()
        await asyncio.sleep(1)
        alerts = collections.Counter(r.json["title"].split(":")[0] for r in receiver.on("/alerts"))
    for monitor_id in ids:
        chain = await _chain(db, monitor_id)
        for earlier, later in itertools.pairwise(chain):
            assert later[0] == earlier[1], (monitor_id, chain)
        assert [t for t in chain if t[1] == "down"] == [("up", "down")], (monitor_id, chain)
    assert alerts["DOWN"] == MONITORS and alerts["RECOVERED"] == MONITORS, alerts


async def _split(first: Any, second: Any) -> bool:
    return bool(first.leaser.owned) and bool(second.leaser.owned)


async def _owns_all(engine: Any) -> bool:
    return len(engine.leaser.shards(ANY_POOL)) == 64


async def _all_up(api: Clients, ids: list[str]) -> bool:
    page = (await api.viewer.get("/api/v1/monitors", params={"limit": 100})).json()
    return all(m["status"] == "up" for m in page["items"] if m["id"] in ids)


async def _chain(db: Database, monitor_id: str) -> list[tuple[str, str]]:
    async with db.unit_of_work(write=False) as session:
        rows = await session.execute(
            select(MonitorTransition.from_state, MonitorTransition.to_state)
            .where(
                MonitorTransition.monitor_id == uuid.UUID(monitor_id),
                MonitorTransition.kind == "state",
            )
            .order_by(MonitorTransition.id)
        )
        return [(a, b) for a, b in rows]

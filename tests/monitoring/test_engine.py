"""The engine against real targets and both databases."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring import repository
from infrawatch.monitoring.engine.derive import derive_marked_hours
from infrawatch.monitoring.engine.retention import run_retention
from infrawatch.monitoring.engine.runner import Engine, EngineOptions
from infrawatch.monitoring.engine.writer import five_minute_rows
from infrawatch.monitoring.models import ANY_POOL, MonitorRollup, MonitorTransition
from infrawatch.monitoring.rows import ResultRow
from infrawatch.monitoring.samples import TextMemory
from tests.conftest import Clients
from tests.monitoring.helpers import (
    Switchable,
    create_http_monitor,
    create_server,
    eventually,
    running_engine,
    tracked_monitor,
)
from tests.monitoring.servers import serve_http


@pytest.fixture
async def switch() -> AsyncIterator[tuple[Switchable, str]]:
    target = Switchable()
    async with serve_http(target.app()) as (_, port):
        yield target, f"http://127.0.0.1:{port}/"


async def _server(api: Clients, name: str = "web-1") -> str:
    return await create_server(api, name)


async def _monitor(api: Clients, url: str, **fields: Any) -> str:
    return await create_http_monitor(api, url, **{**fields})


async def _status(api: Clients, monitor_id: str) -> str:
    return str((await api.viewer.get(f"/api/v1/monitors/{monitor_id}")).json()["status"])


async def _transitions(db: Database, monitor_id: str) -> list[tuple[str, str]]:
    async with db.unit_of_work(write=False) as session:
        rows = await session.execute(
            select(MonitorTransition.from_state, MonitorTransition.to_state)
            .where(MonitorTransition.monitor_id == uuid.UUID(monitor_id))
            .order_by(MonitorTransition.id)
        )
        return [(a, b) for a, b in rows]


async def test_a_failing_target_goes_down_after_the_threshold_and_the_server_follows(
    api: Clients, db: Database, app: Any, switch: tuple[Switchable, str]
) -> None:
    target, url = switch
    server_id = await _server(api)
    monitor_id = await _monitor(api, url, server_id=server_id, failure_threshold=2, critical=True)
    events = app.state.runtime.bus.subscribe("inventory.server.health")
    async with running_engine(db, app.state.runtime.bus):
        await eventually(lambda: _is(api, monitor_id, "up"))
        health = (await api.viewer.get(f"/api/v1/servers/{server_id}")).json()["health"]
        assert health == "healthy"
        target.status = 500
        await eventually(lambda: _is(api, monitor_id, "down"))
        server = (await api.viewer.get(f"/api/v1/servers/{server_id}")).json()
        assert server["health"] == "down"
    assert await _transitions(db, monitor_id) == [("pending", "up"), ("up", "down")]
    history = (await api.viewer.get(f"/api/v1/servers/{server_id}/health-history")).json()
    assert [h["to_state"] for h in history][:2] == ["down", "healthy"]
    published = _drain(events)
    assert [e.payload["to"] for e in published] == ["healthy", "down"]


def _drain(subscription: Any) -> list[Any]:
    items = []
    while not subscription.queue.empty():
        items.append(subscription.queue.get_nowait())
    return items


async def _is(api: Clients, monitor_id: str, status: str) -> bool:
    return await _status(api, monitor_id) == status


async def test_a_flapping_target_raises_no_transition(
    api: Clients, db: Database, app: Any, switch: tuple[Switchable, str]
) -> None:
    target, url = switch
    monitor_id = await _monitor(api, url, failure_threshold=3)
    async with running_engine(db, app.state.runtime.bus) as engine:
        await eventually(lambda: _is(api, monitor_id, "up"))
        for _ in range(6):  # fail, succeed, fail ...: never three failures in a row
            before = target.hits
            target.status = 500 if target.status == 200 else 200
            await eventually(lambda b=before: asyncio.sleep(0, result=target.hits > b))
        assert engine.stats.outcomes["down"] >= 2
    assert await _transitions(db, monitor_id) == [("pending", "up")]


async def test_one_slow_host_does_not_delay_checks_of_others(
    api: Clients, db: Database, app: Any, switch: tuple[Switchable, str]
) -> None:
    slow, slow_url = switch
    slow.delay = 3.0
    fast = Switchable()
    # Another loopback address is another host to the per-host cap.
    async with serve_http(fast.app(), host="127.0.0.2") as (_, port):
        for _ in range(3):
            await _monitor(api, slow_url, timeout_seconds=1)
        fast_id = await _monitor(api, f"http://127.0.0.2:{port}/")
        async with running_engine(db, app.state.runtime.bus, per_host_concurrency=1) as engine:
            await eventually(lambda: _is(api, fast_id, "up"))
            await asyncio.sleep(3)
            # Interval 1 s: the fast monitor kept its rhythm behind the slow host.
            assert fast.hits >= 3
            assert engine.stats.lateness_max < 5


async def test_a_restarted_engine_resumes_without_repeating_a_transition(
    api: Clients, db: Database, app: Any, switch: tuple[Switchable, str]
) -> None:
    target, url = switch
    target.status = 500
    monitor_id = await _monitor(api, url, failure_threshold=2)
    bus = app.state.runtime.bus
    async with running_engine(db, bus):
        await eventually(lambda: _is(api, monitor_id, "down"))
    async with running_engine(db, bus) as engine:
        checks = engine.stats.checks
        await eventually(lambda: asyncio.sleep(0, result=engine.stats.checks >= checks + 3))
        assert engine.tracked[uuid.UUID(monitor_id)].position.state == "down"
        target.status = 200
        await eventually(lambda: _is(api, monitor_id, "up"))
    assert await _transitions(db, monitor_id) == [("pending", "down"), ("down", "up")]


async def test_two_engines_share_the_shards_and_one_takes_over_when_the_other_dies(
    api: Clients, db: Database, app: Any, switch: tuple[Switchable, str]
) -> None:
    _, url = switch
    ids = [await _monitor(api, url, interval_seconds=2) for _ in range(12)]
    bus = app.state.runtime.bus
    async with running_engine(db, bus, lease_seconds=3) as first:
        async with running_engine(db, bus, lease_seconds=3) as second:
            await eventually(
                lambda: asyncio.sleep(
                    0,
                    result=len(first.leaser.shards(ANY_POOL))
                    == len(second.leaser.shards(ANY_POOL))
                    == 32,
                )
            )
            assert not first.leaser.owned.keys() & second.leaser.owned.keys()
            everything = {uuid.UUID(i) for i in ids}

            async def split() -> bool:  # both reconcile to their halves
                return set(first.tracked) | set(second.tracked) == everything

            await eventually(split, 10)
            assert not set(first.tracked) & set(second.tracked)
        # The second stopped: the first takes every shard within a lease period.
        await eventually(
            lambda: asyncio.sleep(0, result=len(first.leaser.shards(ANY_POOL)) == 64), 15
        )
        await eventually(lambda: asyncio.sleep(0, result=len(first.tracked) == 12), 15)


async def test_engines_started_together_split_the_shards_without_handing_any_over(
    api: Clients, db: Database, app: Any, switch: tuple[Switchable, str]
) -> None:
    _, url = switch
    for _ in range(12):
        await _monitor(api, url, interval_seconds=2)
    bus = app.state.runtime.bus
    together = {"lease_seconds": 3, "join_seconds": 1.0}
    async with (
        running_engine(db, bus, **together) as first,
        running_engine(db, bus, **together) as second,
    ):
        await eventually(
            lambda: asyncio.sleep(
                0,
                result=len(first.leaser.shards(ANY_POOL))
                == len(second.leaser.shards(ANY_POOL))
                == 32,
            )
        )
        await asyncio.sleep(1.5)
        # Each saw the other before taking anything: nothing was taken only
        # to be released, no monitor loaded twice.
        assert first.stats.shards_lost == second.stats.shards_lost == 0
        assert first.stats.monitors_loaded + second.stats.monitors_loaded == 12


async def test_rollups_count_every_result_and_feed_uptime(
    api: Clients, db: Database, app: Any, switch: tuple[Switchable, str]
) -> None:
    target, url = switch
    monitor_id = await _monitor(api, url, failure_threshold=1)
    async with running_engine(db, app.state.runtime.bus):
        await eventually(lambda: _is(api, monitor_id, "up"))
        await asyncio.sleep(2)
        target.status = 500
        await eventually(lambda: _is(api, monitor_id, "down"))
        await asyncio.sleep(1.5)
    # Hours and days come from the 5-minute rows by a periodic pass: one now.
    assert await derive_marked_hours(db, 48) >= 1
    async with db.unit_of_work(write=False) as session:
        mid = uuid.UUID(monitor_id)
        stored = await repository.results_page(session, mid, None, 10_000)
        results = len(stored)
        down = sum(1 for r in stored if r.outcome == "down")
        assert await repository.count_results(session, mid) == results
        per_granularity = dict(
            (
                await session.execute(
                    select(MonitorRollup.granularity, func.sum(MonitorRollup.count))
                    .where(MonitorRollup.monitor_id == mid)
                    .group_by(MonitorRollup.granularity)
                )
            ).all()
        )
    assert per_granularity == {300: results, 3600: results, 86400: results}
    uptime = (await api.viewer.get(f"/api/v1/monitors/{monitor_id}/uptime")).json()
    assert set(uptime) == {"24h", "7d", "30d", "90d"}
    day = uptime["24h"]
    assert day["checks"] == results and day["down"] == down
    assert day["uptime_percent"] == pytest.approx(100 * (results - down) / results, abs=0.01)
    assert day["latency_p50_ms"] is not None and day["latency_p95_ms"] >= day["latency_p50_ms"]
    page = (await api.viewer.get(f"/api/v1/monitors/{monitor_id}/results?limit=2")).json()
    assert page["total"] == results and len(page["items"]) == 2 and page["next_cursor"]
    assert page["items"][0]["outcome"] == "down" and page["items"][0]["details"]["timings_ms"]


async def test_retention_removes_old_raw_results_but_keeps_transitions(
    api: Clients, db: Database, switch: tuple[Switchable, str]
) -> None:
    _, url = switch
    monitor_id = uuid.UUID(await _monitor(api, url))
    old = utcnow() - timedelta(hours=72)

    def result(at: datetime, streak: int) -> ResultRow:
        return ResultRow(
            monitor_id=monitor_id,
            checked_at=at,
            outcome="up",
            state="up",
            streak=streak,
            latency_ms=1.0,
            status_code=200,
            error=None,
            details=None,
            location="default",
        )

    rows, _ = five_minute_rows(
        [result(old + timedelta(seconds=i), i + 1) for i in range(30)] + [result(utcnow(), 31)],
        TextMemory(),
    )
    async with db.unit_of_work() as session:
        await repository.add_to_five_minutes(session, rows)
        session.add(
            MonitorTransition(
                monitor_id=monitor_id, from_state="pending", to_state="up", at=old, kind="state"
            )
        )
    assert await run_retention(db, 48) >= 1
    async with db.unit_of_work(write=False) as session:
        kept = await repository.results_page(session, monitor_id, None, 100)
        assert [r.streak for r in kept] == [31]
        assert await session.scalar(select(func.count()).select_from(MonitorTransition)) == 1


async def test_a_deleted_monitor_stops_being_checked(
    api: Clients, db: Database, app: Any, switch: tuple[Switchable, str]
) -> None:
    target, url = switch
    monitor_id = await _monitor(api, url)
    async with running_engine(db, app.state.runtime.bus) as engine:
        await eventually(lambda: _is(api, monitor_id, "up"))
        assert (await api.operator.delete(f"/api/v1/monitors/{monitor_id}")).status_code == 204
        await eventually(lambda: asyncio.sleep(0, result=not engine.tracked))
        hits = target.hits
        await asyncio.sleep(1.5)
        assert target.hits <= hits + 1  # at most one check that was already under way
    async with db.unit_of_work(write=False) as session:
        count = await session.scalar(text("SELECT count(*) FROM monitor_rollups"))
    assert count == 0


async def test_first_checks_fit_in_the_engines_first_interval_however_long_loading_took(
    db: Database, app: Any
) -> None:
    engine = Engine(db, app.state.runtime.bus)
    now = 1000.0
    ids = [uuid.uuid4() for _ in range(2000)]
    # Loading took 15 of the first 30 seconds: the rest squeeze into the 12
    # left before 90 % of it.
    engine._started = now - 15
    squeezed = [engine._first_due(i, 30, now) for i in ids]
    assert all(now <= due <= now + 12.01 for due in squeezed)
    assert max(squeezed) - min(squeezed) > 11  # still spread, not a burst
    # Loading took longer: never squeezed into less than a quarter interval.
    engine._started = now - 28
    assert now + 7 < max(engine._first_due(i, 30, now) for i in ids) <= now + 7.5
    # Later arrivals spread over a whole interval.
    engine._started = now - 3600
    late = [engine._first_due(i, 30, now) for i in ids]
    assert all(now <= due <= now + 30.01 for due in late) and max(late) > now + 29
    # The order is the id's, whatever the window: the same after a restart.
    assert sorted(range(len(ids)), key=lambda n: late[n]) == sorted(
        range(len(ids)), key=lambda n: squeezed[n]
    )


async def test_after_a_squeezed_first_check_a_monitor_returns_to_its_own_slot(
    db: Database, app: Any
) -> None:
    engine = Engine(db, app.state.runtime.bus)
    engine._started = 1000.0
    checks = [tracked_monitor(f"m{i}") for i in range(200)]
    seconds = []
    for tracked in checks:
        tracked.squeezed = True
        first = engine._first_due(tracked.spec.id, 30, 1010.0)  # squeezed into 1010..1027
        engine._schedule_next(tracked, first, first)
        seconds.append(tracked.due)
        assert not tracked.squeezed
        assert first < tracked.due <= first + 30  # never more than an interval apart
        # Its own slot: the same phase as an unsqueezed monitor would have.
        phase = (tracked.due - 1000.0) % 30
        assert phase == pytest.approx(engine._first_due(tracked.spec.id, 30, 5000.0) - 5000.0)
    # Second checks spread over a whole interval again, not over 17 s.
    assert max(seconds) - min(seconds) > 25
    # From then on, plain intervals.
    tracked = checks[0]
    due = tracked.due
    engine._schedule_next(tracked, due, due)
    assert tracked.due == due + 30


async def test_checks_due_close_together_start_in_one_wake_up_never_before_the_batch(
    db: Database, app: Any
) -> None:
    engine = Engine(db, app.state.runtime.bus, EngineOptions(start_batch_seconds=0.05))
    loop = asyncio.get_running_loop()
    engine._loop = loop
    engine.leaser.holds = lambda key: True  # type: ignore[method-assign]
    started: list[tuple[float, float]] = []  # (when, due)

    async def check(tracked: Any, due: float) -> None:
        started.append((loop.time(), due))

    engine._check = check  # type: ignore[method-assign]
    now = loop.time()
    for n in range(100):  # one due every 5 ms for half a second
        tracked = tracked_monitor(f"m{n}")
        engine.tracked[tracked.spec.id] = tracked
        engine._schedule(tracked, now + 0.1 + n * 0.005)
    scheduler = asyncio.create_task(engine._schedule_loop())

    async def all_started() -> bool:
        return len(started) == 100

    await eventually(all_started, timeout=10, interval=0.01)
    scheduler.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await scheduler
    # Never more than one batch early.
    assert all(when >= due - 0.05 for when, due in started)
    # Started in wake-ups a batch apart (about 11 for this half second), not
    # one per check: the checks of one wake-up start within microseconds.
    times = sorted(when for when, _ in started)
    wake_ups = 1 + sum(1 for a, b in itertools.pairwise(times) if b - a > 0.003)
    assert wake_ups <= 20, wake_ups

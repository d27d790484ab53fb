"""The engine's batched writer: bounded transactions, and nothing lost or
reordered while the database is away."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.monitoring import repository
from infrawatch.monitoring.engine.writer import ResultWriter
from infrawatch.monitoring.rows import ResultRow
from tests.monitoring.helpers import create_http_monitor


def result(monitor_id: str, n: int) -> ResultRow:
    return ResultRow(
        monitor_id=uuid.UUID(monitor_id),
        checked_at=utcnow() + timedelta(seconds=n),
        outcome="up",
        state="up",
        streak=n + 1,
        latency_ms=float(n),
        status_code=200,
        error=None,
        details=None,
        location="default",
    )


async def test_results_wait_in_order_while_the_database_is_away_then_go_in_slices(
    api: Any, db: Database
) -> None:
    monitor_id = await create_http_monitor(api, "http://127.0.0.1:9/", paused=True)
    away = Database("postgresql+asyncpg://postgres@127.0.0.1:9/nothing", EventBus())
    writer = ResultWriter(away, max_rows=3)
    for n in range(7):
        writer.add_result(result(monitor_id, n))
    assert await writer.flush() is False
    assert writer.failed_flushes == 1
    for n in range(7, 9):
        writer.add_result(result(monitor_id, n))
    # The failed slice went back in front: the oldest first, as they came.
    assert [r["latency_ms"] for r in writer.pending.results] == [float(n) for n in range(9)]
    await away.dispose()

    writer.db = db
    batches = db.bus.subscribe("monitoring.results")
    assert await writer.flush() is True
    assert writer.written_results == 9 and writer.depth == 0
    async with db.unit_of_work(write=False) as session:
        stored = await repository.results_page(session, uuid.UUID(monitor_id), None, 100)
    assert sorted(r.latency_ms for r in stored) == [float(n) for n in range(9)]
    # One transaction (and one results event) per slice of three.
    assert batches.queue.qsize() == 3
    batches.close()


async def test_results_page_through_buckets_newest_first_each_once(api: Any, db: Database) -> None:
    monitor_id = await create_http_monitor(api, "http://127.0.0.1:9/", paused=True)
    writer = ResultWriter(db)
    start = utcnow() - timedelta(minutes=20)
    for n in range(25):  # every 40 s: spread over four 5-minute buckets
        row = result(monitor_id, 0)
        row["checked_at"] = start + timedelta(seconds=40 * n)
        writer.add_result(row)
    assert await writer.flush()
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = (
            await api.viewer.get(f"/api/v1/monitors/{monitor_id}/results", params=params)
        ).json()
        assert page["total"] == 25
        seen += [item["id"] for item in page["items"]]
        streaks = (
            [item["streak"] for item in page["items"]] if "streak" in page["items"][0] else None
        )
        assert streaks is None or streaks == sorted(streaks, reverse=True)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 25 and seen == sorted(seen, reverse=True)
    # Any 18 digits are a well-formed cursor; one past year 9999 reads from the newest.
    far = await api.viewer.get(
        f"/api/v1/monitors/{monitor_id}/results", params={"cursor": "9" * 18, "limit": 3}
    )
    assert far.status_code == 200 and [i["id"] for i in far.json()["items"]] == seen[:3]

from __future__ import annotations

import asyncio
import os

import pytest

from infrawatch.core.db import Database, stage_event
from infrawatch.core.events import Event, EventBus, RedisEventBus
from tests.conftest import unavailable


async def test_staged_events_are_published_only_after_commit(db: Database) -> None:
    subscription = db.bus.subscribe("inventory.*")
    async with db.unit_of_work() as session:
        stage_event(session, Event("inventory.server.created", {"id": "1"}))
        assert subscription.queue.empty()
    assert (await asyncio.wait_for(subscription.queue.get(), 1)).payload == {"id": "1"}

    with pytest.raises(RuntimeError):
        async with db.unit_of_work() as session:
            stage_event(session, Event("inventory.server.created", {"id": "2"}))
            raise RuntimeError("roll back")
    assert subscription.queue.empty()
    subscription.close()


async def test_a_slow_subscriber_loses_events_instead_of_blocking_the_publisher() -> None:
    bus = EventBus()
    slow = bus.subscribe("*", maxsize=2)
    for n in range(5):
        await bus.publish(Event("x", {"n": n}))
    assert slow.queue.qsize() == 2
    assert slow.dropped == 3


async def test_redis_carries_events_between_processes() -> None:
    url = os.environ.get("INFRAWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    first, second = RedisEventBus(url), RedisEventBus(url)
    try:
        await asyncio.wait_for(asyncio.gather(first.start(), second.start()), 5)
    except Exception as exc:
        unavailable(f"Redis at {url} ({type(exc).__name__})")
    try:
        heard_by_second = second.subscribe("inventory.*")
        heard_by_first = first.subscribe("inventory.*")
        await asyncio.sleep(0.1)
        await first.publish(Event("inventory.server.updated", {"id": "42"}))
        received = await asyncio.wait_for(heard_by_second.queue.get(), 5)
        assert received.payload == {"id": "42"}
        assert (await asyncio.wait_for(heard_by_first.queue.get(), 1)).payload == {"id": "42"}
        await asyncio.sleep(0.2)
        assert heard_by_first.queue.empty(), "the publisher must not hear its own event twice"
    finally:
        await first.stop()
        await second.stop()

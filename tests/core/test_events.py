from __future__ import annotations

import ast
import asyncio
import os
from pathlib import Path

import pytest

import infrawatch
from infrawatch.core.db import Database, stage_event
from infrawatch.core.events import TOPICS, Event, EventBus, RedisEventBus, UnknownTopic
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
        await bus.publish(Event("monitoring.push", {"n": n}))
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


def _published_topics() -> set[str]:
    """Every topic an `Event(...)` in the source is made with: a literal, a
    module constant, or either branch of a conditional."""
    found: set[str] = set()
    for path in Path(infrawatch.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name) and isinstance(node.value.value, str)
        }

        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Event"
                and node.args
            ):
                found.update(_topics(node.args[0], constants))
    return found


def _topics(expr: ast.expr, constants: dict[str, str]) -> list[str]:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, ast.Name) and expr.id in constants:
        return [constants[expr.id]]
    if isinstance(expr, ast.IfExp):
        return _topics(expr.body, constants) + _topics(expr.orelse, constants)
    return []


def test_the_catalogue_lists_exactly_the_topics_the_code_publishes() -> None:
    published = _published_topics()
    assert published - TOPICS.keys() == set(), "published but not in core/events.py TOPICS"
    assert TOPICS.keys() - published == set(), "in TOPICS but nothing publishes it"


async def test_an_unknown_topic_is_refused_inside_the_transaction(db: Database) -> None:
    heard = db.bus.subscribe("*")
    with pytest.raises(UnknownTopic, match=r"inventory\.server\.renamed"):
        async with db.unit_of_work() as session:
            stage_event(session, Event("inventory.server.renamed", {"id": "1"}))
    with pytest.raises(UnknownTopic):
        await db.bus.publish(Event("nobody.listens", {}))
    assert heard.queue.empty()

"""The one event bus. Services stage events in their unit of work; the bus
delivers them after commit to in-process subscribers (WebSocket hub, alerting,
exporter) and, when Redis is configured, to every other process."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infrawatch.core.clock import utcnow

log = logging.getLogger(__name__)

# Every topic the bus carries, and what its payload holds. A process
# publishing any other topic has a bug (publish refuses it); subscribers and
# the console (docs/console.md) read this list. Events from other processes
# (Redis) are delivered whatever their topic: an older or newer version
# beside this one must not be cut off.
TOPICS: dict[str, str] = {
    "inventory.server.created": "id, name",
    "inventory.server.updated": "id, name",
    "inventory.server.deleted": "id, name",
    "inventory.server.restored": "id, name",
    "inventory.server.purged": "id",
    "inventory.server.lifecycle_changed": "id, from, to",
    "inventory.server.health": "id, from, to, reason",
    "inventory.servers.bulk_changed": "action, count, request_id",
    "monitoring.monitor.changed": "id, action (create, update, delete)",
    "monitoring.monitor.status": "id, from, to, at, reason, server_id",
    "monitoring.monitor.certificate": "id, from, to (days left), at, reason, server_id",
    "monitoring.monitor.maintenance": "id, in_maintenance",
    "monitoring.results": "results: the newest check per monitor (id, at, outcome, state, "
    "latency_ms)",
    "monitoring.push": "id, kind (push, agent)",
    "monitoring.location": "name, state (gone, up), at",
    "alerting.incident.opened": "id, monitor_id, title",
    "alerting.incident.resolved": "id, monitor_id",
    "jobs.queued": "type, and the id of a single job",
    "jobs.cancel": "id",
    "jobs.event": "a job's progress: job_id, seq, kind, message, data",
}


class UnknownTopic(ValueError):
    pass


def known_topic(topic: str) -> str:
    if topic not in TOPICS:
        raise UnknownTopic(f"no event topic {topic!r}: add it to core/events.py TOPICS")
    return topic


@dataclass(frozen=True)
class Event:
    topic: str  # e.g. "inventory.server.updated"
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    at: datetime = field(default_factory=utcnow)
    origin: str = ""  # the process that published it, so Redis echoes are dropped

    def to_json(self) -> str:
        return json.dumps(
            {
                "topic": self.topic,
                "payload": self.payload,
                "id": self.id,
                "at": self.at.isoformat(),
                "origin": self.origin,
            },
            default=str,
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        data = json.loads(raw)
        return cls(
            topic=data["topic"],
            payload=data["payload"],
            id=data["id"],
            at=datetime.fromisoformat(data["at"]),
            origin=data.get("origin", ""),
        )


class Subscription:
    def __init__(self, bus: EventBus, pattern: str, maxsize: int) -> None:
        self.pattern = pattern
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0
        self._bus = bus

    def matches(self, topic: str) -> bool:
        return fnmatch.fnmatchcase(topic, self.pattern)

    def offer(self, item: Event) -> None:
        # A slow subscriber loses events (and knows how many) rather than
        # slowing the publisher down: the hot path never waits on a listener.
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    """In-process fan-out. RedisEventBus extends it across processes."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self.process_id = uuid.uuid4().hex

    def subscribe(self, pattern: str = "*", maxsize: int = 1000) -> Subscription:
        subscription = Subscription(self, pattern, maxsize)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    async def publish(self, item: Event) -> None:
        if not item.origin:
            known_topic(item.topic)
            item = Event(item.topic, item.payload, item.id, item.at, self.process_id)
        self._deliver_locally(item)

    def _deliver_locally(self, item: Event) -> None:
        for subscription in list(self._subscriptions):
            if subscription.matches(item.topic):
                subscription.offer(item)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisEventBus(EventBus):
    CHANNEL = "infrawatch:events"

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._listener: asyncio.Task[None] | None = None
        self._redis: Any = None

    async def start(self) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(self._url)
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self.CHANNEL)
        self._listener = asyncio.create_task(self._listen(pubsub), name="redis-event-listener")

    async def _listen(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                item = Event.from_json(message["data"])
            except (ValueError, KeyError):
                log.warning("dropping a malformed event from Redis")
                continue
            if item.origin != self.process_id:
                self._deliver_locally(item)

    async def publish(self, item: Event) -> None:
        known_topic(item.topic)
        item = Event(item.topic, item.payload, item.id, item.at, self.process_id)
        self._deliver_locally(item)
        if self._redis is not None:
            try:
                await self._redis.publish(self.CHANNEL, item.to_json())
            except Exception:  # Redis down must not fail a committed change.
                log.exception("could not publish event %s to Redis", item.topic)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()


def create_event_bus(redis_url: str | None) -> EventBus:
    return RedisEventBus(redis_url) if redis_url else EventBus()

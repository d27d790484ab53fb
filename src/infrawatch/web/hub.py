"""The WebSocket hub: one bus subscription per process, fanned out to the
sockets open on it. Each replica has its own hub; the bus (Redis when
configured) brings every replica the events of all the others."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infrawatch.core.clock import utcnow
from infrawatch.core.events import Event, EventBus

log = logging.getLogger(__name__)

# What a console may subscribe to (everything a viewer may read anyway).
ALLOWED_TOPICS = ("inventory.*", "monitoring.*", "alerting.*", "jobs.*", "statuspage.*")
CLIENT_QUEUE = 1000
# Recent events kept for clients that say what they last saw (a page just
# rendered, a socket just reconnected): replayed instead of reloading.
RECENT_EVENTS = 5000


@dataclass(eq=False)
class Client:
    """One open socket: its subscriptions and what waits to be sent."""

    patterns: tuple[str, ...] = ()
    # Monitor results are many; a page that shows a few names them.
    monitor_ids: frozenset[str] | None = None
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(CLIENT_QUEUE)
    )

    def wants(self, topic: str) -> bool:
        return any(fnmatch.fnmatchcase(topic, p) for p in self.patterns)

    def offer(self, item: Event) -> None:
        if not self.wants(item.topic):
            return
        payload = item.payload
        if item.topic == "monitoring.results" and self.monitor_ids is not None:
            results = [r for r in payload.get("results", []) if r.get("id") in self.monitor_ids]
            if not results:
                return
            payload = {"results": results}
        message = {
            "type": "event",
            "topic": item.topic,
            "payload": payload,
            "id": item.id,
            "at": item.at.isoformat(),
        }
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.resync("the connection fell behind")

    def resync(self, reason: str) -> None:
        """A client that missed events is told so, instead of getting a
        stream with holes it cannot see: what waits is dropped, and the page
        reloads its live parts."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait({"type": "resync", "reason": reason})


def allowed_pattern(pattern: str) -> bool:
    return any(
        pattern == allowed or fnmatch.fnmatchcase(pattern, allowed) for allowed in ALLOWED_TOPICS
    )


class Hub:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.clients: set[Client] = set()
        self.delivered = 0
        self.recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self.complete_since: datetime | None = None  # no event after this was dropped

    def replay(self, client: Client, since: datetime) -> bool:
        """Queue what the client missed after `since`; False when the hub
        cannot know (it started later, or the events are no longer kept)."""
        if self.complete_since is None or since < self.complete_since:
            return False
        if self.recent and len(self.recent) == self.recent.maxlen and self.recent[0].at > since:
            return False
        for item in list(self.recent):
            if item.at > since:
                client.offer(item)
        return True

    async def run(self) -> None:
        subscription = self._bus.subscribe("*", maxsize=20_000)
        self.complete_since = utcnow()
        try:
            async for item in subscription:
                if subscription.dropped:
                    log.warning("the WebSocket hub fell behind the bus; clients resync")
                    subscription.dropped = 0
                    self.recent.clear()
                    self.complete_since = utcnow()
                    for client in list(self.clients):
                        client.resync("the server fell behind")
                self.recent.append(item)
                for client in list(self.clients):
                    client.offer(item)
                self.delivered += 1
        finally:
            subscription.close()

    @contextlib.contextmanager
    def connected(self) -> Any:
        client = Client()
        self.clients.add(client)
        try:
            yield client
        finally:
            self.clients.discard(client)

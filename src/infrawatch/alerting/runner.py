"""Alerting's background work in one object: turn transitions into
incidents and messages, deliver the outbox, remind, apply maintenance."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from infrawatch.alerting import processor, windows
from infrawatch.alerting import repository as alerting_repository
from infrawatch.alerting.delivery import OutboxSender
from infrawatch.alerting.schedule import next_change
from infrawatch.core.clock import utcnow
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.core.outage import OutageReporter
from infrawatch.core.waiting import wait_or_timeout
from infrawatch.monitoring import service as monitoring

log = logging.getLogger(__name__)


class Alerting:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        keyring: Keyring,
        *,
        settle_seconds: float = 5.0,
        tick_seconds: float = 1.0,
        maintenance_seconds: float = 15.0,
    ) -> None:
        self.db = db
        self.bus = bus
        self.settle_seconds = settle_seconds
        self.tick_seconds = tick_seconds
        self.maintenance_seconds = maintenance_seconds
        self.sender = OutboxSender(db, keyring, f"alerting-{uuid.uuid4().hex[:12]}")
        self._wake = asyncio.Event()

    async def run(self) -> None:
        # Location news waits for the next tick (a second): no wake-up for it.
        subscription = self.bus.subscribe("monitoring.monitor.*", maxsize=1000)
        loops = [
            self._listen(subscription),
            self._every(self.tick_seconds, self.process_once, wake=self._wake),
            self._every(self.tick_seconds, self.sender.deliver_due),
            self._every(30.0, self._reminders),
            self._maintenance_loop(),
        ]
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            await asyncio.gather(*tasks)
        finally:
            subscription.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.sender.close()

    async def process_once(self) -> int:
        async with self.db.unit_of_work(write=False) as session:
            transitions = await monitoring.has_unalerted_transitions(session)
            locations = await monitoring.has_location_news(session)
        done = 0
        if transitions:
            async with self.db.unit_of_work() as session:
                done += await processor.process_transitions(session, self.settle_seconds)
        if locations:
            async with self.db.unit_of_work() as session:
                done += await processor.process_location_news(session)
        return done

    async def apply_maintenance(self) -> None:
        async with self.db.unit_of_work() as session:
            await windows.apply_windows(session)
        async with self.db.unit_of_work() as session:
            await processor.release_maintenance_holds(session)

    async def _maintenance_loop(self) -> None:
        """Apply windows every `maintenance_seconds`, and at the moment one
        starts or ends: a window must hold alerts from its first second (it
        was up to 15 s late), and monitors show `maintenance` as it begins."""
        outage = OutageReporter(log, "alerting: applying maintenance windows")
        while True:
            wait = self.maintenance_seconds
            try:
                await self.apply_maintenance()
                wait = min(wait, await self._until_a_window_changes())
                outage.succeeded()
            except Exception as exc:
                outage.failed(exc)
                wait = outage.delay(self.maintenance_seconds)
            await asyncio.sleep(wait)

    async def _until_a_window_changes(self) -> float:
        now = utcnow()
        async with self.db.unit_of_work(write=False) as session:
            windows = await alerting_repository.windows(session)
        moments = [m for m in (next_change(w, now) for w in windows) if m is not None]
        if not moments:
            return self.maintenance_seconds
        return max(0.05, (min(moments) - now).total_seconds() + 0.05)

    async def _reminders(self) -> None:
        async with self.db.unit_of_work() as session:
            await processor.send_reminders(session)

    async def _listen(self, subscription: Any) -> None:
        async for _ in subscription:
            self._wake.set()

    async def _every(
        self, seconds: float, work: Callable[[], Awaitable[Any]], wake: asyncio.Event | None = None
    ) -> None:
        outage = OutageReporter(log, f"alerting: {getattr(work, '__name__', work)}")
        while True:
            try:
                await work()
                outage.succeeded()
            except Exception as exc:
                outage.failed(exc)
            if wake is None or outage.failing:
                await asyncio.sleep(outage.delay(seconds))
            else:
                await wait_or_timeout(wake, seconds)
                wake.clear()

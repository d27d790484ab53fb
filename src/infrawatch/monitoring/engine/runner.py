"""The monitoring engine: one scheduler (a heap of due times) for every
monitor of the shards this process leases. Each check is a task bounded by a
global and a per-host cap; results go to the batched writer, so a slow
target, a slow database or a slow notification delays no other check."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import heapq
import itertools
import logging
import math
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infrawatch.core.clock import process_age, utcnow
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.core.outage import OutageReporter
from infrawatch.core.waiting import wait_or_timeout
from infrawatch.monitoring import repository
from infrawatch.monitoring.agents import judge_received
from infrawatch.monitoring.engine.checks import CheckOutcome, MonitorSpec, run_check
from infrawatch.monitoring.engine.derive import derive_marked_hours
from infrawatch.monitoring.engine.leases import EARLY, LeaseRunner, ShardLeaser
from infrawatch.monitoring.engine.retention import run_retention
from infrawatch.monitoring.engine.specs import spec_from_row
from infrawatch.monitoring.engine.state import Position, advance, is_retrying
from infrawatch.monitoring.engine.stats import EngineStats
from infrawatch.monitoring.engine.writer import ResultWriter
from infrawatch.monitoring.locations import watch_locations
from infrawatch.monitoring.models import ANY_POOL, Monitor, MonitorLocationState
from infrawatch.monitoring.quorum import location_problem
from infrawatch.monitoring.repository import LeaseKey
from infrawatch.monitoring.rollups import HISTOGRAM_COLUMNS, LATENCY_BOUNDS_MS
from infrawatch.monitoring.rows import LEASE_KEY
from infrawatch.monitoring.samples import Sample
from infrawatch.probes import ProbeResult
from infrawatch.probes.http import HttpClient

log = logging.getLogger(__name__)
# Certificate expiry alerts fire when days left cross one of these.
CERT_LADDER_DAYS = (60, 30, 21, 14, 7, 3, 1, 0)
FREEZE_AFTER_LOADING = 1000  # monitors loaded at once
LOAD_CHUNK = 2000
FIRST_ROUND = 0.9  # share of the first interval by which every monitor had a check
# A check allocates a few hundred short-lived objects. At the default
# threshold (700) the young generation was collected 350 times a second at
# 833 checks/s, each time walking every object of the checks in flight: 8 %
# of a worker's CPU. Collected every 25,000 allocations, most of them are
# gone by then (docs/benchmarks.md, "CPU per check").
YOUNG_GC_THRESHOLD = 25_000


@dataclass
class EngineOptions:
    location: str = "default"
    max_concurrency: int = 2000
    per_host_concurrency: int = 100
    lease_seconds: float = 30.0
    join_seconds: float = 2.0  # counted, not yet leasing: workers started together split evenly
    reconcile_seconds: float = 10.0
    flush_seconds: float = 1.0
    # Checks due within this long start together: their connects and
    # responses then arrive together, and the loop serves many in one turn
    # instead of waking for each (a check starts at most this much early).
    start_batch_seconds: float = 0.02
    raw_retention_hours: float = 48.0
    derive_seconds: float = 60.0  # how often hourly and daily rollups catch up
    push_check_seconds: int = 10
    source_address: str | None = None  # HTTP checks leave from this address


@dataclass
class Tracked:
    spec: MonitorSpec
    position: Position
    due: float = 0.0
    seq: int = 0  # heap entries with another seq are stale
    running: bool = False
    # Its first check was squeezed into the process's first interval; the
    # next goes back to the monitor's own slot, or the squeeze would last.
    squeezed: bool = False
    cert_days: float | None = None
    cert_expires_at: datetime | None = None
    checked_at: datetime | None = None
    last_latency_ms: float | None = None
    # For /metrics: this monitor's latencies as this process measured them.
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(HISTOGRAM_COLUMNS))
    latency_sum: float = 0.0
    latency_count: int = 0


class Engine:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        options: EngineOptions | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.db = db
        self.bus = bus
        self.keyring = keyring  # for target passwords
        self.options = options or EngineOptions()
        problem = location_problem(self.options.location)
        if problem is not None:
            raise ValueError(problem)
        self.worker_id = f"{self.options.location}-{uuid.uuid4().hex[:12]}"
        self.writer = ResultWriter(
            db,
            self.options.flush_seconds,
            owner=self.worker_id,
            live_seconds=self.options.lease_seconds - EARLY.total_seconds(),
        )
        self.leaser = ShardLeaser(
            db, self.worker_id, self.options.location, self.options.lease_seconds
        )
        self.stats = EngineStats()
        self.tracked: dict[uuid.UUID, Tracked] = {}
        self._heap: list[tuple[float, int, uuid.UUID]] = []
        self._seq = itertools.count()
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop  # the running one, from run()
        self._sleeping_until = float("inf")
        self._reconcile_now = asyncio.Event()
        self._global = asyncio.Semaphore(self.options.max_concurrency)
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: Any = None
        self.ready = asyncio.Event()  # set once the first shards are loaded
        self._signature: tuple[Any, ...] | None = None
        self._forced = False
        self._gc_started = 0.0
        self._started = 0.0  # loop time when this process started

    # --- lifecycle ----------------------------------------------------------

    async def run(self) -> None:
        # The first interval is counted from the process's start: imports
        # and migrations take seconds of it.
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time() - process_age()
        collection_thresholds = gc.get_threshold()
        gc.set_threshold(YOUNG_GC_THRESHOLD, *collection_thresholds[1:])
        self._http = HttpClient(source_address=self.options.source_address)
        # Only the two topics it acts on: not the result batches it publishes.
        changes = self.bus.subscribe("monitoring.monitor.changed", maxsize=10_000)
        pushes = self.bus.subscribe("monitoring.push", maxsize=10_000)
        loops = [
            self._watch_loop_lag(),
            self.writer.run(),
            self._lease_loop(),
            self._reconcile_loop(),
            self._schedule_loop(),
            self._listen(changes),
            self._listen(pushes),
            self._retention_loop(),
            self._derive_loop(),
            self._locations_loop(),
        ]
        workers = [asyncio.create_task(c) for c in loops]
        try:
            await asyncio.gather(*workers)
        finally:
            gc.set_threshold(*collection_thresholds)  # first: what follows may be cancelled
            for task in workers:
                task.cancel()
            changes.close()
            pushes.close()
            for task in list(self._tasks):
                task.cancel()
            # A stop is bounded: what is not written in time is lost like
            # on a crash (the state machine resumes from the last committed
            # row). The last flush is the lease loop's, before the leases go:
            # after them, every row would be fenced.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(*workers, *self._tasks, return_exceptions=True), 20
                )
            await self._http.close()

    async def _watch_loop_lag(self) -> None:
        """How late the loop wakes a 100 ms sleep: the time something held
        the loop (and every check due meanwhile) up."""
        loop = asyncio.get_running_loop()
        gc.callbacks.append(self._time_gc)
        try:
            while True:
                expected = loop.time() + 0.1
                await asyncio.sleep(0.1)
                self.stats.loop_lag(loop.time() - expected)
        finally:
            gc.callbacks.remove(self._time_gc)

    def _time_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.stats.gc_pause(time.perf_counter() - self._gc_started, info["generation"])

    # --- which monitors are ours -------------------------------------------------

    async def _lease_loop(self) -> None:
        loop = asyncio.get_running_loop()

        def changed(before: dict[LeaseKey, int], after: dict[LeaseKey, int]) -> None:
            with contextlib.suppress(RuntimeError):  # the engine's loop has closed
                loop.call_soon_threadsafe(self._leases_changed, before, after)

        runner = LeaseRunner(self.leaser, self.db.url, self.options.join_seconds, changed)
        runner.start()
        try:
            await asyncio.Event().wait()  # until the engine stops
        finally:
            try:
                # What was checked under our leases is written before they go.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.writer.flush(), 5)
            finally:
                runner.stop()  # whatever interrupts the flush: no lease outlives the engine
                await asyncio.to_thread(runner.join, 10)

    def _leases_changed(self, before: dict[LeaseKey, int], after: dict[LeaseKey, int]) -> None:
        lost = {key for key in before if key not in after}
        self.stats.shards_gained += len(after.keys() - before.keys())
        self.stats.shards_lost += len(lost)
        if lost:
            # At once, without the database (it may be the reason): the
            # shards may be someone else's already.
            gone = [m for m, t in self.tracked.items() if self._key(t.spec) in lost]
            for mid in gone:
                self.tracked.pop(mid)
            self.writer.texts.forget(gone)
            self._forced = True  # the same shards back later must load again
        self._reconcile_now.set()

    async def _reconcile_loop(self) -> None:
        # Keeping the current set on failure is safe: monitors of shards
        # whose leases run out stop being checked without the database.
        reloading = OutageReporter(log, "reloading monitors (the current set is kept)")
        while True:
            if reloading.failing:
                await asyncio.sleep(reloading.delay(self.options.reconcile_seconds))
            else:
                await wait_or_timeout(self._reconcile_now, self.options.reconcile_seconds)
            self._reconcile_now.clear()
            try:
                await self.reconcile()
                reloading.succeeded()
            except Exception as exc:
                reloading.failed(exc)

    def _key(self, spec: MonitorSpec) -> LeaseKey:
        """The lease a monitor is checked under here: the shared pool's, or
        this location's if it lists locations."""
        return (self.options.location if spec.locations else ANY_POOL, spec.shard)

    async def reconcile(self) -> None:
        anywhere = self.leaser.shards(ANY_POOL)
        here = self.leaser.shards(self.options.location)
        shards = sorted(set(anywhere) | set(here))
        async with self.db.unit_of_work(write=False) as session:
            # One aggregate row tells whether anything changed; the full
            # list of versions is read only then.
            signature = (
                tuple(sorted(self.leaser.owned)),
                await repository.shard_signature(session, shards),
            )
            if signature == self._signature and not self._forced:
                return
            self._forced = False
            versions = await repository.versions_in_shards(session, anywhere) if anywhere else {}
            versions.update(await repository.located_versions(session, here, self.options.location))
        wanted = [
            mid
            for mid, version in versions.items()
            if mid not in self.tracked or self.tracked[mid].spec.version != version
        ]
        self._signature = signature
        self.stats.monitors_loaded += len(wanted)
        gone = [m for m in self.tracked if m not in versions]
        for mid in gone:
            self.tracked.pop(mid)
        self.writer.texts.forget(gone)
        # In chunks, each its own short read: checks of monitors already
        # loaded keep their time while tens of thousands more come in.
        for start in range(0, len(wanted), LOAD_CHUNK):
            chunk = wanted[start : start + LOAD_CHUNK]
            async with self.db.unit_of_work(write=False) as session:
                rows = await repository.monitors_by_ids(session, chunk)
                fresh = [row.id for row in rows if row.id not in self.tracked]
                located = {row.id for row in rows if row.located}
                latest: dict[uuid.UUID, Sample | MonitorLocationState] = {}
                latest.update(
                    await repository.newest_samples(session, [m for m in fresh if m not in located])
                )
                # Several locations: this location's own state machine.
                for mid, mine in (
                    await repository.location_states(
                        session, [m for m in fresh if m in located], self.options.location
                    )
                ).items():
                    latest[mid] = mine[self.options.location]
            for row in rows:
                self._track(row, latest.get(row.id))
            await asyncio.sleep(0)
        if len(wanted) >= FREEZE_AFTER_LOADING:
            # Tens of thousands of long-lived monitor objects would be walked
            # by every full garbage collection (pauses of a second at 25,000
            # monitors). Frozen, the collector leaves them alone. No collect()
            # first: that would be the very pause we avoid.
            gc.freeze()
        self.ready.set()
        self._wake_scheduler()

    def _track(self, row: Monitor, last: Sample | MonitorLocationState | None) -> None:
        spec = spec_from_row(row, self.keyring)
        current = self.tracked.get(row.id)
        if current is not None:
            current.spec = spec  # keeps its place in the state machine and schedule
            if current.cert_expires_at != row.cert_expires_at:
                current.cert_expires_at = row.cert_expires_at
            return
        known = row.status in ("up", "degraded", "down") and not row.located
        position = Position(row.status if known else "pending")
        if last is not None:
            position = Position(last.state, last.outcome, last.streak)
        tracked = Tracked(spec=spec, position=position, cert_expires_at=row.cert_expires_at)
        if last is not None and row.cert_expires_at is not None:
            tracked.cert_days = (row.cert_expires_at - last.checked_at).total_seconds() / 86400
        tracked.checked_at = last.checked_at if last else None
        self.tracked[row.id] = tracked
        now = asyncio.get_running_loop().time()
        interval = self._interval(spec)
        tracked.squeezed = self._in_first_interval(interval, now)
        due = self._first_due(row.id, interval, now)
        if last is not None and not tracked.squeezed:
            due = self._due_after(row.id, last.checked_at, interval, now)
        self._schedule(tracked, due)

    def _first_due(self, monitor_id: uuid.UUID, interval: float, now: float) -> float:
        """First checks spread over one interval by a stable hash of the id
        (no thundering herd, the same order after a restart). While the
        process's first interval lasts, they squeeze into what is left of
        its first 90 % (never less than a quarter interval): every monitor is
        checked within one interval of the process's start, with room for
        some lateness, however long loading took. Later arrivals (a new
        monitor, shards taken over) spread over a whole interval."""
        window = interval
        if self._in_first_interval(interval, now):
            window = max(self._started + interval * FIRST_ROUND - now, interval * 0.25)
        return now + _fraction(monitor_id) * window

    def _due_after(
        self, monitor_id: uuid.UUID, last_checked: datetime, interval: float, now: float
    ) -> float:
        """A monitor taken over from another worker keeps its rhythm: due one
        interval after its last check, whoever made it. One whose worker
        died is overdue by then: it goes within a quarter second (spread a
        little), not somewhere in a whole interval, which added up to an
        interval to the gap. The global concurrency cap paces a big takeover."""
        late = (utcnow() - last_checked).total_seconds() - interval
        if late < 0:
            return now - late
        return now + _fraction(monitor_id) * min(0.25, interval * 0.05)

    def _in_first_interval(self, interval: float, now: float) -> bool:
        return now < self._started + interval

    def _own_slot(self, monitor_id: uuid.UUID, interval: float, after: float) -> float:
        """The first time after `after` at the monitor's own phase: spread
        over the whole interval, so a squeezed first round does not keep
        every check in part of it (which raised the rate there by half)."""
        offset = self._started + _fraction(monitor_id) * interval
        return offset + math.ceil((after - offset) / interval) * interval

    # --- scheduling ------------------------------------------------------------------

    def _interval(self, spec: MonitorSpec) -> float:
        if spec.type in ("push", "agent"):
            return float(min(spec.interval_seconds, self.options.push_check_seconds))
        return float(spec.interval_seconds)

    def _schedule(self, tracked: Tracked, due: float) -> None:
        tracked.due = due
        tracked.seq = next(self._seq)
        heapq.heappush(self._heap, (due, tracked.seq, tracked.spec.id))
        if due < self._sleeping_until:
            self._wake_scheduler()

    def _wake_scheduler(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def check_soon(self, monitor_id: uuid.UUID) -> None:
        tracked = self.tracked.get(monitor_id)
        if tracked is not None and not tracked.running:
            self._schedule(tracked, asyncio.get_running_loop().time())

    async def _schedule_loop(self) -> None:
        loop = self._loop
        batch = self.options.start_batch_seconds
        while True:
            now = loop.time()
            heap = self._heap
            while heap and heap[0][0] <= now + batch:
                due, seq, monitor_id = heapq.heappop(heap)
                tracked = self.tracked.get(monitor_id)
                if tracked is None or tracked.seq != seq or tracked.running:
                    continue
                if not self.leaser.holds(self._key(tracked.spec)):
                    # Its lease is running out unrenewed: another worker may
                    # check it from now on. Ask again in an interval.
                    self._schedule(tracked, now + self._interval(tracked.spec))
                    continue
                tracked.running = True
                task = loop.create_task(self._check(tracked, due))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self.stats.queue_depth = len(self._tasks)
            # Woken at most once a batch, for what is due by the one after.
            delay = min(1.0, max(batch, heap[0][0] - batch - now)) if heap else 1.0
            # A bare future and a timer, not wait_for(): this loop turns
            # hundreds of times a second, and wait_for costs a task each time.
            self._waiter = waiter = loop.create_future()
            self._sleeping_until = now + delay
            timer = loop.call_at(self._sleeping_until, self._wake_scheduler)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
                self._sleeping_until = float("inf")

    async def _check(self, tracked: Tracked, due: float) -> None:
        # The loop kept, not asked for: asyncio asks the kernel for the
        # process id on every get_running_loop() (a system call per check).
        loop = self._loop
        spec = tracked.spec
        host_cap = self._per_host.get(spec.host)
        if host_cap is None:
            host_cap = self._per_host[spec.host] = asyncio.Semaphore(
                self.options.per_host_concurrency
            )
        try:
            # The host's cap first: a slow host then queues only its own checks.
            async with host_cap, self._global:
                self.stats.started(loop.time() - due)
                outcome = await run_check(spec, self._http, self._read_push, utcnow())
            if outcome is not None:
                self._record(tracked, outcome)
        except Exception:
            log.exception("check of monitor %s crashed", spec.id)
            self.stats.crashed += 1
        finally:
            tracked.running = False
            if self.tracked.get(spec.id) is tracked:
                self._schedule_next(tracked, due, loop.time())

    def _schedule_next(self, tracked: Tracked, due: float, now: float) -> None:
        spec = tracked.spec
        step = (
            spec.retry_interval_seconds if is_retrying(tracked.position) else self._interval(spec)
        )
        following = due + step
        if tracked.squeezed and not is_retrying(tracked.position):
            tracked.squeezed = False
            following = self._own_slot(spec.id, step, now)
        if following < now:
            # Behind (a check outlived its interval): go on from now rather
            # than firing a burst of catch-up checks.
            following = now + step * 0.01
        self._schedule(tracked, following)

    # --- what a result does ----------------------------------------------------------

    def _record(self, tracked: Tracked, check: CheckOutcome) -> None:
        spec = tracked.spec
        key = self._key(spec)
        epoch = self.leaser.epoch(key)
        if epoch is None or not self.leaser.holds(key):
            return  # the lease went while the check ran: not ours to record
        lease = (*key, epoch)
        result = check.result
        before = tracked.position
        after = advance(before, check.outcome, spec.failure_threshold, spec.success_threshold)
        tracked.position = after
        tracked.checked_at = check.checked_at
        tracked.last_latency_ms = result.latency_ms
        tracked.latency_buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, result.latency_ms)] += 1
        tracked.latency_sum += result.latency_ms
        tracked.latency_count += 1
        self.stats.latency(spec.type, result.latency_ms)
        self.writer.add_result(
            {
                "monitor_id": spec.id,
                "checked_at": check.checked_at,
                "outcome": check.outcome,
                "state": after.state,
                "streak": after.streak,
                "latency_ms": result.latency_ms,
                "status_code": result.status_code,
                "error": result.error,
                # Details of failures only: they explain; successes would
                # only grow the table.
                "details": result.details if check.outcome != "up" and result.details else None,
                "location": self.options.location,
                LEASE_KEY: lease,
            }
        )
        if spec.locations:
            # This location's word; the writer decides the monitor's state
            # from every location's, in the transaction that writes this.
            self.writer.add_location_state(
                {
                    "monitor_id": spec.id,
                    "location": self.options.location,
                    "state": after.state,
                    "outcome": check.outcome,
                    "streak": after.streak,
                    "latency_ms": result.latency_ms,
                    "checked_at": check.checked_at,
                    "error": result.error,
                    LEASE_KEY: lease,
                }
            )
        elif after.state != before.state:
            self._transition(
                spec, "state", before.state, after.state, check.checked_at, result.error
            )
        # One location speaks for a certificate, or each would alert.
        speaks = not spec.locations or spec.locations[0] == self.options.location
        if result.cert_expires_at is not None and speaks:
            self._note_certificate(tracked, result.cert_expires_at, check.checked_at)
        self.stats.finished(check.outcome)

    def _transition(
        self,
        spec: MonitorSpec,
        kind: str,
        before: str,
        after: str,
        at: datetime,
        reason: str | None,
    ) -> None:
        self.writer.add_transition(
            {
                "monitor_id": spec.id,
                "server_id": spec.server_id,
                "from_state": before,
                "to_state": after,
                "at": at,
                "reason": reason,
                "kind": kind,
                LEASE_KEY: (*self._key(spec), self.leaser.epoch(self._key(spec))),
            }
        )

    def _note_certificate(self, tracked: Tracked, expires: datetime, at: datetime) -> None:
        days = (expires - at).total_seconds() / 86400
        if tracked.cert_expires_at != expires:
            tracked.cert_expires_at = expires
            self.writer.note_certificate(tracked.spec.id, expires)
        previous, tracked.cert_days = tracked.cert_days, days
        crossed = [
            d for d in CERT_LADDER_DAYS if days <= d < (previous if previous is not None else 1e9)
        ]
        if crossed and (previous is not None or days <= CERT_LADDER_DAYS[2]):
            self._transition(
                tracked.spec,
                "certificate",
                str(int(previous)) if previous is not None else "new",
                str(math.floor(days)),
                at,
                # Whole days, the same number the alert title shows.
                f"certificate expires in {math.floor(days)} days ({expires.isoformat()})"
                if days >= 0
                else f"certificate expired on {expires.isoformat()}",
            )

    async def _read_push(self, monitor_id: uuid.UUID) -> ProbeResult | None:
        async with self.db.unit_of_work(write=False) as session:
            row = await repository.get(session, monitor_id)
            if row is None:
                return None
            return await judge_received(session, row, utcnow())

    # --- news from elsewhere -----------------------------------------------------------

    async def _listen(self, subscription: Any) -> None:
        async for item in subscription:
            if item.topic == "monitoring.monitor.changed":
                # Two edits within a clock tick could leave the signature
                # unchanged: an announced change always reloads.
                self._forced = True
                self._reconcile_now.set()
            elif item.topic == "monitoring.push":
                with contextlib.suppress(ValueError, KeyError):
                    self.check_soon(uuid.UUID(item.payload["id"]))

    async def _retention_loop(self) -> None:
        while True:
            await asyncio.sleep(60)
            if (ANY_POOL, 0) in self.leaser.owned:  # one process does it for everyone
                try:
                    await run_retention(self.db, self.options.raw_retention_hours)
                except Exception:
                    log.exception("retention pass failed; will try again")

    async def _derive_loop(self) -> None:
        failing = OutageReporter(log, "deriving hourly and daily rollups")
        while True:
            await asyncio.sleep(self.options.derive_seconds)
            if (ANY_POOL, 0) not in self.leaser.owned:  # one process does it for everyone
                continue
            try:
                await derive_marked_hours(self.db, self.options.raw_retention_hours)
                failing.succeeded()
            except Exception as exc:
                failing.failed(exc)

    async def _locations_loop(self) -> None:
        """Which locations have live workers: a change is news, and the
        monitors listing that location are decided again. One process does
        it for everyone, as often as a worker can go away (a lease)."""
        failing = OutageReporter(log, "watching probe locations")
        period = max(0.5, self.options.lease_seconds / 6)
        while True:
            await asyncio.sleep(period)
            if not self.leaser.holds((ANY_POOL, 0)):
                continue
            try:
                await watch_locations(self.db, self.writer, self.writer.live_seconds)
                failing.succeeded()
            except Exception as exc:
                failing.failed(exc)


def _fraction(monitor_id: uuid.UUID) -> float:
    """Where in its interval a monitor is checked: a stable hash of its id."""
    return zlib.crc32(monitor_id.bytes) % 10_000 / 10_000

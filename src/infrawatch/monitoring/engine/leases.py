"""Shard leases: each engine process holds a fair share of the shards,
renews its leases, and takes over those whose holder stopped renewing. A
conditional UPDATE and its row count decide races, on both engines.

Two rules keep one monitor checked by one process at a time:

- **Renewal has its own thread**, with its own event loop and database
  connection (`LeaseRunner`). The check loop can be busy for seconds under
  load; renewal is not starved by it, so a worker that is slow is still
  counted, and one that stopped renewing is gone after one lease period.
  (With renewal on the check loop, a stalled loop lost its share and took it
  back a moment later; the cure then was to count a worker as alive for two
  periods, which left a dead worker's monitors unchecked for two.)
- **Each lease has an epoch**, raised whenever a worker takes it. The engine
  checks a monitor only while its lease is valid by its own clock
  (`holds`), and the writer writes a result or transition only if the lease
  it was produced under is still this worker's, in the same transaction
  (`fenced`): a worker cut off from the database stops checking when its
  leases run out, and what it buffered meanwhile is not written once the
  link is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.core.outage import OutageReporter
from infrawatch.monitoring import repository
from infrawatch.monitoring.models import ANY_POOL, SHARD_COUNT, ShardLease
from infrawatch.monitoring.repository import LeaseKey

log = logging.getLogger(__name__)
# Stop checking this long before the lease runs out by our clock...
SAFETY = timedelta(seconds=1)
# ...and take a gone worker's lease this long before it runs out: after it
# stopped checking, before its monitors' gap grows past lease + interval.
# Less than SAFETY, so the two never check at once (clocks within 0.25 s).
EARLY = timedelta(seconds=0.75)


class ShardLeaser:
    """Leases in two pools: ANY_POOL, shared by every worker (monitors that
    may be checked from anywhere), and the worker's own location's, shared
    by that location's workers (monitors that list it). Each pool is split
    fairly among the workers that lease it."""

    def __init__(self, db: Database, worker_id: str, location: str, lease_seconds: float) -> None:
        self.db = db
        self.worker_id = worker_id
        self.location = location
        self.pools = (ANY_POOL, location)
        self.lease = timedelta(seconds=lease_seconds)
        self.owned: dict[LeaseKey, int] = {}  # (pool, shard) → the epoch we hold it at
        # Fewer shards than the fair share, some held by others: the next
        # tick should come soon, since they are about to be released.
        self.short = False
        self._valid_until = utcnow()
        self._outage = OutageReporter(log, "renewing shard leases")
        # When the first lease held by another worker runs out: a gone
        # worker's shards are taken at that moment, not at the next tick.
        self.next_foreign_expiry: datetime | None = None

    def holds(self, key: LeaseKey) -> bool:
        """This worker may check the shard's monitors now: it holds the lease
        and the lease has not run out by this worker's clock, whether or not
        the renewal thread could reach the database since."""
        return key in self.owned and utcnow() < self._valid_until - SAFETY

    def epoch(self, key: LeaseKey) -> int | None:
        return self.owned.get(key)

    def shards(self, pool: str) -> list[int]:
        return sorted(shard for p, shard in self.owned if p == pool)

    async def join(self) -> None:
        """Be counted before taking anything. Workers started together (a
        deploy, a restart) then each see the others on their first tick and
        take their share at once, instead of the first taking every shard,
        loading every monitor and handing half of them over a tick later."""
        async with self.db.unit_of_work() as session:
            await repository.heartbeat_worker(session, self.worker_id, self.location, utcnow())

    async def tick(self, timeout: float | None = None) -> bool:
        """Renew, rebalance; True if the set of owned shards changed. A tick
        that cannot finish (the database away, a cut link that sends no
        reset) gives up after `timeout`; the leases then run out on their own."""
        before = dict(self.owned)
        try:
            await asyncio.wait_for(self._tick(), timeout)
        except Exception as exc:
            self._outage.failed(exc)
            if utcnow() > self._valid_until - SAFETY:
                self.owned = {}  # they may be someone else's now
        else:
            self._outage.succeeded()
        return self.owned != before

    async def _tick(self) -> None:
        async with self.db.unit_of_work() as session:
            await repository.serialize_lease_changes(session)
            # The time is read after the lock: another worker may have held
            # it for seconds, and leases renewed from an older "now" would
            # run out that much sooner.
            now = utcnow()
            until = now + self.lease
            await repository.heartbeat_worker(session, self.worker_id, self.location, now)
            await repository.forget_workers(session, now - self.lease * 20)
            for pool in self.pools:
                await repository.ensure_lease_rows(session, pool, SHARD_COUNT)
            # One lease period without a heartbeat and a worker is gone: its
            # renewal thread would have kept it counted had it been alive.
            live = await repository.live_workers(session, now - self.lease + EARLY)
            sharing = {
                ANY_POOL: len(live),
                self.location: sum(1 for _, loc in live if loc == self.location),
            }
            held = await repository.renew_leases(session, self.worker_id, sorted(self.owned), until)
            leases = await repository.leases(session, self.pools)
            short = False
            self.next_foreign_expiry = None
            for pool in self.pools:
                fair = math.ceil(SHARD_COUNT / max(1, sharing[pool]))
                mine = sorted(key for key in held if key[0] == pool)
                if len(mine) > fair:
                    extra = mine[fair:]
                    await repository.release_leases(session, self.worker_id, extra)
                    for key in extra:
                        held.pop(key)
                    continue
                in_pool = [lease for lease in leases if lease.pool == pool]
                self._note_foreign_expiry(in_pool, now)
                count = len(mine)
                for lease in in_pool:
                    if count >= fair:
                        break
                    key = (lease.pool, lease.shard)
                    free = lease.owner is None or (
                        lease.expires_at is not None and lease.expires_at < now + EARLY
                    )
                    if key in held or not free:
                        continue
                    epoch = await repository.take_lease(
                        session, key, self.worker_id, now + EARLY, until
                    )
                    if epoch is not None:
                        held[key] = epoch
                        count += 1
                short = short or count < fair
        self.owned = held
        self.short = short
        self._valid_until = until

    def _note_foreign_expiry(self, leases: list[ShardLease], now: datetime) -> None:
        expiries = [
            lease.expires_at
            for lease in leases
            if lease.owner not in (None, self.worker_id)
            and lease.expires_at is not None
            and lease.expires_at >= now + EARLY
        ]
        if self.next_foreign_expiry is not None:
            expiries.append(self.next_foreign_expiry)
        self.next_foreign_expiry = min(expiries, default=None)

    async def release_all(self) -> None:
        """A clean stop: hand the shards back and leave the roll of live
        workers, so the others take over now rather than after the lease."""
        self.owned = {}  # checks stop before the others may start theirs
        async with self.db.unit_of_work() as session:
            await repository.serialize_lease_changes(session)
            await repository.release_leases(session, self.worker_id, None)
            await repository.forget_worker(session, self.worker_id)


class LeaseRunner:
    """Runs a leaser's ticks in a thread of its own, on its own event loop
    and database connection. `on_change(before, after)` is called (in that
    thread) whenever the held shards change."""

    def __init__(
        self,
        leaser: ShardLeaser,
        database_url: str,
        join_seconds: float,
        on_change: Callable[[dict[LeaseKey, int], dict[LeaseKey, int]], None],
    ) -> None:
        self.leaser = leaser
        self.database_url = database_url
        self.join_seconds = join_seconds
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="shard-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        leaser = self.leaser
        leaser.db = Database(self.database_url, EventBus())
        period = leaser.lease.total_seconds()
        try:
            with contextlib.suppress(Exception):  # the first tick reports what fails
                await asyncio.wait_for(leaser.join(), period)
                await self._sleep(self.join_seconds)
            while not self._stop.is_set():
                before = dict(leaser.owned)
                if await leaser.tick(timeout=period / 2) or before != leaser.owned:
                    self.on_change(before, dict(leaser.owned))
                # Every tenth of a lease, faster while short, and just after
                # another worker's lease runs out (it may be gone).
                wait = min(1.0, period / 10) if leaser.short else period / 10
                expiry = leaser.next_foreign_expiry
                if expiry is not None:
                    until = (expiry - EARLY - utcnow()).total_seconds() + 0.05
                    wait = max(0.05, min(wait, until))
                await self._sleep(wait)
            before = dict(leaser.owned)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(leaser.release_all(), 5)
            self.on_change(before, {})
        finally:
            await leaser.db.dispose()

    async def _sleep(self, seconds: float) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not self._stop.is_set():
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.1))

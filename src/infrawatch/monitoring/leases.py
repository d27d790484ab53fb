"""Shard leases: each engine process holds a fair share of the shards,
renews its leases, and takes over those whose holder stopped renewing. A
conditional UPDATE and its row count decide races, on both engines."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring import repository
from infrawatch.monitoring.models import SHARD_COUNT

log = logging.getLogger(__name__)
LIVE_LEASES = 2  # lease periods without a heartbeat before a worker is gone


class ShardLeaser:
    def __init__(self, db: Database, worker_id: str, location: str, lease_seconds: float) -> None:
        self.db = db
        self.worker_id = worker_id
        self.location = location
        self.lease = timedelta(seconds=lease_seconds)
        self.owned: set[int] = set()
        # Fewer shards than the fair share, some held by others: the next
        # tick should come soon, since they are about to be released.
        self.short = False
        self._confirmed_until = utcnow()

    async def join(self) -> None:
        """Be counted before taking anything. Workers started together (a
        deploy, a restart) then each see the others on their first tick and
        take their share at once, instead of the first taking every shard,
        loading every monitor and handing half of them over a tick later."""
        async with self.db.unit_of_work() as session:
            await repository.heartbeat_worker(session, self.worker_id, self.location, utcnow())

    async def tick(self) -> bool:
        """Renew, rebalance; True if the set of owned shards changed."""
        before = set(self.owned)
        try:
            await self._tick()
        except Exception:
            log.exception("could not renew shard leases")
            if utcnow() > self._confirmed_until:
                # Our leases may have passed to someone else: stop checking
                # rather than check twice.
                self.owned = set()
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
            await repository.ensure_lease_rows(session, SHARD_COUNT)
            # A worker counts for the fair share until it has missed two
            # lease periods. With one, a worker whose loop stalled under load
            # lost its share, took it back a moment later, and every move
            # reloaded thousands of monitors on both sides (seen at 50,000
            # monitors: 175,000 loads for 50,000 monitors), which stalled the
            # loops more. Shards whose leases ran out meanwhile wait for their
            # holder to renew, or for it to be counted gone.
            live = await repository.live_workers(session, now - self.lease * LIVE_LEASES)
            held = await repository.renew_leases(session, self.worker_id, sorted(self.owned), until)
            fair = math.ceil(SHARD_COUNT / max(1, len(live)))
            if len(held) > fair:
                extra = sorted(held)[fair:]
                await repository.release_leases(session, self.worker_id, extra)
                held -= set(extra)
            else:
                for lease in await repository.leases(session):
                    if len(held) >= fair:
                        break
                    free = lease.owner is None or (
                        lease.expires_at is not None and lease.expires_at < now
                    )
                    if lease.shard in held or not free:
                        continue
                    if await repository.take_lease(
                        session, lease.shard, self.worker_id, now, until
                    ):
                        held.add(lease.shard)
        self.owned = held
        self.short = len(held) < fair
        self._confirmed_until = until

    async def release_all(self) -> None:
        """A clean stop: hand the shards back and leave the roll of live
        workers, so the others take over now rather than after the lease."""
        async with self.db.unit_of_work() as session:
            await repository.serialize_lease_changes(session)
            await repository.release_leases(session, self.worker_id, sorted(self.owned))
            await repository.forget_worker(session, self.worker_id)
        self.owned = set()

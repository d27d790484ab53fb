"""The engine's batched write: results (packed into their 5-minute rollup
rows, one upsert each), transitions, statuses and server health of many
checks in one transaction. Checks never wait for it; if the database is
slow or away, the batch grows and is retried."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database, stage_event
from infrawatch.core.events import Event
from infrawatch.core.outage import OutageReporter
from infrawatch.core.waiting import wait_or_timeout
from infrawatch.monitoring import quorum, repository
from infrawatch.monitoring.health import refresh_server_health
from infrawatch.monitoring.rollups import (
    FIVE_MINUTES,
    HOUR,
    Bucket,
    bucket_row,
    fleet_changes,
    fleet_checks,
)
from infrawatch.monitoring.rows import LEASE_KEY, LocationStateRow, ResultRow, TransitionRow
from infrawatch.monitoring.samples import TextMemory, pack

log = logging.getLogger(__name__)
Row = TypeVar("Row", ResultRow, TransitionRow, LocationStateRow)
# A writer refers to text it wrote into a bucket only while the bucket is
# recent: an old one may have been swept by retention and made anew.
TEXT_MEMORY_SECONDS = 3600
MAX_BUFFERED_RESULTS = 200_000
ROWS_PER_TRANSACTION = 2000


@dataclass
class Batch:
    results: list[ResultRow] = field(default_factory=list)
    transitions: list[TransitionRow] = field(default_factory=list)
    cert_expiry: dict[uuid.UUID, datetime] = field(default_factory=dict)
    # A location's word on a monitor checked from several (quorum.py).
    location_states: list[LocationStateRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results) + len(self.transitions) + len(self.location_states)

    def prepend(self, older: Batch) -> None:
        """Put an older batch (one that failed to write) in front of this one."""
        self.results[:0] = older.results
        self.transitions[:0] = older.transitions
        self.location_states[:0] = older.location_states
        self.cert_expiry = {**older.cert_expiry, **self.cert_expiry}

    def take(self, limit: int) -> Batch:
        """The oldest `limit` results and transitions, removed from here."""
        taken = Batch(
            self.results[:limit],
            self.transitions[:limit],
            self.cert_expiry,
            self.location_states[:limit],
        )
        del self.results[:limit]
        del self.transitions[:limit]
        del self.location_states[:limit]
        self.cert_expiry = {}
        return taken


class ResultWriter:
    def __init__(
        self,
        db: Database,
        flush_seconds: float = 1.0,
        max_rows: int = ROWS_PER_TRANSACTION,
        owner: str | None = None,
        live_seconds: float = 30.0,
    ) -> None:
        self.db = db
        # A worker heard from within this long is alive (quorum counts its location).
        self.live_seconds = live_seconds
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self.owner = owner  # the engine whose leases fence the writes (None: no fence)
        self.pending = Batch()
        self.dropped_results = 0
        self.fenced_rows = 0  # produced under a lease this worker no longer held
        self.broken_chains = 0  # transitions that did not follow the stored state
        self.written_results = 0
        self.failed_flushes = 0
        self.texts = TextMemory()
        self._wake = asyncio.Event()
        self._outage = OutageReporter(log, "writing monitor results (buffered meanwhile)")

    def add_result(self, row: ResultRow) -> None:
        self.pending.results.append(row)
        if len(self.pending.results) >= self.max_rows:
            self._wake.set()

    def add_transition(self, row: TransitionRow) -> None:
        self.pending.transitions.append(row)
        self._wake.set()  # state changes go out without waiting for the timer

    def add_location_state(self, row: LocationStateRow) -> None:
        self.pending.location_states.append(row)
        self._wake.set()  # it may move the monitor's state: no waiting either

    def note_certificate(self, monitor_id: uuid.UUID, expires: datetime) -> None:
        self.pending.cert_expiry[monitor_id] = expires

    @property
    def depth(self) -> int:
        return len(self.pending)

    async def run(self) -> None:
        while True:
            if self._outage.failing:
                # Backing off: a full buffer wakes the writer with every
                # check, which retried (and logged) 57 times a second.
                await asyncio.sleep(self._outage.delay(self.flush_seconds))
            else:
                await wait_or_timeout(self._wake, self.flush_seconds)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write everything pending, at most `max_rows` results per
        transaction. A writer that fell behind (a start-up, a database that
        was away) would otherwise build one transaction of 100,000 rows, and
        preparing its parameters holds the event loop, and every check due
        meanwhile, for seconds; then it falls further behind."""
        while len(self.pending) or self.pending.cert_expiry:
            batch = self.pending.take(self.max_rows)
            try:
                await self._write(batch)
            except IntegrityError:
                # A monitor deleted while its results waited here: drop its rows.
                await self._write(await self._without_deleted(batch))
            except Exception as exc:
                self.failed_flushes += 1
                self._outage.failed(exc)
                self._requeue(batch)
                return False
            self._outage.succeeded()
            self.written_results += len(batch.results)
            await asyncio.sleep(0)  # checks due now start between two slices
        return True

    def _requeue(self, batch: Batch) -> None:
        self.pending.prepend(batch)
        overflow = len(self.pending.results) - MAX_BUFFERED_RESULTS
        if overflow > 0:
            # Transitions are never dropped; the oldest raw samples may be.
            del self.pending.results[:overflow]
            self.dropped_results += overflow

    async def _without_deleted(self, batch: Batch) -> Batch:
        ids = {r["monitor_id"] for r in (*batch.results, *batch.transitions)}
        async with self.db.unit_of_work(write=False) as session:
            alive = await repository.existing_ids(session, list(ids))
        return Batch(
            results=[r for r in batch.results if r["monitor_id"] in alive],
            transitions=[t for t in batch.transitions if t["monitor_id"] in alive],
            cert_expiry={k: v for k, v in batch.cert_expiry.items() if k in alive},
            location_states=[r for r in batch.location_states if r["monitor_id"] in alive],
        )

    async def _write(self, batch: Batch) -> None:
        async with self.db.unit_of_work() as session:
            if self.owner is not None:
                batch = await self._fenced(session, batch)
            results = [_plain(r) for r in batch.results]
            rollups, texts = five_minute_rows(results, self.texts)
            await repository.add_to_five_minutes(session, rollups)
            await repository.set_cert_expiry(session, batch.cert_expiry)
            transitions = [_plain(t) for t in batch.transitions]
            if batch.location_states:
                states = [_plain(r) for r in batch.location_states]
                await repository.upsert_location_states(session, states)
                transitions += await quorum.redecide(
                    session,
                    [r["monitor_id"] for r in states],
                    utcnow() - timedelta(seconds=self.live_seconds),
                )
            if transitions:
                await self.write_transitions(session, transitions)
            if results:
                stage_event(session, Event("monitoring.results", {"results": _summaries(batch)}))
            # Last, in this order: rows every writer shares (see write_transitions).
            await repository.upsert_fleet(session, fleet_checks(rollups))
            hours = sorted({_hour(r["bucket_start"]) for r in rollups})
            await repository.mark_hours(session, hours)
        for monitor_id, bucket, crcs in texts:  # committed: now they may be referred to
            self.texts.remember(monitor_id, bucket, crcs)

    async def _fenced(self, session: Any, batch: Batch) -> Batch:
        """Only rows produced under a lease this worker still holds, checked
        in the transaction that writes them (the leases share-locked on
        PostgreSQL, SQLite's write lock elsewhere): a worker that was cut off
        and lost its shards meanwhile writes nothing of theirs."""
        assert self.owner is not None
        held = await repository.held_epochs(session, self.owner, utcnow())

        def ours(row: ResultRow | TransitionRow | LocationStateRow) -> bool:
            lease = row.get(LEASE_KEY)
            return lease is None or tuple(lease) in held

        kept = Batch(
            results=[r for r in batch.results if ours(r)],
            transitions=[t for t in batch.transitions if ours(t)],
            cert_expiry=batch.cert_expiry,
            location_states=[r for r in batch.location_states if ours(r)],
        )
        fenced = len(batch) - len(kept)
        if fenced:
            if not self.fenced_rows:
                log.warning(
                    "dropping %d buffered rows of shards this worker no longer holds", fenced
                )
            self.fenced_rows += fenced
        return kept

    async def write_transitions(self, session: Any, transitions: list[TransitionRow]) -> None:
        """Transitions, the statuses and server health they move, and their
        events, in the caller's transaction."""
        transitions = await self._chained(session, transitions)
        await repository.insert_transitions(session, transitions)
        latest: dict[uuid.UUID, TransitionRow] = {}
        for t in transitions:
            if t["kind"] == "state":
                latest[t["monitor_id"]] = t
        await repository.set_statuses(
            session, [{"id": k, "status": t["to_state"], "at": t["at"]} for k, t in latest.items()]
        )
        await refresh_server_health(
            session, [t["server_id"] for t in latest.values() if t["server_id"] is not None]
        )
        for t in transitions:
            stage_event(
                session,
                Event(
                    "monitoring.monitor.status"
                    if t["kind"] == "state"
                    else "monitoring.monitor.certificate",
                    {
                        "id": str(t["monitor_id"]),
                        "from": t["from_state"],
                        "to": t["to_state"],
                        "at": t["at"].isoformat(),
                        "reason": t["reason"],
                        "server_id": str(t["server_id"]) if t["server_id"] else None,
                    },
                ),
            )
        # Last, as in _write: the fleet's rows are shared by every writer, so
        # they are locked after the servers and monitors rows, never before
        # (the other order can deadlock with a writer on another shard).
        await repository.upsert_fleet(session, fleet_changes(transitions))

    async def _chained(self, session: Any, transitions: list[TransitionRow]) -> list[TransitionRow]:
        """State transitions that follow the stored state, in order: up→down
        after up, never down→up twice. Whatever slipped past the fence (two
        engines on one shard) cannot write a broken chain, a second incident
        or a second DOWN alert for one outage. Each kept row carries what
        alerting needs of its monitor, read in the same query."""
        ids = list({t["monitor_id"] for t in transitions})
        facts = await repository.transition_facts(session, ids) if ids else {}
        current = {monitor_id: row.status for monitor_id, row in facts.items()}
        kept = []
        for t in transitions:
            if t["kind"] == "state":
                if current.get(t["monitor_id"], t["from_state"]) != t["from_state"]:
                    self.broken_chains += 1
                    log.warning(
                        "not writing %s→%s for monitor %s: its stored state is %s",
                        t["from_state"],
                        t["to_state"],
                        t["monitor_id"],
                        current.get(t["monitor_id"]),
                    )
                    continue
                current[t["monitor_id"]] = t["to_state"]
            monitor = facts.get(t["monitor_id"])
            fact = t.copy()
            fact["monitor_name"] = monitor.name if monitor else None
            fact["monitor_type"] = monitor.type if monitor else None
            fact["target"] = monitor.target if monitor else None
            fact["in_maintenance"] = monitor.in_maintenance if monitor else None
            kept.append(fact)
        return kept


def _plain(row: Row) -> Row:
    """The row as the table takes it, without the fence's bookkeeping."""
    if LEASE_KEY not in row:
        return row
    plain = row.copy()
    del plain[LEASE_KEY]
    return plain


def _hour(start: datetime) -> datetime:
    seconds = int(start.timestamp())
    return datetime.fromtimestamp(seconds - seconds % HOUR, UTC)


def five_minute_rows(
    results: Sequence[ResultRow], memory: TextMemory
) -> tuple[list[dict[str, Any]], list[tuple[uuid.UUID, int, set[int]]]]:
    """One rollup row per monitor and 5-minute bucket, its results packed
    in; and the texts those records write out, per monitor and bucket."""
    groups: dict[tuple[uuid.UUID, int], list[ResultRow]] = {}
    for r in results:
        seconds = int(r["checked_at"].timestamp())
        groups.setdefault((r["monitor_id"], seconds - seconds % FIVE_MINUTES), []).append(r)
    recent = int(utcnow().timestamp()) - TEXT_MEMORY_SECONDS
    rows: list[dict[str, Any]] = []
    texts: list[tuple[uuid.UUID, int, set[int]]] = []
    for (monitor_id, bucket), group in groups.items():
        counted = Bucket()
        for r in group:
            counted.add(r["outcome"], r["latency_ms"])
        known = memory.known(monitor_id, bucket) if bucket >= recent else set()
        blob, written = pack(bucket, group, known)
        row = bucket_row(monitor_id, FIVE_MINUTES, datetime.fromtimestamp(bucket, UTC), counted)
        row["samples"] = blob
        rows.append(row)
        if written:
            texts.append((monitor_id, bucket, written))
    return rows, texts


def _summaries(batch: Batch) -> list[dict[str, Any]]:
    """What a console needs to move a row or a chart: the newest per monitor."""
    newest: dict[uuid.UUID, ResultRow] = {}
    for r in batch.results:
        newest[r["monitor_id"]] = r
    return [
        {
            "id": str(r["monitor_id"]),
            "at": r["checked_at"].isoformat(),
            "outcome": r["outcome"],
            "state": r["state"],
            "latency_ms": r["latency_ms"],
        }
        for r in newest.values()
    ]

"""The engine's batched write: results, rollups, transitions, statuses and
server health of many checks in one transaction. Checks never wait for it;
if the database is slow or away, the batch grows and is retried."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from infrawatch.core.db import Database, stage_event
from infrawatch.core.events import Event
from infrawatch.core.waiting import wait_or_timeout
from infrawatch.monitoring import repository
from infrawatch.monitoring.health import refresh_server_health
from infrawatch.monitoring.rollups import aggregate

log = logging.getLogger(__name__)
MAX_BUFFERED_RESULTS = 200_000
ROWS_PER_TRANSACTION = 2000


@dataclass
class Batch:
    results: list[dict[str, Any]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    cert_expiry: dict[uuid.UUID, datetime] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.results) + len(self.transitions)

    def prepend(self, older: Batch) -> None:
        """Put an older batch (one that failed to write) in front of this one."""
        self.results[:0] = older.results
        self.transitions[:0] = older.transitions
        self.cert_expiry = {**older.cert_expiry, **self.cert_expiry}

    def take(self, limit: int) -> Batch:
        """The oldest `limit` results and transitions, removed from here."""
        taken = Batch(self.results[:limit], self.transitions[:limit], self.cert_expiry)
        del self.results[:limit]
        del self.transitions[:limit]
        self.cert_expiry = {}
        return taken


class ResultWriter:
    def __init__(
        self, db: Database, flush_seconds: float = 1.0, max_rows: int = ROWS_PER_TRANSACTION
    ) -> None:
        self.db = db
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self.pending = Batch()
        self.dropped_results = 0
        self.written_results = 0
        self.failed_flushes = 0
        self._wake = asyncio.Event()

    def add_result(self, row: dict[str, Any]) -> None:
        self.pending.results.append(row)
        if len(self.pending.results) >= self.max_rows:
            self._wake.set()

    def add_transition(self, row: dict[str, Any]) -> None:
        self.pending.transitions.append(row)
        self._wake.set()  # state changes go out without waiting for the timer

    def note_certificate(self, monitor_id: uuid.UUID, expires: datetime) -> None:
        self.pending.cert_expiry[monitor_id] = expires

    @property
    def depth(self) -> int:
        return len(self.pending)

    async def run(self) -> None:
        backoff = self.flush_seconds
        while True:
            await wait_or_timeout(self._wake, backoff)
            self._wake.clear()
            backoff = self.flush_seconds if await self.flush() else min(backoff * 2, 30.0)

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
            except Exception:
                self.failed_flushes += 1
                log.exception("writing %d monitor results failed; will retry", len(batch.results))
                self._requeue(batch)
                return False
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
        ids = {r["monitor_id"] for r in batch.results} | {
            t["monitor_id"] for t in batch.transitions
        }
        async with self.db.unit_of_work(write=False) as session:
            alive = await repository.existing_ids(session, list(ids))
        return Batch(
            results=[r for r in batch.results if r["monitor_id"] in alive],
            transitions=[t for t in batch.transitions if t["monitor_id"] in alive],
            cert_expiry={k: v for k, v in batch.cert_expiry.items() if k in alive},
        )

    async def _write(self, batch: Batch) -> None:
        async with self.db.unit_of_work() as session:
            await repository.insert_results(session, batch.results)
            await repository.upsert_rollups(
                session,
                aggregate(
                    (r["monitor_id"], r["checked_at"], r["outcome"], r["latency_ms"])
                    for r in batch.results
                ),
            )
            await repository.set_cert_expiry(session, batch.cert_expiry)
            if batch.transitions:
                await self._write_transitions(session, batch.transitions)
            if batch.results:
                stage_event(session, Event("monitoring.results", {"results": _summaries(batch)}))

    async def _write_transitions(self, session: Any, transitions: list[dict[str, Any]]) -> None:
        await repository.insert_transitions(session, transitions)
        latest: dict[uuid.UUID, dict[str, Any]] = {}
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


def _summaries(batch: Batch) -> list[dict[str, Any]]:
    """What a console needs to move a row or a chart: the newest per monitor."""
    newest: dict[uuid.UUID, dict[str, Any]] = {}
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

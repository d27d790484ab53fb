"""Every query of the monitoring domain."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import (
    cast as sql_cast,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.db import UTCDateTime
from infrawatch.core.pagination import SortKey, after_cursor, order_by
from infrawatch.monitoring.models import (
    AgentReport,
    EngineWorker,
    FleetRollup,
    HostMetricRollup,
    Monitor,
    MonitorLocationState,
    MonitorRollup,
    MonitorTransition,
    ProbeLocation,
    RollupMark,
    ShardLease,
    TemplateMonitor,
)
from infrawatch.monitoring.rollups import (
    DAY,
    FIVE_MINUTES,
    FLEET_ADDITIVE,
    FLEET_CHANGES,
    HISTOGRAM_COLUMNS,
    HOUR,
)
from infrawatch.monitoring.samples import PER_BUCKET, Sample, unpack

LEASE_LOCK_KEY = 0x1A1F_0001  # any constant no other lock in the database uses
DERIVE_LOCK_KEY = 0x1A1F_0002
LAST_SECOND = 253_402_300_799  # 9999-12-31 23:59:59 UTC

# --- monitors -------------------------------------------------------------------


def add(session: AsyncSession, monitor: Monitor) -> None:
    session.add(monitor)


async def get(session: AsyncSession, monitor_id: uuid.UUID) -> Monitor | None:
    return await session.get(Monitor, monitor_id)


async def by_name(session: AsyncSession, name: str) -> Monitor | None:
    return (await session.scalars(select(Monitor).where(Monitor.name == name))).first()


async def monitors_with_clear_passwords(session: AsyncSession) -> list[Monitor]:
    """HTTP monitors whose target may hold a password in clear (a cheap
    LIKE first; target_secrets decides)."""
    query = select(Monitor).where(
        Monitor.type == "http",
        Monitor.target.like("%://%:%@%"),
        Monitor.target.not_like("%://%:***@%"),
    )
    return list((await session.scalars(query)).all())


async def by_push_token_hash(session: AsyncSession, token_hash: str) -> Monitor | None:
    query = select(Monitor).where(Monitor.push_token_hash == token_hash)
    return (await session.scalars(query)).first()


async def delete_monitor(session: AsyncSession, monitor: Monitor) -> None:
    await session.delete(monitor)


def filter_conditions(filters: dict[str, Any]) -> list[Any]:
    conditions: list[Any] = []
    if filters.get("type"):
        conditions.append(Monitor.type == filters["type"])
    if filters.get("server_id"):
        conditions.append(Monitor.server_id == filters["server_id"])
    status = filters.get("status")
    if status == "paused":
        conditions.append(Monitor.paused.is_(True))
    elif status == "maintenance":
        conditions += [Monitor.paused.is_(False), Monitor.in_maintenance.is_(True)]
    elif status:
        conditions += [
            Monitor.status == status,
            Monitor.paused.is_(False),
            Monitor.in_maintenance.is_(False),
        ]
    if filters.get("name"):
        pattern = filters["name"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Monitor.name.ilike(pattern.replace("*", "%"), escape="\\"))
    if filters.get("critical") is not None:
        conditions.append(Monitor.critical.is_(filters["critical"]))
    return conditions


async def page_monitors_keyed(
    session: AsyncSession,
    conditions: list[Any],
    keys: Sequence[SortKey],
    after: Sequence[Any] | None,
    limit: int,
) -> list[tuple[Monitor, list[Any]]]:
    query = select(Monitor, *(key.column for key in keys)).where(*conditions)
    if after is not None:
        query = query.where(after_cursor(keys, after))
    rows = await session.execute(query.order_by(*order_by(keys)).limit(limit + 1))
    return [(row[0], list(row[1:])) for row in rows]


async def count_monitors(session: AsyncSession, conditions: list[Any]) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Monitor).where(*conditions)) or 0
    )


async def last_checked(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    return {k: sample.checked_at for k, sample in (await newest_samples(session, ids)).items()}


async def statuses_of_servers(
    session: AsyncSession, server_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, bool]]]:
    rows = await session.execute(
        select(Monitor.server_id, Monitor.status, Monitor.critical).where(
            Monitor.server_id.in_(server_ids), Monitor.paused.is_(False)
        )
    )
    found: dict[uuid.UUID, list[tuple[str, bool]]] = {sid: [] for sid in server_ids}
    for server_id, status, critical in rows:
        if server_id is not None:
            found[server_id].append((status, critical))
    return found


async def all_monitors(session: AsyncSession) -> list[Monitor]:
    return list(await session.scalars(select(Monitor).order_by(Monitor.name)))


async def recent_rollups(
    session: AsyncSession, granularity: int, since: datetime
) -> list[MonitorRollup]:
    query = select(MonitorRollup).where(
        MonitorRollup.granularity == granularity, MonitorRollup.bucket_start >= since
    )
    return list(await session.scalars(query))


# --- what the engine reads --------------------------------------------------------


async def monitors_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Monitor]:
    found: list[Monitor] = []
    for start in range(0, len(ids), 1000):
        query = select(Monitor).where(Monitor.id.in_(ids[start : start + 1000]))
        found.extend(await session.scalars(query))
    return found


async def shard_signature(session: AsyncSession, shards: Sequence[int]) -> tuple[Any, ...]:
    """Changes whenever a monitor in these shards is added, removed, edited,
    paused or resumed (each of those bumps its version or the count)."""
    row = (
        await session.execute(
            select(func.count(), func.sum(Monitor.version), func.max(Monitor.updated_at)).where(
                Monitor.shard.in_(shards), Monitor.paused.is_(False)
            )
        )
    ).one()
    return tuple(row)


async def versions_in_shards(session: AsyncSession, shards: Sequence[int]) -> dict[uuid.UUID, int]:
    """Monitors of these shards that may be checked from anywhere."""
    rows = await session.execute(
        select(Monitor.id, Monitor.version).where(
            Monitor.shard.in_(shards), Monitor.paused.is_(False), Monitor.located.is_(False)
        )
    )
    return {row[0]: row[1] for row in rows}


async def newest_samples(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Sample]:
    """The last stored check of each monitor (where its state machine
    stands): one backward index probe for its newest 5-minute row, whose
    samples are read here."""
    r = MonitorRollup
    found: dict[uuid.UUID, Sample] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        newest = (
            select(func.max(r.bucket_start))
            .where(
                r.monitor_id == Monitor.id,
                r.granularity == FIVE_MINUTES,
                r.samples.is_not(None),
            )
            .scalar_subquery()
        )
        pairs = (
            select(Monitor.id.label("mid"), newest.label("start"))
            .where(Monitor.id.in_(chunk))
            .subquery()
        )
        query = select(r.monitor_id, r.bucket_start, r.samples).join(
            pairs,
            and_(
                r.monitor_id == pairs.c.mid,
                r.granularity == FIVE_MINUTES,
                r.bucket_start == pairs.c.start,
            ),
        )
        for monitor_id, bucket, blob in await session.execute(query):
            if blob is not None:
                found[monitor_id] = max(unpack(bucket, blob), key=lambda s: (s.checked_at, s.id))
    return found


# --- the engine's batched write -----------------------------------------------------


def _upsert(session: AsyncSession, table: Table) -> Any:
    """An INSERT that takes ON CONFLICT clauses, in the session's dialect."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


ROLLUP_KEY = ["monitor_id", "granularity", "bucket_start"]
ADDITIVE_FIGURES = ("count", "up", "down", "degraded", "latency_sum", *HISTOGRAM_COLUMNS)
ROLLUPS = cast(Table, MonitorRollup.__table__)
FIGURE_COLUMNS = (*ROLLUP_KEY, *ADDITIVE_FIGURES, "latency_min", "latency_max")
FIVE_MINUTE_COLUMNS = (*FIGURE_COLUMNS, "samples")
STAGED_FIVE_MINUTES = "staged_five_minutes"
# The engine's batch goes here by COPY on PostgreSQL (a temporary table of
# the connection's own, emptied at every commit).
STAGED = Table(
    STAGED_FIVE_MINUTES, MetaData(), *[Column(c, ROLLUPS.c[c].type) for c in FIVE_MINUTE_COLUMNS]
)


HOST_ADDITIVE = ("reports", "cpu_sum", "memory_sum", "load_sum", "network_bytes")
HOST_MAXIMA = ("cpu_max", "memory_max", "disk_max", "load_max")


def _adding(
    table: Table,
    stmt: Any,
    added: Sequence[str] = ADDITIVE_FIGURES,
    lowest: Sequence[str] = ("latency_min",),
    highest: Sequence[str] = ("latency_max",),
) -> dict[str, Any]:
    """SET clauses that add a rollup row's figures to the stored ones and
    keep the extremes (a monitor's by default)."""
    excluded = stmt.excluded
    changes: dict[str, Any] = {name: table.c[name] + excluded[name] for name in added}
    # CASE, not min()/least(): one spelling that both engines understand.
    for name in lowest:
        changes[name] = case((excluded[name] < table.c[name], excluded[name]), else_=table.c[name])
    for name in highest:
        changes[name] = case((excluded[name] > table.c[name], excluded[name]), else_=table.c[name])
    return changes


@functools.cache
def _statement(dialect: str, purpose: str) -> Any:
    """The write path's statements, built once per dialect: building one
    (its SET clauses, the `excluded` alias) took milliseconds per batch and
    a statement built anew each time missed SQLAlchemy's compiled cache."""
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if purpose == "add rollups":
        stmt = insert_into(ROLLUPS)
        return stmt.on_conflict_do_update(index_elements=ROLLUP_KEY, set_=_adding(ROLLUPS, stmt))
    if purpose == "add five minutes":
        stmt = insert_into(ROLLUPS)
        if dialect == "postgresql":
            stmt = stmt.from_select(
                FIVE_MINUTE_COLUMNS,
                # Lock order again: COPY kept it, the SELECT must say so.
                select(*[STAGED.c[c] for c in FIVE_MINUTE_COLUMNS]).order_by(
                    STAGED.c.monitor_id, STAGED.c.granularity, STAGED.c.bucket_start
                ),
            )
        changes = _adding(ROLLUPS, stmt)
        # CAST: SQLite's || makes text of two blobs; the cast gives the bytes back.
        changes["samples"] = sql_cast(
            func.coalesce(ROLLUPS.c.samples, b"").op("||")(stmt.excluded.samples), LargeBinary
        )
        return stmt.on_conflict_do_update(index_elements=ROLLUP_KEY, set_=changes)
    if purpose == "add host figures":
        hosts = cast(Table, HostMetricRollup.__table__)
        stmt = insert_into(hosts)
        changes = _adding(hosts, stmt, HOST_ADDITIVE, lowest=(), highest=HOST_MAXIMA)
        return stmt.on_conflict_do_update(
            index_elements=["server_id", "period", "start"], set_=changes
        )
    if purpose == "add fleet":
        fleet = cast(Table, FleetRollup.__table__)
        stmt = insert_into(fleet)
        changes = {
            name: fleet.c[name] + stmt.excluded[name] for name in (*FLEET_ADDITIVE, *FLEET_CHANGES)
        }
        return stmt.on_conflict_do_update(
            index_elements=["granularity", "bucket_start"], set_=changes
        )
    if purpose == "stage":
        return text(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGED_FIVE_MINUTES}"
            " (LIKE monitor_rollups) ON COMMIT DELETE ROWS"
        )
    raise ValueError(purpose)


def _in_lock_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A fixed lock order: two workers briefly sharing a monitor while a
    shard changes hands must wait for each other, not deadlock."""
    return sorted(rows, key=lambda r: (r["monitor_id"], r["granularity"], r["bucket_start"]))


async def upsert_rollups(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Rows added to the stored ones."""
    if rows:
        await session.execute(_statement(_dialect(session), "add rollups"), _in_lock_order(rows))


async def add_to_five_minutes(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """The engine's one write per result: counts added, the result's packed
    record appended to the bucket's samples. On PostgreSQL the rows go in
    by COPY into a temporary table and one INSERT … SELECT upserts them
    (binary COPY skips parsing 20 parameters a row)."""
    if not rows:
        return
    rows = _in_lock_order(rows)
    dialect = _dialect(session)
    if dialect != "postgresql":
        await session.execute(_statement(dialect, "add five minutes"), rows)
        return
    # Through the session, so it opens the transaction the COPY then joins
    # (on the bare driver connection it would autocommit, and ON COMMIT
    # DELETE ROWS would empty the table before the upsert read it).
    await session.execute(_statement(dialect, "stage"))
    connection = await (await session.connection()).get_raw_connection()
    driver = connection.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(
        STAGED_FIVE_MINUTES,
        records=[tuple(r[c] for c in FIVE_MINUTE_COLUMNS) for r in rows],
        columns=FIVE_MINUTE_COLUMNS,
    )
    await session.execute(_statement(dialect, "add five minutes"))


async def derive_from_five_minutes(
    session: AsyncSession,
    first: uuid.UUID,
    last: uuid.UUID,
    hour: datetime,
    day: datetime,
) -> None:
    """For the monitors with ids in [first, last]: what the hour's 5-minute
    rows gained since its hourly row was derived is added to the day, then
    the hourly row is written over with their sum. Two statements, the
    adding up in the database: done in Python, a pass at 50,000 monitors
    held a worker's event loop for seconds."""
    r = ROLLUPS
    end = hour + timedelta(seconds=HOUR)
    figures = [
        *[func.sum(r.c[name]).label(name) for name in ADDITIVE_FIGURES],
        func.min(r.c.latency_min).label("latency_min"),
        func.max(r.c.latency_max).label("latency_max"),
    ]
    fresh = (
        select(r.c.monitor_id, *figures)
        .where(
            r.c.granularity == FIVE_MINUTES,
            r.c.bucket_start >= hour,
            r.c.bucket_start < end,
            r.c.monitor_id.between(first, last),
        )
        .group_by(r.c.monitor_id)
    )
    new = fresh.subquery("new")
    old = (
        select(r.c.monitor_id, *[r.c[name] for name in ADDITIVE_FIGURES])
        .where(
            r.c.granularity == HOUR,
            r.c.bucket_start == hour,
            r.c.monitor_id.between(first, last),
        )
        .subquery("old")
    )
    gained = (
        select(
            new.c.monitor_id,
            literal(DAY),
            literal(day, UTCDateTime(timezone=True)),
            *[new.c[name] - func.coalesce(old.c[name], 0) for name in ADDITIVE_FIGURES],
            new.c.latency_min,
            new.c.latency_max,
        )
        .select_from(new.outerjoin(old, new.c.monitor_id == old.c.monitor_id))
        # A WHERE, as SQLite needs before ON CONFLICT after a join.
        .where(new.c.count != func.coalesce(old.c.count, 0))
    )
    add = _upsert(session, r).from_select(FIGURE_COLUMNS, gained)
    await session.execute(
        add.on_conflict_do_update(index_elements=ROLLUP_KEY, set_=_adding(r, add))
    )
    hourly = fresh.with_only_columns(
        r.c.monitor_id, literal(HOUR), literal(hour, UTCDateTime(timezone=True)), *figures
    )
    replace = _upsert(session, r).from_select(FIGURE_COLUMNS, hourly)
    await session.execute(
        replace.on_conflict_do_update(
            index_elements=ROLLUP_KEY,
            set_={n: replace.excluded[n] for n in FIGURE_COLUMNS if n not in ROLLUP_KEY},
        )
    )


async def monitors_with_rollups(
    session: AsyncSession, granularity: int, start: datetime, end: datetime
) -> list[uuid.UUID]:
    r = MonitorRollup
    query = (
        select(r.monitor_id)
        .where(r.granularity == granularity, r.bucket_start >= start, r.bucket_start < end)
        .distinct()
    )
    return sorted(await session.scalars(query))


async def mark_hours(session: AsyncSession, hours: Sequence[datetime]) -> None:
    """Hours whose 5-minute rows this batch changed: to be derived again."""
    if not hours:
        return
    table = cast(Table, RollupMark.__table__)
    stmt = _upsert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["hour_start"], set_={"version": table.c.version + 1}
    )
    await session.execute(stmt, [{"hour_start": h, "version": 1} for h in sorted(hours)])


async def rollup_marks(session: AsyncSession) -> list[tuple[datetime, int]]:
    rows = await session.execute(
        select(RollupMark.hour_start, RollupMark.version).order_by(RollupMark.hour_start)
    )
    return [(row[0], row[1]) for row in rows]


async def clear_mark(session: AsyncSession, hour_start: datetime, version: int | None) -> None:
    """The mark, if no batch has bumped it since it was read (None: whatever
    its version)."""
    query = delete(RollupMark).where(RollupMark.hour_start == hour_start)
    if version is not None:
        query = query.where(RollupMark.version == version)
    await session.execute(query)


async def take_derive_lock(session: AsyncSession) -> None:
    """One deriving pass at a time (two processes briefly both thinking they
    lead would each add an hour's change to its day); SQLite's write lock
    does the same there."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(DERIVE_LOCK_KEY)))


async def insert_transitions(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        await session.execute(insert(cast(Table, MonitorTransition.__table__)), rows)


async def set_statuses(session: AsyncSession, changes: list[dict[str, Any]]) -> None:
    """One executemany, in id order: a start-up batch holds a state change
    for every monitor, and row-at-a-time round trips kept its transaction
    (and the rollup rows it had locked) open for minutes under load."""
    if not changes:
        return
    table = cast(Table, Monitor.__table__)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("target_id"))
        .values(status=bindparam("new_status"), status_changed_at=bindparam("changed_at"))
    )
    await session.execute(
        stmt,
        [
            {"target_id": c["id"], "new_status": c["status"], "changed_at": c["at"]}
            for c in sorted(changes, key=lambda c: c["id"])
        ],
    )


async def set_cert_expiry(session: AsyncSession, changes: dict[uuid.UUID, datetime]) -> None:
    if not changes:
        return
    table = cast(Table, Monitor.__table__)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("target_id"))
        .values(cert_expires_at=bindparam("expires"))
    )
    await session.execute(stmt, [{"target_id": k, "expires": changes[k]} for k in sorted(changes)])


async def existing_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    rows = await session.scalars(select(Monitor.id).where(Monitor.id.in_(ids)))
    return set(rows)


# --- reading history ------------------------------------------------------------------


async def results_page(
    session: AsyncSession, monitor_id: uuid.UUID, before_id: int | None, limit: int
) -> list[Sample]:
    """Newest first. Every 5-minute row with samples holds at least one,
    so `limit` rows always hold `limit` results or all there are."""
    r = MonitorRollup
    query = select(r.bucket_start, r.samples).where(
        r.monitor_id == monitor_id, r.granularity == FIVE_MINUTES, r.samples.is_not(None)
    )
    if before_id is not None:
        # A cursor past year 9999 (any 18 digits pass the format check)
        # reads from the newest, not a 500 for an impossible date.
        newest_bucket = datetime.fromtimestamp(min(before_id // PER_BUCKET, LAST_SECOND), UTC)
        query = query.where(r.bucket_start <= newest_bucket)
    found: list[Sample] = []
    for bucket, blob in await session.execute(query.order_by(r.bucket_start.desc()).limit(limit)):
        for sample in sorted(unpack(bucket, blob or b""), key=lambda s: s.id, reverse=True):
            if before_id is None or sample.id < before_id:
                found.append(sample)
                if len(found) == limit:
                    return found
    return found


async def count_results(session: AsyncSession, monitor_id: uuid.UUID) -> int:
    r = MonitorRollup
    query = select(func.sum(r.count)).where(
        r.monitor_id == monitor_id, r.granularity == FIVE_MINUTES, r.samples.is_not(None)
    )
    return int(await session.scalar(query) or 0)


async def rollups(
    session: AsyncSession, monitor_id: uuid.UUID, granularity: int, since: datetime
) -> list[MonitorRollup]:
    query = select(MonitorRollup).where(
        MonitorRollup.monitor_id == monitor_id,
        MonitorRollup.granularity == granularity,
        MonitorRollup.bucket_start >= since,
    )
    return list(await session.scalars(query.order_by(MonitorRollup.bucket_start)))


async def transitions(
    session: AsyncSession, monitor_id: uuid.UUID, limit: int
) -> list[MonitorTransition]:
    query = select(MonitorTransition).where(MonitorTransition.monitor_id == monitor_id)
    return list(await session.scalars(query.order_by(MonitorTransition.id.desc()).limit(limit)))


# --- retention ----------------------------------------------------------------------


async def delete_rollups_before(
    session: AsyncSession, granularity: int, cutoff: datetime, batch: int
) -> int:
    doomed = (
        select(MonitorRollup.monitor_id, MonitorRollup.bucket_start)
        .where(MonitorRollup.granularity == granularity, MonitorRollup.bucket_start < cutoff)
        .limit(batch)
        .subquery()
    )
    result = await session.execute(
        delete(MonitorRollup).where(
            MonitorRollup.granularity == granularity,
            MonitorRollup.bucket_start < cutoff,
            MonitorRollup.monitor_id.in_(select(doomed.c.monitor_id)),
            MonitorRollup.bucket_start.in_(select(doomed.c.bucket_start)),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- fleet rollups --------------------------------------------------------------------


async def upsert_fleet(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Added to the fleet's rows. Every writer meets on these few rows, so a
    caller does this last in its transaction: the row lock is held from here
    to the commit only."""
    if not rows:
        return
    rows = sorted(rows, key=lambda r: (r["granularity"], r["bucket_start"]))  # one lock order
    await session.execute(_statement(_dialect(session), "add fleet"), rows)


async def fleet_rows_since(
    session: AsyncSession, granularity: int, since: datetime
) -> list[FleetRollup]:
    query = (
        select(FleetRollup)
        .where(FleetRollup.granularity == granularity, FleetRollup.bucket_start >= since)
        .order_by(FleetRollup.bucket_start)
    )
    return list(await session.scalars(query))


async def delete_fleet_before(session: AsyncSession, granularity: int, cutoff: datetime) -> int:
    result = await session.execute(
        delete(FleetRollup).where(
            FleetRollup.granularity == granularity, FleetRollup.bucket_start < cutoff
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- shard leases ---------------------------------------------------------------------


async def heartbeat_worker(
    session: AsyncSession, worker_id: str, location: str, now: datetime
) -> None:
    updated = await session.execute(
        update(EngineWorker).where(EngineWorker.id == worker_id).values(heartbeat_at=now)
    )
    if not updated.rowcount:  # type: ignore[attr-defined]
        session.add(EngineWorker(id=worker_id, location=location, started_at=now, heartbeat_at=now))


async def live_workers(session: AsyncSession, since: datetime) -> list[tuple[str, str]]:
    """(id, location) of the workers heard from since then."""
    query = select(EngineWorker.id, EngineWorker.location).where(EngineWorker.heartbeat_at >= since)
    return [(wid, loc) for wid, loc in await session.execute(query.order_by(EngineWorker.id))]


async def forget_workers(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(EngineWorker).where(EngineWorker.heartbeat_at < before))


async def forget_worker(session: AsyncSession, worker_id: str) -> None:
    await session.execute(delete(EngineWorker).where(EngineWorker.id == worker_id))


async def leases(session: AsyncSession, pools: Sequence[str]) -> list[ShardLease]:
    query = select(ShardLease).where(ShardLease.pool.in_(pools))
    return list(await session.scalars(query.order_by(ShardLease.pool, ShardLease.shard)))


async def serialize_lease_changes(session: AsyncSession) -> None:
    """Two workers rebalancing at once would lock lease rows in different
    orders and deadlock; on PostgreSQL one transaction-scoped advisory lock
    lets one tick at a time through (SQLite's write lock already does)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(LEASE_LOCK_KEY)))


async def ensure_lease_rows(session: AsyncSession, pool: str, shard_count: int) -> None:
    existing = set(await session.scalars(select(ShardLease.shard).where(ShardLease.pool == pool)))
    missing = [{"pool": pool, "shard": s} for s in range(shard_count) if s not in existing]
    if missing:
        await session.execute(insert(ShardLease), missing)


LeaseKey = tuple[str, int]  # (pool, shard)


async def take_lease(
    session: AsyncSession, key: LeaseKey, owner: str, now: datetime, until: datetime
) -> int | None:
    """-> the lease's new epoch, or None if another worker got there first
    (a conditional UPDATE and its row count tell). A lease running out
    before `now` is free."""
    pool, shard = key
    here = (ShardLease.pool == pool, ShardLease.shard == shard)
    result = await session.execute(
        update(ShardLease)
        .where(
            *here,
            or_(
                ShardLease.owner.is_(None),
                ShardLease.owner == owner,
                ShardLease.expires_at < now,
            ),
        )
        .values(owner=owner, expires_at=until, epoch=ShardLease.epoch + 1)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    epoch = await session.scalar(select(ShardLease.epoch).where(*here))
    return int(epoch or 0)


async def renew_leases(
    session: AsyncSession, owner: str, keys: Sequence[LeaseKey], until: datetime
) -> dict[LeaseKey, int]:
    """-> (pool, shard) → epoch of every lease this owner holds after renewing."""
    if keys:
        await session.execute(
            update(ShardLease)
            .where(ShardLease.owner == owner, tuple_(ShardLease.pool, ShardLease.shard).in_(keys))
            .values(expires_at=until)
        )
    held = select(ShardLease.pool, ShardLease.shard, ShardLease.epoch).where(
        ShardLease.owner == owner
    )
    return {(pool, shard): epoch for pool, shard, epoch in await session.execute(held)}


async def release_leases(
    session: AsyncSession, owner: str, keys: Sequence[LeaseKey] | None
) -> None:
    """Hand these leases back (None: all this owner holds)."""
    query = update(ShardLease).where(ShardLease.owner == owner)
    if keys is not None:
        if not keys:
            return
        query = query.where(tuple_(ShardLease.pool, ShardLease.shard).in_(keys))
    await session.execute(query.values(owner=None, expires_at=None))


async def held_epochs(
    session: AsyncSession, owner: str, now: datetime
) -> set[tuple[str, int, int]]:
    """(pool, shard, epoch) of the leases `owner` holds and that have not run
    out. On PostgreSQL the rows are share-locked until the transaction ends,
    so a worker taking one of them over waits for this write to commit."""
    query = select(ShardLease.pool, ShardLease.shard, ShardLease.epoch).where(
        ShardLease.owner == owner, ShardLease.expires_at > now
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return {(pool, shard, epoch) for pool, shard, epoch in await session.execute(query)}


async def transition_facts(
    session: AsyncSession, monitor_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """Per monitor: its stored status and what its transitions carry."""
    query = select(
        Monitor.id,
        Monitor.status,
        Monitor.name,
        Monitor.type,
        Monitor.target,
        Monitor.in_maintenance,
    ).where(Monitor.id.in_(monitor_ids))
    return {row.id: row for row in await session.execute(query)}


# --- several locations ------------------------------------------------------------------


async def located_versions(
    session: AsyncSession, shards: Sequence[int], location: str
) -> dict[uuid.UUID, int]:
    """Monitors of these shards that list `location`."""
    if not shards:
        return {}
    rows = await session.execute(
        select(Monitor.id, Monitor.version, Monitor.locations).where(
            Monitor.shard.in_(shards), Monitor.paused.is_(False), Monitor.located.is_(True)
        )
    )
    return {mid: version for mid, version, listed in rows if location in (listed or [])}


async def upsert_location_states(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    # The newest per (monitor, location) only: one statement cannot touch a
    # row twice on PostgreSQL.
    newest: dict[tuple[uuid.UUID, str], Mapping[str, Any]] = {}
    for row in rows:
        newest[(row["monitor_id"], row["location"])] = row
    statement = _upsert(session, cast(Table, MonitorLocationState.__table__))
    statement = statement.on_conflict_do_update(
        index_elements=["monitor_id", "location"],
        set_={
            name: statement.excluded[name]
            for name in ("state", "outcome", "streak", "latency_ms", "checked_at", "error")
        },
    )
    await session.execute(statement, list(newest.values()))


async def lock_for_quorum(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Monitor]:
    """The monitors, locked on PostgreSQL until the transaction ends, in id
    order (two writers lock them in one order: no deadlock)."""
    query = select(Monitor).where(Monitor.id.in_(ids)).order_by(Monitor.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    # Fresh from the database, not what the session may hold already.
    query = query.execution_options(populate_existing=True)
    return list(await session.scalars(query))


async def location_states(
    session: AsyncSession, ids: Sequence[uuid.UUID], location: str | None = None
) -> dict[uuid.UUID, dict[str, MonitorLocationState]]:
    """monitor → location → its latest state (only `location`'s, if given)."""
    found: dict[uuid.UUID, dict[str, MonitorLocationState]] = {}
    for start in range(0, len(ids), 1000):
        query = select(MonitorLocationState).where(
            MonitorLocationState.monitor_id.in_(ids[start : start + 1000])
        )
        if location is not None:
            query = query.where(MonitorLocationState.location == location)
        for row in await session.scalars(query):
            found.setdefault(row.monitor_id, {})[row.location] = row
    return found


async def listed_locations(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The locations each of these monitors lists (only those listing some)."""
    query = select(Monitor.id, Monitor.locations).where(
        Monitor.id.in_(ids), Monitor.located.is_(True)
    )
    return {mid: list(listed or []) for mid, listed in await session.execute(query)}


async def drop_location_states(
    session: AsyncSession, monitor_id: uuid.UUID, keep: Sequence[str]
) -> None:
    query = delete(MonitorLocationState).where(MonitorLocationState.monitor_id == monitor_id)
    if keep:
        query = query.where(MonitorLocationState.location.not_in(keep))
    await session.execute(query)


async def live_locations(session: AsyncSession, since: datetime) -> set[str]:
    query = select(EngineWorker.location).where(EngineWorker.heartbeat_at >= since).distinct()
    return set(await session.scalars(query))


async def monitors_listing(session: AsyncSession, names: set[str]) -> list[uuid.UUID]:
    rows = await session.execute(
        select(Monitor.id, Monitor.locations).where(Monitor.located.is_(True))
    )
    return [mid for mid, listed in rows if names & set(listed or [])]


async def probe_locations(session: AsyncSession) -> list[ProbeLocation]:
    return list(await session.scalars(select(ProbeLocation).order_by(ProbeLocation.name)))


async def live_worker_counts(session: AsyncSession, since: datetime) -> dict[str, int]:
    query = (
        select(EngineWorker.location, func.count())
        .where(EngineWorker.heartbeat_at >= since)
        .group_by(EngineWorker.location)
    )
    return {loc: int(count) for loc, count in await session.execute(query)}


async def add_probe_location(session: AsyncSession, name: str, now: datetime) -> None:
    # A first sight is no news: marked as told already.
    await session.execute(
        _upsert(session, cast(Table, ProbeLocation.__table__))
        .values(name=name, state="up", since=now, alerted_at=now)
        .on_conflict_do_nothing()
    )


async def move_probe_location(
    session: AsyncSession, name: str, old: str, new: str, now: datetime
) -> bool:
    """Conditional, so two watchers at once report a change once."""
    result = await session.execute(
        update(ProbeLocation)
        .where(ProbeLocation.name == name, ProbeLocation.state == old)
        .values(state=new, since=now, alerted_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def forget_probe_location(session: AsyncSession, name: str) -> bool:
    await session.execute(delete(MonitorLocationState).where(MonitorLocationState.location == name))
    result = await session.execute(delete(ProbeLocation).where(ProbeLocation.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def any_location_news(session: AsyncSession) -> bool:
    query = select(ProbeLocation.name).where(ProbeLocation.alerted_at.is_(None)).limit(1)
    return (await session.scalar(query)) is not None


async def mark_location_news(session: AsyncSession, names: Sequence[str], at: datetime) -> None:
    if names:
        await session.execute(
            update(ProbeLocation).where(ProbeLocation.name.in_(names)).values(alerted_at=at)
        )


async def claim_location_news(session: AsyncSession, limit: int) -> list[ProbeLocation]:
    query = (
        select(ProbeLocation)
        .where(ProbeLocation.alerted_at.is_(None))
        .order_by(ProbeLocation.since)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(await session.scalars(query))


# --- what alerting reads ----------------------------------------------------------------


async def claim_unalerted(session: AsyncSession, older_than: datetime, limit: int) -> list[Any]:
    """Transitions alerting has not handled yet, oldest first, as plain rows.
    On PostgreSQL rows another process holds are skipped, so several can
    share the work."""
    table = cast(Table, MonitorTransition.__table__)
    query = (
        select(table)
        .where(table.c.alerted_at.is_(None), table.c.at <= older_than)
        .order_by(table.c.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(await session.execute(query))


async def any_unalerted(session: AsyncSession) -> bool:
    query = select(MonitorTransition.id).where(MonitorTransition.alerted_at.is_(None)).limit(1)
    return (await session.scalar(query)) is not None


async def mark_alerted(session: AsyncSession, ids: Sequence[int], at: datetime) -> None:
    if ids:
        await session.execute(
            update(MonitorTransition).where(MonitorTransition.id.in_(ids)).values(alerted_at=at)
        )


async def down_monitors_of_servers(
    session: AsyncSession, server_ids: Sequence[uuid.UUID]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(monitor, server) for the monitors of these servers that are down."""
    if not server_ids:
        return []
    query = select(Monitor.id, Monitor.server_id).where(
        Monitor.server_id.in_(sorted(set(server_ids))),
        Monitor.status == "down",
        Monitor.paused.is_(False),
    )
    return [(row[0], row[1]) for row in await session.execute(query) if row[1] is not None]


async def all_monitor_targets(session: AsyncSession) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    rows = await session.execute(select(Monitor.id, Monitor.server_id))
    return [(row[0], row[1]) for row in rows]


async def set_in_maintenance(session: AsyncSession, ids: Sequence[uuid.UUID], value: bool) -> None:
    for start in range(0, len(ids), 500):
        await session.execute(
            update(Monitor)
            .where(Monitor.id.in_(ids[start : start + 500]), Monitor.in_maintenance.is_(not value))
            .values(in_maintenance=value)
        )


async def in_maintenance_ids(session: AsyncSession) -> set[uuid.UUID]:
    return set(await session.scalars(select(Monitor.id).where(Monitor.in_maintenance.is_(True))))


async def rollup_tuples(
    session: AsyncSession, ids: Sequence[uuid.UUID], granularity: int, since: datetime
) -> list[Any]:
    """(monitor_id, bucket_start, count, up, down, degraded, latency_sum) of
    many monitors at once: plain rows, not objects, because a status page
    reads thousands of them per render."""
    rows: list[Any] = []
    r = MonitorRollup
    connection = await session.connection()  # plain rows: no ORM loading per row
    for start in range(0, len(ids), 1000):
        query = select(
            r.monitor_id, r.bucket_start, r.count, r.up, r.down, r.degraded, r.latency_sum
        ).where(
            r.monitor_id.in_(ids[start : start + 1000]),
            r.granularity == granularity,
            r.bucket_start >= since,
        )
        rows.extend(await connection.execute(query))
    return rows


async def display_status_counts(session: AsyncSession) -> dict[str, int]:
    shown = case(
        (Monitor.paused, "paused"), (Monitor.in_maintenance, "maintenance"), else_=Monitor.status
    )
    query = select(shown, func.count()).group_by(shown)
    return {str(status): int(count) for status, count in await session.execute(query)}


async def latest_state_changes(session: AsyncSession, limit: int) -> list[Any]:
    """(transition, monitor name), newest first, across all monitors."""
    query = (
        select(MonitorTransition, Monitor.name)
        .join(Monitor, Monitor.id == MonitorTransition.monitor_id)
        .where(MonitorTransition.kind == "state")
        .order_by(MonitorTransition.id.desc())
        .limit(limit)
    )
    return list(await session.execute(query))


# Monitors told of by a report rather than checked: no response time.
HEARTBEAT_TYPES = ("push", "agent")


async def slowest_since(session: AsyncSession, since: datetime, limit: int) -> list[Any]:
    """(monitor id, name, type, average latency, checks) from 5-minute rollups,
    of monitors whose checks have a response time (not push or agent
    heartbeats), averaged over the answered checks."""
    r = MonitorRollup
    answered = func.sum(r.up + r.degraded)
    average = (func.sum(r.latency_sum) / answered).label("average")
    query = (
        select(r.monitor_id, Monitor.name, Monitor.type, average, func.sum(r.count))
        .join(Monitor, Monitor.id == r.monitor_id)
        .where(r.granularity == 300, r.bucket_start >= since)
        .where(Monitor.type.not_in(HEARTBEAT_TYPES))
        .having(answered > 0)
        .group_by(r.monitor_id, Monitor.name, Monitor.type)
        .order_by(average.desc())
        .limit(limit)
    )
    return list(await session.execute(query))


async def monitor_choices(session: AsyncSession, limit: int) -> list[Any]:
    """(id, name, type) by name, for pickers."""
    query = select(Monitor.id, Monitor.name, Monitor.type).order_by(Monitor.name).limit(limit)
    return list(await session.execute(query))


# --- the host agent ---------------------------------------------------------------


async def agent_report(
    session: AsyncSession, server_id: uuid.UUID, *, lock: bool = False
) -> AgentReport | None:
    return await session.get(AgentReport, server_id, with_for_update=lock or None)


async def add_to_host_rollups(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """A report added to its buckets (5 min, hour, day) in one statement:
    sums added, maxima kept, a bucket made by its first report."""
    await session.execute(_statement(_dialect(session), "add host figures"), rows)


async def host_rollups(
    session: AsyncSession, server_id: uuid.UUID, period: str, since: datetime
) -> list[HostMetricRollup]:
    query = (
        select(HostMetricRollup)
        .where(
            HostMetricRollup.server_id == server_id,
            HostMetricRollup.period == period,
            HostMetricRollup.start >= since,
        )
        .order_by(HostMetricRollup.start)
    )
    return list(await session.scalars(query))


async def agent_monitor_ids(session: AsyncSession, server_id: uuid.UUID) -> list[uuid.UUID]:
    query = select(Monitor.id).where(Monitor.server_id == server_id, Monitor.type == "agent")
    return list(await session.scalars(query))


async def latest_agent_reports(session: AsyncSession) -> list[AgentReport]:
    return list(await session.scalars(select(AgentReport)))


# --- template monitors ----------------------------------------------------------------


async def template_monitors(session: AsyncSession, template_id: uuid.UUID) -> list[TemplateMonitor]:
    query = select(TemplateMonitor).where(TemplateMonitor.template_id == template_id)
    return list(await session.scalars(query.order_by(TemplateMonitor.position)))


async def replace_template_monitors(
    session: AsyncSession, template_id: uuid.UUID, specs: Sequence[dict[str, Any]]
) -> list[TemplateMonitor]:
    """The template's monitors are these, in this order (flushed: the rows
    have their ids)."""
    await session.execute(delete(TemplateMonitor).where(TemplateMonitor.template_id == template_id))
    rows = [
        TemplateMonitor(template_id=template_id, position=i, spec=spec)
        for i, spec in enumerate(specs)
    ]
    session.add_all(rows)
    await session.flush()
    return rows

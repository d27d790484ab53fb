from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from infrawatch import migrations
from infrawatch.core.db import Base, UTCDateTime
from infrawatch.core.db import create_engine as create_database_engine
from infrawatch.monitoring.samples import unpack
from tests.conftest import Backend


def _not_search_index(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Engine-specific search and ordering indexes live only in the migration.
    searched = name is not None and (
        name.startswith("servers_search")
        or name.endswith("_trgm")
        or name == "ix_servers_live_lower_name_id"
    )
    return not (reflected and searched)


# SQLite reflection cannot read expression indexes; the filter above skips them.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
async def test_migrations_go_down_and_up_again_and_match_the_models(
    backend: Backend, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    if backend.template is not None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        engine = create_database_engine(url)
    else:
        url = backend.url
        engine = create_async_engine(url)
    try:
        await migrations.upgrade(engine)
        assert await migrations.current_revision(engine) == migrations.head_revision()
        await migrations.downgrade(engine, "base")
        assert await migrations.current_revision(engine) is None
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
        assert set(tables) <= {"alembic_version"}
        await migrations.upgrade(engine)
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(
                        c, opts={"compare_type": True, "include_object": _not_search_index}
                    ),
                    Base.metadata,
                )
            )
        assert diff == []
    finally:
        await engine.dispose()


def _scratch_engine(backend: Backend, tmp_path: Path) -> AsyncEngine:
    """An engine on a database of the test's own (SQLite) or the backend's."""
    if backend.template is not None:
        return create_database_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    return create_async_engine(backend.url)


async def _insert_monitor(
    conn: AsyncConnection, monitor_id: str, name: str, at: datetime, in_maintenance: bool
) -> None:
    """A monitor row as the schema of 0011 and 0012 takes it."""
    await conn.execute(
        text(
            "INSERT INTO monitors (id, name, type, target, interval_seconds,"
            " timeout_seconds, retry_interval_seconds, failure_threshold,"
            " success_threshold, conditions, settings, critical, paused,"
            " in_maintenance, status, shard, version, created_at, updated_at,"
            " locations, located)"
            " VALUES (:id, :name, 'http', 'http://127.0.0.1:9/', 30, 5, 30, 3, 1,"
            " '[]', '{}', false, false, :maintenance, 'down', 1, 1, :now, :now, '[]', false)"
        ),
        {"id": monitor_id, "name": name, "now": at, "maintenance": in_maintenance},
    )


async def test_0012_gives_unalerted_transitions_their_monitors_facts(
    backend: Backend, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Alerting reads a batch from the transitions alone after 0012: rows
    waiting for it at the upgrade get the facts from their monitor."""
    at = datetime(2026, 12, 4, tzinfo=UTC)

    engine = _scratch_engine(backend, tmp_path)
    monitor = "6f1c1f3e-0000-4000-8000-000000000012"
    try:
        await migrations.downgrade(engine, "base")
        await migrations.upgrade(engine, "0011")
        async with engine.begin() as conn:
            await _insert_monitor(conn, monitor, "shop", at, in_maintenance=True)
            for alerted in (at, None):
                await conn.execute(
                    text(
                        "INSERT INTO monitor_transitions (monitor_id, from_state, to_state, at,"
                        " kind, alerted_at) VALUES (:id, 'up', 'down', :at, 'state', :alerted)"
                    ),
                    {"id": monitor, "at": at, "alerted": alerted},
                )
        await migrations.upgrade(engine)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT alerted_at IS NULL, monitor_name, monitor_type, target,"
                        " in_maintenance FROM monitor_transitions ORDER BY id"
                    )
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            (False, None, None, None, None),  # handled before: left as it was
            (True, "shop", "http", "http://127.0.0.1:9/", True),
        ]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM monitors WHERE name = 'shop'"))
        await engine.dispose()


async def test_0013_packs_stored_results_into_their_five_minute_rows(
    backend: Backend, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Raw results survive the move: each lands in its bucket's samples,
    with its words; a bucket whose rollup row was missing gets one."""
    at = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    engine = _scratch_engine(backend, tmp_path)
    monitor = uuid.UUID("6f1c1f3e-0000-4000-8000-000000000013")
    # The form SQLAlchemy's Uuid stores on each engine.
    stored_id = monitor.hex if backend.template is not None else str(monitor)
    histogram = ", ".join(f"h{i}" for i in range(11))
    try:
        await migrations.downgrade(engine, "base")
        await migrations.upgrade(engine, "0012")
        async with engine.begin() as conn:
            await _insert_monitor(conn, stored_id, "moved", at, in_maintenance=False)
            for seconds, outcome, state, error in (
                (0, "up", "up", None),
                (30, "up", "up", None),
                (300, "down", "down", "HTTP 503"),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO monitor_results (monitor_id, checked_at, outcome, state,"
                        " streak, latency_ms, status_code, error, location)"
                        " VALUES (:id, :at, :outcome, :state, 1, 12.5, 200, :error, 'default')"
                    ).bindparams(bindparam("at", type_=UTCDateTime(timezone=True))),
                    {
                        "id": stored_id,
                        "at": at + timedelta(seconds=seconds),
                        "outcome": outcome,
                        "state": state,
                        "error": error,
                    },
                )
            # The first bucket's rollup row, as the old writer left it; the
            # second bucket's is missing.
            await conn.execute(
                text(
                    "INSERT INTO monitor_rollups (monitor_id, granularity, bucket_start, count,"
                    f" up, down, degraded, latency_sum, latency_min, latency_max, {histogram})"
                    " VALUES (:id, 300, :at, 2, 2, 0, 0, 25, 12.5, 12.5,"
                    " 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0)"
                ).bindparams(bindparam("at", type_=UTCDateTime(timezone=True))),
                {"id": stored_id, "at": at},
            )
        await migrations.upgrade(engine)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT count, down, samples FROM monitor_rollups"
                        " WHERE granularity = 300 ORDER BY bucket_start"
                    )
                )
            ).all()
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "monitor_results" not in tables
        assert [(r[0], r[1]) for r in rows] == [(2, 0), (1, 1)]
        samples = [
            (s.checked_at, s.outcome, s.error, s.latency_ms)
            for start, (_, _, blob) in zip((at, at + timedelta(seconds=300)), rows, strict=True)
            for s in unpack(start, blob)
        ]
        assert samples == [
            (at, "up", None, 12.5),
            (at + timedelta(seconds=30), "up", None, 12.5),
            (at + timedelta(seconds=300), "down", "HTTP 503", 12.5),
        ]
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM monitors WHERE name = 'moved'"))
        await engine.dispose()

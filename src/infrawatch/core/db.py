"""Engine, sessions and the unit of work shared by requests, jobs and the CLI."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, MetaData, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from infrawatch.core.clock import as_utc
from infrawatch.core.events import Event, EventBus, known_topic

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware on the way in and out, whatever the engine stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


# Marks a column that holds keyring ciphertext (`info=ENCRYPTED`): the key
# check at start-up and `infrawatch keys rotate` find them through it.
ENCRYPTED: dict[str, Any] = {"encrypted": True}


def new_id() -> uuid.UUID:
    return uuid.uuid4()


WRITE_OPTION = "infrawatch_write"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _keep_private(engine.url.database)
        _configure_sqlite(engine)
        return engine
    # asyncpg prepares every statement, and after five runs PostgreSQL may
    # settle on a generic plan that cannot see the values: a search for a
    # rare name and one for half the fleet then share one (bad) plan.
    # Planning each execution costs a millisecond and keeps plans right.
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
    )


def _keep_private(path: str | None) -> None:
    """The database holds password hashes and ciphertext: readable by its
    owner only, like the keys. SQLite gives its -wal and -shm files the main
    file's mode, so creating that one 0600 covers all three; files left by
    an older version are narrowed here too."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    database = Path(path)
    if not database.parent.is_dir():
        return  # SQLite reports that itself, with its own message
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (database, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        # PermissionError: another user's file, which is theirs to mind.
        with contextlib.suppress(FileNotFoundError, PermissionError):
            if name.stat().st_mode & 0o077:
                os.chmod(name, 0o600)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so the driver must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A transaction that will write takes the write lock up front: a
        # deferred one that upgrades later can fail with SQLITE_BUSY instead of
        # waiting. Reads stay deferred so they never queue behind writers.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Holds the engine and hands out units of work."""

    def __init__(self, url: str, bus: EventBus) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.bus = bus
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer = async_sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def unit_of_work(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One transaction. Commits on success, then publishes the events the
        services staged, so nobody hears of a change that was rolled back."""
        factory = self._writer if write else self._reader
        async with factory() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            for staged in pop_staged_events(session):
                await self.bus.publish(staged)

    async def ping(self) -> None:
        """Raises unless the database answers a query now."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


# What a request or a loop sees when the database is away or overloaded
# (refused, reset, pool exhausted, SQLite locked past its timeout): a state
# to wait out, not a bug. asyncpg's refusals arrive as plain OSErrors.
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
)


def database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, UNAVAILABLE)


def stage_event(session: AsyncSession, staged: Event) -> None:
    # Refused here, inside the transaction: after the commit it would be too late.
    known_topic(staged.topic)
    session.info.setdefault("staged_events", []).append(staged)


def pop_staged_events(session: AsyncSession) -> list[Event]:
    staged: list[Event] = session.info.pop("staged_events", [])
    return staged

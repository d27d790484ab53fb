"""Alembic migrations, shipped inside the package and run on start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

HERE = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


# Any constant no other lock in the database uses (monitoring's lease lock is 0x1A1F_0001).
MIGRATION_LOCK_KEY = 0x1A1F_0100


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Every process runs this on start. Replicas started together (compose,
    a rolling deploy) take turns on PostgreSQL: the first migrates, in one
    transaction; the others wait for it, then find nothing left to do."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def rebuild_search_index(engine: AsyncEngine) -> None:
    """SQLite's search index points at row ids, which a VACUUM may renumber;
    `infrawatch db upgrade` rebuilds it so a vacuumed database searches right."""
    if engine.dialect.name != "sqlite":
        return
    async with engine.begin() as conn:
        await conn.exec_driver_sql("INSERT INTO servers_search(servers_search) VALUES ('rebuild')")

"""A fresh, migrated database for a benchmark run: a file in the run's
folder on SQLite, a database of its own on the local PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from infrawatch import migrations

POSTGRES_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def migrated_database(kind: str, workdir: Path, name: str) -> str:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / (name + '.db')}"
    else:
        admin = create_async_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            await conn.execute(text(f"CREATE DATABASE {name}"))
        await admin.dispose()
        url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    engine = create_async_engine(url)
    await migrations.upgrade(engine)
    await engine.dispose()
    return url

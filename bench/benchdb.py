"""A fresh, migrated database for a benchmark run: a file in the run's
folder on SQLite, a database of its own on the local PostgreSQL."""

from __future__ import annotations

import random
import uuid
import zlib
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from infrawatch import migrations
from infrawatch.monitoring.models import SHARD_COUNT
from infrawatch.monitoring.rollups import HISTOGRAM_COLUMNS

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


def monitor_row(name: str, target: str, interval: int, now: Any) -> dict[str, Any]:
    """A monitors row for an HTTP monitor, as the API would make it."""
    monitor_id = uuid.uuid4()
    return {
        "id": monitor_id,
        "name": name,
        "type": "http",
        "target": target,
        "interval_seconds": interval,
        "timeout_seconds": 5.0,
        "retry_interval_seconds": interval,
        "failure_threshold": 3,
        "success_threshold": 1,
        "degraded_threshold_ms": None,
        "conditions": [],
        "settings": {"accepted_status_codes": ["200-399"]},
        "server_id": None,
        "critical": False,
        "paused": False,
        "in_maintenance": False,
        "status": "pending",
        "shard": zlib.crc32(monitor_id.bytes) % SHARD_COUNT,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def rollup_row(
    monitor_id: uuid.UUID, granularity: int, start: Any, checks: int, down: int = 0
) -> dict[str, Any]:
    """A monitor_rollups row as the engine's writer makes them (random latency)."""
    row: dict[str, Any] = {
        "monitor_id": monitor_id,
        "granularity": granularity,
        "bucket_start": start,
        "count": checks,
        "up": checks - down,
        "down": down,
        "degraded": 0,
        "latency_sum": checks * random.uniform(20, 300),
        "latency_min": 10.0,
        "latency_max": 900.0,
    }
    row.update(dict.fromkeys(HISTOGRAM_COLUMNS, 0))
    return row

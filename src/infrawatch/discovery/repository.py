"""Every query of the discovery domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.discovery.models import DiscoveredHost, DiscoveryScan


async def add(session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()


async def get_scan(session: AsyncSession, scan_id: uuid.UUID) -> DiscoveryScan | None:
    return await session.get(DiscoveryScan, scan_id)


async def list_scans(session: AsyncSession, limit: int) -> list[DiscoveryScan]:
    query = select(DiscoveryScan).order_by(DiscoveryScan.created_at.desc()).limit(limit)
    return list(await session.scalars(query))


async def host_counts(session: AsyncSession, scan_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not scan_ids:
        return {}
    rows = await session.execute(
        select(DiscoveredHost.scan_id, func.count())
        .where(DiscoveredHost.scan_id.in_(scan_ids))
        .group_by(DiscoveredHost.scan_id)
    )
    return {scan_id: int(n) for scan_id, n in rows.all()}


async def hosts(session: AsyncSession, scan_id: uuid.UUID) -> list[DiscoveredHost]:
    query = (
        select(DiscoveredHost).where(DiscoveredHost.scan_id == scan_id).order_by(DiscoveredHost.id)
    )
    return list(await session.scalars(query))


async def known_addresses(session: AsyncSession, scan_id: uuid.UUID) -> set[str]:
    rows = await session.scalars(
        select(DiscoveredHost.address).where(DiscoveredHost.scan_id == scan_id)
    )
    return set(rows)


async def add_hosts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        session.add(DiscoveredHost(**row))
    await session.flush()

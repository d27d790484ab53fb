"""Every query of the status page domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.statuspage.models import StatusIncident, StatusIncidentUpdate, StatusPage


def add(session: AsyncSession, row: StatusPage | StatusIncident | StatusIncidentUpdate) -> None:
    session.add(row)


async def delete(session: AsyncSession, row: StatusPage | StatusIncident) -> None:
    await session.delete(row)


async def pages(session: AsyncSession) -> list[StatusPage]:
    return list(await session.scalars(select(StatusPage).order_by(StatusPage.title)))


async def page(session: AsyncSession, page_id: uuid.UUID) -> StatusPage | None:
    return await session.get(StatusPage, page_id)


async def page_by_slug(session: AsyncSession, slug: str) -> StatusPage | None:
    return await session.scalar(select(StatusPage).where(StatusPage.slug == slug))


async def page_by_domain(session: AsyncSession, domain: str) -> StatusPage | None:
    return await session.scalar(select(StatusPage).where(StatusPage.custom_domain == domain))


async def published_pages(session: AsyncSession) -> list[StatusPage]:
    return list(await session.scalars(select(StatusPage).where(StatusPage.published)))


async def incident(session: AsyncSession, incident_id: uuid.UUID) -> StatusIncident | None:
    return await session.get(StatusIncident, incident_id)


async def incidents(
    session: AsyncSession, page_id: uuid.UUID, *, since: datetime | None = None, limit: int = 200
) -> list[StatusIncident]:
    """Newest first; with `since`, those still open plus those touched since."""
    query = select(StatusIncident).where(StatusIncident.page_id == page_id)
    if since is not None:
        query = query.where(
            or_(StatusIncident.resolved_at.is_(None), StatusIncident.updated_at >= since)
        )
    query = query.order_by(StatusIncident.created_at.desc()).limit(limit)
    return list(await session.scalars(query))


async def updates_of(
    session: AsyncSession, incident_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[StatusIncidentUpdate]]:
    """Newest first per incident."""
    found: dict[uuid.UUID, list[StatusIncidentUpdate]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    query = (
        select(StatusIncidentUpdate)
        .where(StatusIncidentUpdate.incident_id.in_(incident_ids))
        .order_by(StatusIncidentUpdate.id.desc())
    )
    for update in await session.scalars(query):
        found[update.incident_id].append(update)
    return found

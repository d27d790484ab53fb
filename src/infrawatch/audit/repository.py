from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit.models import AuditRecord

INSERT_CHUNK = 2000


async def insert_records(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    # Core executemany in chunks: a bulk action over 10,000 servers writes
    # 10,000 records, and ORM objects would cost more than the change itself.
    for start in range(0, len(rows), INSERT_CHUNK):
        await session.execute(insert(AuditRecord), list(rows[start : start + INSERT_CHUNK]))


def filter_conditions(
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    request_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if object_type is not None:
        conditions.append(AuditRecord.object_type == object_type)
    if object_id is not None:
        conditions.append(AuditRecord.object_id == object_id)
    if actor is not None:
        conditions.append(AuditRecord.actor_username == actor)
    if action is not None:
        if action.endswith("*"):
            conditions.append(AuditRecord.action.startswith(action[:-1], autoescape=True))
        else:
            conditions.append(AuditRecord.action == action)
    if request_id is not None:
        conditions.append(AuditRecord.request_id == request_id)
    if since is not None:
        conditions.append(AuditRecord.at >= since)
    if until is not None:
        conditions.append(AuditRecord.at < until)
    return conditions


async def list_records(
    session: AsyncSession,
    conditions: Sequence[ColumnElement[bool]],
    *,
    before_id: int | None,
    limit: int,
) -> tuple[list[AuditRecord], int]:
    """Newest first; ids only grow, so `before_id` is a stable cursor."""
    total = await session.scalar(select(func.count()).select_from(AuditRecord).where(*conditions))
    query = select(AuditRecord).where(*conditions)
    if before_id is not None:
        query = query.where(AuditRecord.id < before_id)
    rows = await session.scalars(query.order_by(AuditRecord.id.desc()).limit(limit + 1))
    return list(rows), int(total or 0)

"""Writing and reading the audit trail. Every domain records through here."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import repository
from infrawatch.audit.schemas import AuditRecordOut
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.pagination import Page, before_id, next_id_cursor


@dataclass(frozen=True)
class Change:
    action: str
    object_type: str
    object_id: str | uuid.UUID | None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float):  # most values: nothing to do
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only the fields that changed; a create has no before, a delete no after."""
    before = jsonable(before or {})
    after = jsonable(after or {})
    keys = [k for k in {**before, **after} if before.get(k) != after.get(k)]
    changes: dict[str, Any] = {}
    if before and keys:
        changes["before"] = {k: before.get(k) for k in keys}
    if after and keys:
        changes["after"] = {k: after.get(k) for k in keys}
    return changes


async def record(session: AsyncSession, ctx: OperationContext, change: Change) -> None:
    await record_many(session, ctx, [change])


async def record_many(
    session: AsyncSession, ctx: OperationContext, changes: Iterable[Change]
) -> None:
    now = utcnow()
    rows = [
        {
            "at": now,
            "actor_user_id": ctx.actor.user_id,
            "actor_username": ctx.actor.username,
            "token_name": ctx.actor.token_name,
            "action": change.action,
            "object_type": change.object_type,
            "object_id": None if change.object_id is None else str(change.object_id),
            "changes": diff(change.before, change.after),
            "request_id": ctx.request_id,
            "source_ip": ctx.source_ip,
        }
        for change in changes
    ]
    if rows:
        await repository.insert_records(session, rows)


async def list_records(
    session: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    object_type: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    request_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditRecordOut]:
    conditions = repository.filter_conditions(
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        action=action,
        request_id=request_id,
        since=since,
        until=until,
    )
    rows, total = await repository.list_records(
        session, conditions, before_id=before_id(cursor), limit=limit
    )
    next_cursor = next_id_cursor(rows, limit)
    return Page(
        items=[AuditRecordOut.model_validate(r) for r in rows[:limit]],
        total=total,
        next_cursor=next_cursor,
    )

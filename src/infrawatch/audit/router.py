from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from infrawatch.accounts.security import authorize
from infrawatch.audit import service
from infrawatch.audit.schemas import AuditRecordOut
from infrawatch.core.pagination import Page
from infrawatch.core.runtime import DbSession

# Read-only by construction: there is no route here that writes.
router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[Depends(authorize())])

Limit = Annotated[int, Query(ge=1, le=1000)]
Filter = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")]


@router.get("", response_model=Page[AuditRecordOut])
async def list_audit_records(
    session: DbSession,
    limit: Limit = 50,
    cursor: Filter = None,
    object_type: Filter = None,
    object_id: Filter = None,
    actor: Filter = None,
    action: Annotated[
        str | None,
        Query(max_length=128, pattern=r"^[^\x00]*$", description="exact, or a prefix ending in *"),
    ] = None,
    request_id: Filter = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[AuditRecordOut]:
    return await service.list_records(
        session,
        limit=limit,
        cursor=cursor,
        object_type=object_type,
        object_id=object_id,
        actor=actor,
        action=action,
        request_id=request_id,
        since=since,
        until=until,
    )

"""Announcements on a status page: incidents and scheduled maintenance, with their updates."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import InvalidInput, NotFound
from infrawatch.statuspage import pages, repository
from infrawatch.statuspage.models import StatusIncident, StatusIncidentUpdate
from infrawatch.statuspage.schemas import (
    CLOSED,
    IncidentCreate,
    IncidentPatch,
    IncidentUpdateCreate,
    IncidentUpdateOut,
    StatusIncidentOut,
    check_schedule,
    check_status,
)


def incident_out(
    incident: StatusIncident, updates: list[StatusIncidentUpdate]
) -> StatusIncidentOut:
    return StatusIncidentOut(
        id=incident.id,
        page_id=incident.page_id,
        kind=incident.kind,
        title=incident.title,
        impact=incident.impact,
        status=incident.status,
        scheduled_start=incident.scheduled_start,
        scheduled_end=incident.scheduled_end,
        created_at=incident.created_at,
        updated_at=incident.updated_at,
        resolved_at=incident.resolved_at,
        updates=[IncidentUpdateOut(status=u.status, message=u.message, at=u.at) for u in updates],
    )


async def list_incidents(session: AsyncSession, page_id: uuid.UUID) -> list[StatusIncidentOut]:
    await pages.get_page(session, page_id)
    rows = await repository.incidents(session, page_id)
    updates = await repository.updates_of(session, [r.id for r in rows])
    return [incident_out(r, updates[r.id]) for r in rows]


async def _require_incident(
    session: AsyncSession, page_id: uuid.UUID, incident_id: uuid.UUID
) -> StatusIncident:
    incident = await repository.incident(session, incident_id)
    if incident is None or incident.page_id != page_id:
        raise NotFound(f"no incident {incident_id} on this status page")
    return incident


async def get_incident(
    session: AsyncSession, page_id: uuid.UUID, incident_id: uuid.UUID
) -> StatusIncidentOut:
    incident = await _require_incident(session, page_id, incident_id)
    updates = await repository.updates_of(session, [incident.id])
    return incident_out(incident, updates[incident.id])


async def create_incident(
    session: AsyncSession, ctx: OperationContext, page_id: uuid.UUID, data: IncidentCreate
) -> StatusIncidentOut:
    await pages.get_page(session, page_id)
    now = utcnow()
    status = data.status or "investigating"
    incident = StatusIncident(
        id=uuid.uuid4(),
        page_id=page_id,
        kind=data.kind,
        title=data.title,
        impact=data.impact,
        status=status,
        scheduled_start=data.scheduled_start,
        scheduled_end=data.scheduled_end,
        created_at=now,
        updated_at=now,
        resolved_at=now if status in CLOSED else None,
    )
    repository.add(session, incident)
    await session.flush()
    update = StatusIncidentUpdate(
        incident_id=incident.id, status=status, message=data.message, at=now
    )
    repository.add(session, update)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "status_incident.create",
            "status_incident",
            incident.id,
            None,
            data.model_dump(mode="json"),
        ),
    )
    return incident_out(incident, [update])


async def add_update(
    session: AsyncSession,
    ctx: OperationContext,
    page_id: uuid.UUID,
    incident_id: uuid.UUID,
    data: IncidentUpdateCreate,
) -> StatusIncidentOut:
    incident = await _require_incident(session, page_id, incident_id)
    try:
        check_status(incident.kind, data.status)
    except ValueError as exc:
        raise InvalidInput(str(exc), loc=("body", "status")) from None
    now = utcnow()
    before = incident.status
    incident.status = data.status
    incident.updated_at = now
    incident.resolved_at = now if data.status in CLOSED else None
    repository.add(
        session,
        StatusIncidentUpdate(
            incident_id=incident.id, status=data.status, message=data.message, at=now
        ),
    )
    await audit.record(
        session,
        ctx,
        audit.Change(
            "status_incident.update",
            "status_incident",
            incident.id,
            {"status": before},
            {"status": data.status, "message": data.message},
        ),
    )
    await session.flush()
    return await get_incident(session, page_id, incident_id)


async def patch_incident(
    session: AsyncSession,
    ctx: OperationContext,
    page_id: uuid.UUID,
    incident_id: uuid.UUID,
    data: IncidentPatch,
) -> StatusIncidentOut:
    incident = await _require_incident(session, page_id, incident_id)
    changes = data.model_dump(exclude_unset=True)
    for key in ("title", "impact"):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"{key} cannot be null", loc=("body", key))
    start = changes.get("scheduled_start", incident.scheduled_start)
    end = changes.get("scheduled_end", incident.scheduled_end)
    try:
        check_schedule(incident.kind, start, end)
    except ValueError as exc:
        raise InvalidInput(str(exc), loc=("body", "scheduled_end")) from None
    before = {k: getattr(incident, k) for k in changes}
    for key, value in changes.items():
        setattr(incident, key, value)
    incident.updated_at = utcnow()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "status_incident.edit",
            "status_incident",
            incident.id,
            before,
            data.model_dump(exclude_unset=True, mode="json"),
        ),
    )
    return await get_incident(session, page_id, incident_id)


async def delete_incident(
    session: AsyncSession, ctx: OperationContext, page_id: uuid.UUID, incident_id: uuid.UUID
) -> None:
    incident = await _require_incident(session, page_id, incident_id)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "status_incident.delete",
            "status_incident",
            incident.id,
            {"title": incident.title},
            None,
        ),
    )
    await repository.delete(session, incident)

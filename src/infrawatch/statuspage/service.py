"""Status pages: their configuration, the announcements on them, and what
the public sees (built only from what a page explicitly publishes)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import as_utc, utcnow
from infrawatch.core.concurrency import Versioned, apply_changes, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.monitoring import history
from infrawatch.monitoring import service as monitoring
from infrawatch.statuspage import repository
from infrawatch.statuspage.models import StatusIncident, StatusIncidentUpdate, StatusPage
from infrawatch.statuspage.schemas import (
    CLOSED,
    IncidentCreate,
    IncidentPatch,
    IncidentUpdateCreate,
    IncidentUpdateOut,
    Overall,
    PageCreate,
    PageOut,
    PageUpdate,
    PublicIncident,
    PublicState,
    Section,
    StatusIncidentOut,
    check_schedule,
    check_status,
)

HISTORY_DAYS = 90
PAST_INCIDENT_DAYS = 14
PUBLIC_STATES: dict[str, PublicState] = {
    "up": "up",
    "degraded": "degraded",
    "down": "down",
    "maintenance": "maintenance",
}
OVERALL_TEXT = {
    "operational": "All systems operational",
    "degraded": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    "maintenance": "Maintenance in progress",
}


# --- pages ---------------------------------------------------------------------------


def page_out(page: StatusPage) -> PageOut:
    return PageOut(
        id=page.id,
        slug=page.slug,
        title=page.title,
        description=page.description,
        logo_url=page.logo_url,
        custom_domain=page.custom_domain,
        sections=[Section.model_validate(s) for s in page.sections],
        published=page.published,
        refresh_seconds=page.refresh_seconds,
        footer=page.footer,
        version=page.version,
        created_at=page.created_at,
        updated_at=page.updated_at,
    )


async def list_pages(session: AsyncSession) -> list[PageOut]:
    return [page_out(p) for p in await repository.pages(session)]


async def get_page(session: AsyncSession, page_id: uuid.UUID) -> StatusPage:
    page = await repository.page(session, page_id)
    if page is None:
        raise NotFound(f"no status page with id {page_id}")
    return page


async def _check_unique(
    session: AsyncSession, page_id: uuid.UUID | None, slug: str | None, domain: str | None
) -> None:
    if slug is not None:
        other = await repository.page_by_slug(session, slug)
        if other is not None and other.id != page_id:
            raise Conflict(f"a status page with slug {slug!r} already exists")
    if domain is not None:
        other = await repository.page_by_domain(session, domain)
        if other is not None and other.id != page_id:
            raise Conflict(f"the status page {other.slug!r} already uses domain {domain!r}")


async def _check_sections(session: AsyncSession, sections: list[Section]) -> list[dict[str, Any]]:
    wanted = [m.monitor_id for s in sections for m in s.monitors]
    if len(wanted) > 500:
        raise InvalidInput("a page shows at most 500 monitors", loc=("body", "sections"))
    known = await monitoring.existing_monitor_ids(session, wanted)
    for i, section in enumerate(sections):
        for j, entry in enumerate(section.monitors):
            if entry.monitor_id not in known:
                raise InvalidInput(
                    f"no monitor with id {entry.monitor_id}",
                    loc=("body", "sections", i, "monitors", j, "monitor_id"),
                )
    return [s.model_dump(mode="json") for s in sections]


async def create_page(session: AsyncSession, ctx: OperationContext, data: PageCreate) -> PageOut:
    await _check_unique(session, None, data.slug, data.custom_domain)
    now = utcnow()
    page = StatusPage(
        id=uuid.uuid4(),
        slug=data.slug,
        title=data.title,
        description=data.description,
        logo_url=data.logo_url,
        custom_domain=data.custom_domain,
        sections=await _check_sections(session, data.sections),
        published=True if data.published is None else data.published,
        refresh_seconds=data.refresh_seconds or 60,
        footer=data.footer,
        version=1,
        created_at=now,
        updated_at=now,
    )
    repository.add(session, page)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "status_page.create", "status_page", page.id, None, data.model_dump(mode="json")
        ),
    )
    return page_out(page)


async def update_page(
    session: AsyncSession,
    ctx: OperationContext,
    page_id: uuid.UUID,
    data: PageUpdate,
    if_match: str | None,
) -> Versioned[PageOut]:
    page = await get_page(session, page_id)
    check_if_match(if_match, page.version)
    changes = data.model_dump(exclude_unset=True, mode="json")
    for key in ("slug", "title", "sections", "published", "refresh_seconds"):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"{key} cannot be null", loc=("body", key))
    await _check_unique(session, page.id, changes.get("slug"), changes.get("custom_domain"))
    if data.sections is not None:
        changes["sections"] = await _check_sections(session, data.sections)
    before = apply_changes(page, changes)
    await audit.record(
        session, ctx, audit.Change("status_page.update", "status_page", page.id, before, changes)
    )
    return Versioned(page_out(page), page.version)


async def delete_page(session: AsyncSession, ctx: OperationContext, page_id: uuid.UUID) -> None:
    page = await get_page(session, page_id)
    await audit.record(
        session,
        ctx,
        audit.Change("status_page.delete", "status_page", page.id, {"slug": page.slug}, None),
    )
    await repository.delete(session, page)


# --- announcements -------------------------------------------------------------------


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
    await get_page(session, page_id)
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
    await get_page(session, page_id)
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


# --- the public view -----------------------------------------------------------------


async def published_page(
    session: AsyncSession, *, slug: str | None = None, domain: str | None = None
) -> StatusPage:
    page = None
    if slug is not None:
        page = await repository.page_by_slug(session, slug)
    elif domain is not None:
        page = await repository.page_by_domain(session, domain.lower())
    if page is None or not page.published:
        raise NotFound("no such status page")
    return page


@dataclass
class MonitorView:
    """A monitor as the public sees it: the page's name for it, its state
    and its history; the target only when the page chose to show it."""

    name: str
    target: str | None
    found: history.History
    # Checked from several locations: each one's latest state and latency.
    locations: list[LocationView] = dataclasses.field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return self.found.id

    @property
    def status(self) -> PublicState:
        return PUBLIC_STATES.get(self.found.status, "unknown")

    def uptime(self, days: int) -> float | None:
        return self.found.uptime(days)

    @property
    def latency_avg_ms_24h(self) -> float | None:
        return self.found.last_24h.latency_avg_ms

    @property
    def hourly_latency_ms(self) -> list[float | None]:
        return [p.latency_avg_ms for p in self.found.hourly]

    def _days_json(self) -> list[dict[str, Any]]:
        counted = self.found.rollups  # memo lives as long as the (cached) rollups
        if "days-json" not in counted.memo:
            counted.memo["days-json"] = [
                {"date": d, "uptime_percent": p, "checks": c, "down": n}
                for d, p, c, n in zip(
                    counted.dates, counted.percents(), counted.checks, counted.down, strict=True
                )
            ]
        days: list[dict[str, Any]] = counted.memo["days-json"]
        return days

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "target": self.target,
            "status": self.status,
            "uptime_24h": self.uptime(1),
            "uptime_30d": self.uptime(30),
            "uptime_90d": self.uptime(90),
            "latency_avg_ms_24h": self.latency_avg_ms_24h,
            "days": self._days_json(),
            "hourly_latency_ms": self.hourly_latency_ms,
            "locations": [
                {"name": w.name, "status": w.status, "latency_ms": w.latency_ms}
                for w in self.locations
            ],
        }


@dataclass(frozen=True)
class LocationView:
    name: str
    status: PublicState
    latency_ms: float


@dataclass
class SectionView:
    name: str
    monitors: list[MonitorView]


@dataclass
class PublicView:
    """Everything a public page shows; `to_json` is the shape of PublicPage
    (built by hand: validating 9,000 days per request would cost more than
    the page)."""

    slug: str
    title: str
    description: str | None
    logo_url: str | None
    footer: str | None
    refresh_seconds: int
    overall: Overall
    sections: list[SectionView]
    active_incidents: list[PublicIncident]
    maintenance: list[PublicIncident]
    past_incidents: list[PublicIncident]
    generated_at: datetime

    @property
    def overall_text(self) -> str:
        return OVERALL_TEXT[self.overall]

    def to_json(self) -> dict[str, Any]:
        def announced(items: list[PublicIncident]) -> list[dict[str, Any]]:
            return [i.model_dump(mode="json") for i in items]

        return {
            "slug": self.slug,
            "title": self.title,
            "description": self.description,
            "logo_url": self.logo_url,
            "footer": self.footer,
            "refresh_seconds": self.refresh_seconds,
            "overall": self.overall,
            "overall_text": self.overall_text,
            "sections": [
                {"name": s.name, "monitors": [m.to_json() for m in s.monitors]}
                for s in self.sections
            ],
            "active_incidents": announced(self.active_incidents),
            "maintenance": announced(self.maintenance),
            "past_incidents": announced(self.past_incidents),
            "generated_at": self.generated_at.isoformat(),
        }


def _public_incident(
    incident: StatusIncident, updates: list[StatusIncidentUpdate]
) -> PublicIncident:
    return PublicIncident.model_validate(
        incident_out(incident, updates).model_dump(exclude={"page_id"})
    )


def _overall(monitors: list[MonitorView], active: list[PublicIncident]) -> Overall:
    states = [m.status for m in monitors]
    down = states.count("down")
    impacts = {i.impact for i in active if i.kind == "incident"}
    if (states and down == len(states)) or "critical" in impacts:
        return "major_outage"
    if down or "major" in impacts:
        return "partial_outage"
    if "degraded" in states or "minor" in impacts:
        return "degraded"
    in_progress = any(i.kind == "maintenance" and i.status == "in_progress" for i in active)
    if in_progress or "maintenance" in states:
        return "maintenance"
    return "operational"


# Rollups of public pages are read once a minute per page, whatever the crowd.
PUBLIC_ROLLUPS = history.RollupCache(ttl=60.0)


async def public_view(session: AsyncSession, page: StatusPage) -> PublicView:
    now = utcnow()
    wanted = [uuid.UUID(m["monitor_id"]) for s in page.sections for m in s["monitors"]]
    found = await history.histories(session, wanted, HISTORY_DAYS, cache=PUBLIC_ROLLUPS)
    located = await monitoring.location_states_of(session, wanted)
    sections = [
        SectionView(
            name=s["name"],
            monitors=[
                MonitorView(
                    name=m["name"],
                    target=found[key].target if m.get("show_target") else None,
                    found=found[key],
                    locations=[
                        LocationView(loc, PUBLIC_STATES.get(state, "unknown"), latency)
                        for loc, state, latency in located.get(key, [])
                    ],
                )
                for m in s["monitors"]
                # A deleted monitor just disappears from the page.
                if (key := uuid.UUID(m["monitor_id"])) in found
            ],
        )
        for s in page.sections
    ]
    rows = await repository.incidents(
        session, page.id, since=now - timedelta(days=PAST_INCIDENT_DAYS), limit=50
    )
    updates = await repository.updates_of(session, [r.id for r in rows])
    announced = [_public_incident(r, updates[r.id]) for r in rows]
    open_ = [i for i in announced if i.status not in CLOSED]
    maintenance = sorted(
        (i for i in open_ if i.kind == "maintenance"),
        key=lambda i: as_utc(i.scheduled_start) if i.scheduled_start else now,
    )
    return PublicView(
        slug=page.slug,
        title=page.title,
        description=page.description,
        logo_url=page.logo_url,
        footer=page.footer,
        refresh_seconds=page.refresh_seconds,
        overall=_overall([m for s in sections for m in s.monitors], open_),
        sections=sections,
        active_incidents=[i for i in open_ if i.kind == "incident"],
        maintenance=maintenance,
        past_incidents=[i for i in announced if i.status in CLOSED],
        generated_at=now,
    )


async def badge_subject(
    session: AsyncSession, monitor_id: uuid.UUID
) -> tuple[str, history.History]:
    """The public name a published page gives this monitor, and its history.
    A monitor no published page shows has no badge: a 404 that says no more."""
    for page in await repository.published_pages(session):
        for section in page.sections:
            for entry in section["monitors"]:
                if entry["monitor_id"] == str(monitor_id):
                    found = await history.histories(
                        session, [monitor_id], HISTORY_DAYS, cache=PUBLIC_ROLLUPS
                    )
                    if monitor_id in found:
                        return entry["name"], found[monitor_id]
    raise NotFound("no published status page shows this monitor")

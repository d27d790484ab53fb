"""What a status page shows the public: each monitor's state, uptime bars,
announcements, the overall verdict, badges."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.clock import as_utc, utcnow
from infrawatch.core.errors import NotFound
from infrawatch.monitoring import history
from infrawatch.monitoring import service as monitoring
from infrawatch.statuspage import announcements, repository
from infrawatch.statuspage.models import StatusIncident, StatusIncidentUpdate, StatusPage
from infrawatch.statuspage.schemas import (
    CLOSED,
    Overall,
    PublicIncident,
    PublicState,
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
        announcements.incident_out(incident, updates).model_dump(exclude={"page_id"})
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

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from infrawatch.core.validation import LongText, Name, NullMeansUnset

# No dots: "/status/{slug}.json" must never be ambiguous.
PageSlug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Domain = Annotated[
    str,
    StringConstraints(
        to_lower=True,
        max_length=253,
        pattern=r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,63}$",
    ),
]
# https:// or a path on this server; never javascript: or data: in an <img>.
LogoUrl = Annotated[
    str, StringConstraints(max_length=2048, pattern=r"^(https?://[^\s\"'<>]+|/[^\s\"'<>]*)$")
]
Message = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]

IncidentKind = Literal["incident", "maintenance"]
Impact = Literal["none", "minor", "major", "critical"]
IncidentStatus = Literal[
    "investigating", "identified", "monitoring", "resolved", "scheduled", "in_progress", "completed"
]
STATUSES_OF: dict[str, tuple[str, ...]] = {
    "incident": ("investigating", "identified", "monitoring", "resolved"),
    "maintenance": ("scheduled", "in_progress", "completed"),
}
CLOSED = frozenset({"resolved", "completed"})


class SectionMonitor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monitor_id: uuid.UUID
    name: Name = Field(description="the name the public sees (the monitor's own is never shown)")
    show_target: bool = Field(False, description="show the monitor's target (URL, host) too")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    monitors: Annotated[list[SectionMonitor], Field(max_length=200)] = Field(default_factory=list)


Sections = Annotated[list[Section], Field(max_length=50)]


class PageFields(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    title: Name | None = None
    description: LongText | None = None
    logo_url: LogoUrl | None = None
    custom_domain: Domain | None = Field(
        None, description="serve this page at / for requests with this Host header"
    )
    sections: Sections | None = None
    published: bool | None = None
    refresh_seconds: Annotated[int, Field(ge=10, le=3600)] | None = None
    footer: LongText | None = None


class PageCreate(PageFields):
    slug: PageSlug
    title: Name
    sections: Sections = Field(default_factory=list)


class PageUpdate(PageFields):
    slug: PageSlug | None = None


class PageOut(BaseModel):
    id: uuid.UUID
    slug: str
    title: str
    description: str | None
    logo_url: str | None
    custom_domain: str | None
    sections: list[Section]
    published: bool
    refresh_seconds: int
    footer: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class IncidentCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    kind: IncidentKind = "incident"
    title: Name
    impact: Impact = "minor"
    status: IncidentStatus | None = Field(
        None, description="defaults to investigating (incident) or scheduled (maintenance)"
    )
    message: Message
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> IncidentCreate:
        if self.status is None:
            self.status = "investigating" if self.kind == "incident" else "scheduled"
        check_status(self.kind, self.status)
        check_schedule(self.kind, self.scheduled_start, self.scheduled_end)
        return self


class IncidentUpdateCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    status: IncidentStatus
    message: Message


class IncidentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Name | None = None
    impact: Impact | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None


class IncidentUpdateOut(BaseModel):
    status: str
    message: str
    at: datetime


class PublicIncident(BaseModel):
    """An announcement as anyone may read it (newest update first)."""

    id: uuid.UUID
    kind: str
    title: str
    impact: str
    status: str
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    updates: list[IncidentUpdateOut]


class StatusIncidentOut(PublicIncident):
    page_id: uuid.UUID


def check_status(kind: str, status: str) -> None:
    if status not in STATUSES_OF[kind]:
        allowed = ", ".join(STATUSES_OF[kind])
        raise ValueError(f"status of a {kind} is one of {allowed}, not {status!r}")


def check_schedule(kind: str, start: datetime | None, end: datetime | None) -> None:
    if kind == "maintenance" and (start is None or end is None):
        raise ValueError("scheduled maintenance needs scheduled_start and scheduled_end")
    if start is not None and end is not None and end <= start:
        raise ValueError("scheduled_end must be after scheduled_start")


# --- what the public sees ------------------------------------------------------------

PublicState = Literal["up", "degraded", "down", "maintenance", "unknown"]
Overall = Literal["operational", "degraded", "partial_outage", "major_outage", "maintenance"]


class PublicDay(BaseModel):
    date: str
    uptime_percent: float | None
    checks: int
    down: int


class PublicLocation(BaseModel):
    name: str
    status: PublicState
    latency_ms: float


class PublicMonitor(BaseModel):
    id: uuid.UUID
    name: str
    target: str | None
    status: PublicState
    uptime_24h: float | None
    uptime_30d: float | None
    uptime_90d: float | None
    latency_avg_ms_24h: float | None
    days: list[PublicDay]
    hourly_latency_ms: list[float | None]
    locations: list[PublicLocation] = []  # checked from several: each one's word


class PublicSection(BaseModel):
    name: str
    monitors: list[PublicMonitor]


class PublicPage(BaseModel):
    slug: str
    title: str
    description: str | None
    logo_url: str | None
    footer: str | None
    refresh_seconds: int
    overall: Overall
    overall_text: str
    sections: list[PublicSection]
    active_incidents: list[PublicIncident]
    maintenance: list[PublicIncident]
    past_incidents: list[PublicIncident]
    generated_at: datetime

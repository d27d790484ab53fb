from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from infrawatch.core.validation import LongText, Name, NullMeansUnset

# "location": a probe location lost (or got back) its last live worker.
Event = Literal["down", "recovered", "degraded", "certificate", "location"]
TagKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")]
TagValue = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00-\x1f]*$")]
GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")]
Url = Annotated[str, StringConstraints(min_length=3, max_length=4096, pattern=r"^[^\s\x00]+$")]


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_zone)]


class Selectors(NullMeansUnset):
    """What a rule or a window applies to; empty everywhere means everything
    (for rules) and nothing (for windows)."""

    monitor_ids: Annotated[list[uuid.UUID], Field(max_length=1000)] = Field(default_factory=list)
    server_ids: Annotated[list[uuid.UUID], Field(max_length=1000)] = Field(default_factory=list)
    tags: Annotated[dict[TagKey, TagValue | None], Field(max_length=20)] = Field(
        default_factory=dict, description="server tags; a null value matches any value"
    )
    groups: Annotated[list[GroupName], Field(max_length=100)] = Field(default_factory=list)


# --- channels ------------------------------------------------------------------------


class ChannelCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: Literal["apprise", "webhook"] = "apprise"
    url: Url = Field(
        description="an Apprise URL (discord://, ntfy://, json://, mailto:// …); "
        "for webhook, an http(s) URL"
    )
    secret: Annotated[SecretStr, Field(min_length=16, max_length=256)] | None = Field(
        default=None, description="webhook only: the HMAC-SHA256 signing key"
    )
    enabled: bool = True


class ChannelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    url: Url | None = None
    secret: Annotated[SecretStr, Field(min_length=16, max_length=256)] | None = None
    enabled: bool | None = None


class ChannelOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    url_hint: str = Field(description="the scheme and host only: the URL carries credentials")
    has_secret: bool
    enabled: bool
    created_at: datetime
    updated_at: datetime


class ChannelTestResult(BaseModel):
    ok: bool
    error: str | None


# --- rules ----------------------------------------------------------------------------


class RuleCreate(Selectors):
    model_config = ConfigDict(extra="forbid")

    name: Name
    enabled: bool = True
    events: Annotated[list[Event], Field(min_length=1, max_length=4)] = Field(
        default_factory=lambda: list[Event](["down", "recovered"])
    )
    channel_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50)]
    reminder_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None
    certificate_days: Annotated[list[Annotated[int, Field(ge=0, le=365)]], Field(max_length=10)] = (
        Field(default_factory=lambda: [21, 14, 7])
    )


class RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    enabled: bool | None = None
    events: Annotated[list[Event], Field(min_length=1, max_length=4)] | None = None
    channel_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50)] | None = None
    reminder_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None
    certificate_days: (
        Annotated[list[Annotated[int, Field(ge=0, le=365)]], Field(max_length=10)] | None
    ) = None
    monitor_ids: Annotated[list[uuid.UUID], Field(max_length=1000)] | None = None
    server_ids: Annotated[list[uuid.UUID], Field(max_length=1000)] | None = None
    tags: Annotated[dict[TagKey, TagValue | None], Field(max_length=20)] | None = None
    groups: Annotated[list[GroupName], Field(max_length=100)] | None = None


class RuleOut(RuleCreate):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime


# --- maintenance windows -------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z]+$")


class WindowCreate(Selectors):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: LongText | None = None
    starts_at: datetime | None = Field(default=None, description="one-off window: start")
    ends_at: datetime | None = Field(default=None, description="one-off window: end")
    cron: Annotated[str, StringConstraints(max_length=100)] | None = Field(
        default=None, description="recurring: when it starts, e.g. '0 2 * * sun'"
    )
    weekdays: Annotated[list[Literal[WEEKDAYS]], Field(min_length=1, max_length=7)] | None = None  # type: ignore[valid-type]
    start_time: time | None = Field(default=None, description="with weekdays: local start time")
    duration_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None
    timezone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _one_kind_of_schedule(self) -> WindowCreate:
        one_off = self.starts_at is not None or self.ends_at is not None
        recurring = self.cron is not None or self.weekdays is not None
        if one_off == recurring:
            raise ValueError(
                "give either starts_at and ends_at (one-off) or cron / weekdays with "
                "duration_minutes (recurring)"
            )
        if one_off:
            if self.starts_at is None or self.ends_at is None:
                raise ValueError("a one-off window needs both starts_at and ends_at")
            if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
                raise ValueError("starts_at and ends_at need a UTC offset")
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
        else:
            if self.duration_minutes is None:
                raise ValueError("a recurring window needs duration_minutes")
            if self.cron is not None and self.weekdays is not None:
                raise ValueError("give cron or weekdays, not both")
            if self.weekdays is not None and self.start_time is None:
                raise ValueError("weekdays need a start_time")
        return self


class WindowUpdate(BaseModel):
    """Any of a window's fields; the result is checked as a whole, as on
    create. Switching a one-off window to a recurring one sets starts_at and
    ends_at to null (and the other way round)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: LongText | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: Annotated[str, StringConstraints(max_length=100)] | None = None
    weekdays: Annotated[list[Literal[WEEKDAYS]], Field(min_length=1, max_length=7)] | None = None  # type: ignore[valid-type]
    start_time: time | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None
    timezone: TimeZone | None = None
    monitor_ids: Annotated[list[uuid.UUID], Field(max_length=1000)] | None = None
    server_ids: Annotated[list[uuid.UUID], Field(max_length=1000)] | None = None
    tags: Annotated[dict[TagKey, TagValue | None], Field(max_length=20)] | None = None
    groups: Annotated[list[GroupName], Field(max_length=100)] | None = None


class WindowOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    cron: str | None
    duration_minutes: int | None
    timezone: str
    monitor_ids: list[uuid.UUID]
    server_ids: list[uuid.UUID]
    tags: dict[str, str | None]
    groups: list[str]
    active: bool
    next_start: datetime | None
    created_at: datetime
    updated_at: datetime


# --- incidents ------------------------------------------------------------------------


class IncidentEventOut(BaseModel):
    at: datetime
    kind: str
    message: str


class IncidentOut(BaseModel):
    id: uuid.UUID
    monitor_id: uuid.UUID | None
    server_id: uuid.UUID | None
    title: str
    status: Literal["open", "resolved"]
    opened_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    held: str | None
    parent_id: uuid.UUID | None
    timeline: list[IncidentEventOut] = Field(default_factory=list)

"""When a maintenance window is on: one-off (a start and an end) or
recurring (a cron expression for the start, read in the window's time zone,
and a duration)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from infrawatch.core.cron import check_cron, following, previous

DAY_NUMBERS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def weekdays_to_cron(weekdays: Sequence[str], start: time) -> str:
    days = ",".join(str(n) for n in sorted({DAY_NUMBERS[d] for d in weekdays}))
    return f"{start.minute} {start.hour} * * {days}"


__all__ = ["check_cron", "is_active", "next_change", "next_start", "weekdays_to_cron"]


def _last_start(window: Any, now: datetime) -> datetime:
    return previous(window.cron, window.timezone, now)


def is_active(window: Any, now: datetime) -> bool:
    if window.cron is None:
        return bool(window.starts_at <= now < window.ends_at)
    start = _last_start(window, now)
    return bool(start <= now < start + timedelta(minutes=window.duration_minutes))


def next_start(window: Any, now: datetime) -> datetime | None:
    if window.cron is None:
        return window.starts_at if window.starts_at > now else None
    return following(window.cron, window.timezone, now)


def next_change(window: Any, now: datetime) -> datetime | None:
    """When the window next starts or ends, after `now`."""
    if window.cron is None:
        moments = [m for m in (window.starts_at, window.ends_at) if m > now]
        return min(moments) if moments else None
    start = _last_start(window, now)
    end = start + timedelta(minutes=window.duration_minutes)
    upcoming = next_start(window, now)
    moments = [m for m in (end, upcoming) if m is not None and m > now]
    return min(moments) if moments else None

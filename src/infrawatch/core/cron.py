"""Five-field cron expressions read in a time zone (maintenance windows,
hibernation schedules)."""

from __future__ import annotations

import zoneinfo
from datetime import datetime

from croniter import croniter


def check_cron(expression: str) -> None:
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a five-field cron expression")


def check_timezone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone (an IANA name like Europe/Paris)") from None


def previous(expression: str, timezone: str, now: datetime) -> datetime:
    """The last time at or before `now` the expression fires."""
    local_now = now.astimezone(zoneinfo.ZoneInfo(timezone))
    moment: datetime = croniter(expression, local_now).get_prev(datetime)
    return moment


def following(expression: str, timezone: str, now: datetime) -> datetime:
    """The first time after `now` the expression fires."""
    local_now = now.astimezone(zoneinfo.ZoneInfo(timezone))
    moment: datetime = croniter(expression, local_now).get_next(datetime)
    return moment

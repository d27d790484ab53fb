from __future__ import annotations

import os
import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def process_age() -> float:
    """Seconds since this process started (0.0 where the kernel does not
    say): start-up work such as imports and migrations counts against
    promises made "from start-up"."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            # Field 22, after the command name in parentheses (which may hold spaces).
            fields = stat.read().rpartition(b")")[2].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0

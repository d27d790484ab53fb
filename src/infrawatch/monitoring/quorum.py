"""Monitors checked from several locations: each location runs its own state
machine (thresholds and all), and the monitor's state is decided from the
latest state of every location that still has a live worker.

- DOWN when at least `quorum` of those locations see it down (default: a
  majority of them; never more than there are);
- DEGRADED when some, but fewer, see it down, or any sees it degraded;
- UP otherwise.

A location whose workers are all gone counts neither way: its last word is
stale. With none left the state stays as it was (nobody is looking)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.monitoring import repository
from infrawatch.monitoring.rows import TransitionRow

LOCATION_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_LOCATIONS = 16


def location_problem(name: str) -> str | None:
    """Why `name` cannot be a location, or None."""
    if not LOCATION_NAME.match(name):
        return (
            f"{name!r} is not a location name: lower-case letters, digits, '.', '_' "
            "and '-', starting with a letter or digit, at most 64 characters"
        )
    return None


class Seen(Protocol):
    """One location's latest word on a monitor (a MonitorLocationState row)."""

    @property
    def location(self) -> str: ...
    @property
    def state(self) -> str: ...  # pending, up, degraded, down
    @property
    def latency_ms(self) -> float: ...
    @property
    def checked_at(self) -> datetime: ...
    @property
    def error(self) -> str | None: ...


@dataclass(frozen=True)
class Verdict:
    state: str
    reason: str
    counted: tuple[str, ...]


def needed(quorum: int | None, counted: int) -> int:
    """How many counted locations must see it down."""
    majority = counted // 2 + 1
    return max(1, min(quorum or majority, counted))


def decide(
    listed: Sequence[str], quorum: int | None, seen: Mapping[str, Seen], live: set[str]
) -> Verdict | None:
    counted = [
        seen[loc] for loc in listed if loc in live and loc in seen and seen[loc].state != "pending"
    ]
    if not counted:
        return None
    down = [s for s in counted if s.state == "down"]
    if len(down) >= needed(quorum, len(counted)):
        state = "down"
    elif down or any(s.state == "degraded" for s in counted):
        state = "degraded"
    else:
        state = "up"
    excluded = [loc for loc in listed if loc not in live]
    return Verdict(state, describe(counted, excluded), tuple(s.location for s in counted))


def describe(counted: Sequence[Seen], excluded: Sequence[str]) -> str:
    """Which locations saw what: 'down from eu-west (HTTP 503); up from
    us-east (41 ms); not counted: ap-south (no live worker)'."""
    parts = []
    for state in ("down", "degraded", "up"):
        these = [s for s in counted if s.state == state]
        if these:
            parts.append(f"{state} from " + ", ".join(_one(s) for s in these))
    if excluded:
        parts.append("not counted: " + ", ".join(f"{loc} (no live worker)" for loc in excluded))
    return "; ".join(parts)


def _one(seen: Seen) -> str:
    if seen.state in ("down", "degraded") and seen.error:
        return f"{seen.location} ({seen.error})"
    return f"{seen.location} ({seen.latency_ms:.0f} ms)"


async def redecide(
    session: AsyncSession,
    monitor_ids: Sequence[uuid.UUID],
    live_since: datetime,
    at: datetime | None = None,
) -> list[TransitionRow]:
    """Transitions (as the writer takes them) for the monitors whose decided
    state differs from the stored one. The monitor rows are locked first
    (PostgreSQL), in id order: two locations writing at once then decide one
    after the other, the second seeing the first's word. `at`: when the
    change happened, if not at the newest check (a location went away)."""
    if not monitor_ids:
        return []
    monitors = await repository.lock_for_quorum(session, sorted(set(monitor_ids)))
    seen = await repository.location_states(session, [m.id for m in monitors])
    live = await repository.live_locations(session, live_since)
    transitions: list[TransitionRow] = []
    for monitor in monitors:
        if monitor.paused:
            continue
        verdict = decide(monitor.locations or [], monitor.quorum, seen.get(monitor.id, {}), live)
        if verdict is None or verdict.state == monitor.status:
            continue
        when = at or max(seen[monitor.id][loc].checked_at for loc in verdict.counted)
        transitions.append(
            {
                "monitor_id": monitor.id,
                "server_id": monitor.server_id,
                "from_state": monitor.status,
                "to_state": verdict.state,
                "at": when,
                "reason": verdict.reason,
                "kind": "state",
            }
        )
    return transitions

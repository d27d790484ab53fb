"""The rows the engine hands its writer, typed: they are made by the
thousand per second, so they stay plain dicts (a dataclass each cost a
measurable share of a check), and mypy checks their keys instead."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, NotRequired, TypedDict

# Each buffered row says under which (pool, shard, lease epoch) it was
# produced; the write keeps only rows whose lease this worker still holds.
LEASE_KEY: Final = "_lease"
Lease = tuple[str, int, int | None]


class ResultRow(TypedDict):
    """One check's result."""

    monitor_id: uuid.UUID
    checked_at: datetime
    outcome: str
    state: str
    streak: int
    latency_ms: float
    status_code: int | None
    error: str | None
    details: dict[str, Any] | None
    location: str | None
    _lease: NotRequired[Lease]


class TransitionRow(TypedDict):
    """A state change (or a certificate crossing a day on its ladder)."""

    monitor_id: uuid.UUID
    server_id: uuid.UUID | None
    from_state: str
    to_state: str
    at: datetime
    reason: str | None
    kind: str
    _lease: NotRequired[Lease]
    # What alerting needs of the monitor, filled in by the writer.
    monitor_name: NotRequired[str | None]
    monitor_type: NotRequired[str | None]
    target: NotRequired[str | None]
    in_maintenance: NotRequired[bool | None]


class LocationStateRow(TypedDict):
    """One location's latest word on a monitor checked from several."""

    monitor_id: uuid.UUID
    location: str
    state: str
    outcome: str
    streak: int
    latency_ms: float
    checked_at: datetime
    error: str | None
    _lease: NotRequired[Lease]

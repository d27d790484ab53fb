"""Push (heartbeat) monitors, Healthchecks-style: a job calls its URL; the
engine judges silence. A ping can report success, a start, or a failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infrawatch.probes import ProbeResult


@dataclass(frozen=True)
class PushState:
    created_at: datetime
    last_at: datetime | None  # last success or failure ping
    last_kind: str | None  # success, fail
    exit_code: int | None
    started_at: datetime | None
    period_seconds: int
    grace_seconds: int


def judge_push(state: PushState, now: datetime) -> ProbeResult | None:
    """None while there is nothing to judge yet (a new monitor within its
    first period and grace)."""
    allowed = state.period_seconds + state.grace_seconds
    if state.started_at and (state.last_at is None or state.started_at > state.last_at):
        running = (now - state.started_at).total_seconds()
        # A started job has the grace time to finish (Healthchecks' rule),
        # not the period as well: the period is the time between runs.
        if running > state.grace_seconds:
            return _down(f"started {running:.0f} s ago and has not finished")
    if state.last_at is None:
        silent = (now - state.created_at).total_seconds()
        return _down(f"no ping received in {silent:.0f} s") if silent > allowed else None
    if state.last_kind == "fail":
        code = f" (exit code {state.exit_code})" if state.exit_code is not None else ""
        return _down(f"the job reported a failure{code}")
    silent = (now - state.last_at).total_seconds()
    if silent > allowed:
        return _down(
            f"no ping for {silent:.0f} s (period {state.period_seconds} s"
            f" + grace {state.grace_seconds} s)"
        )
    duration = 0.0
    if state.started_at and state.started_at <= state.last_at:
        duration = round((state.last_at - state.started_at).total_seconds() * 1000, 3)
    return ProbeResult(
        ok=True,
        latency_ms=duration,
        facts={"RESPONSE_TIME": duration},
        details={"last_ping_at": state.last_at.isoformat()},
    )


def _down(message: str) -> ProbeResult:
    return ProbeResult(ok=False, latency_ms=0.0, error=message, facts={"RESPONSE_TIME": 0.0})


def push_state(row: Any) -> PushState:
    settings = row.settings or {}
    return PushState(
        created_at=row.created_at,
        last_at=row.push_last_at,
        last_kind=row.push_last_kind,
        exit_code=row.push_last_exit_code,
        started_at=row.push_started_at,
        period_seconds=int(settings.get("period_seconds", 300)),
        grace_seconds=int(settings.get("grace_seconds", 60)),
    )

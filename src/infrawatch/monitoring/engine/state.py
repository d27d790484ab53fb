"""The monitor state machine: checks are samples, only thresholds move the
state, and only state moves raise events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["up", "degraded", "down"]


@dataclass(frozen=True)
class Position:
    state: str  # pending, up, degraded, down
    last_outcome: str | None = None
    streak: int = 0


def advance(
    position: Position, outcome: Outcome, failure_threshold: int, success_threshold: int
) -> Position:
    streak = position.streak + 1 if outcome == position.last_outcome else 1
    state = position.state
    if outcome == "down":
        # A failure must repeat failure_threshold times before it counts.
        if streak >= failure_threshold:
            state = "down"
    elif state in ("down", "pending"):
        # Recovery waits for success_threshold checks in a row.
        if streak >= success_threshold:
            state = outcome
    elif state != outcome:
        # up <-> degraded: slow must persist like a failure, fast like a recovery.
        needed = failure_threshold if outcome == "degraded" else success_threshold
        if streak >= needed:
            state = outcome
    return Position(state, outcome, streak)


def is_retrying(position: Position) -> bool:
    """Failing, but not yet down: the next check comes at the retry interval."""
    return position.last_outcome == "down" and position.state != "down"

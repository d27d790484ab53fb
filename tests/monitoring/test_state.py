from __future__ import annotations

from infrawatch.monitoring.engine.state import Position, advance, is_retrying


def run(outcomes: str, failure: int = 3, success: int = 1, start: str = "up") -> list[str]:
    """u/d/s (up, down, slow=degraded) -> the state after each."""
    names = {"u": "up", "d": "down", "s": "degraded"}
    position = Position(start, "up" if start == "up" else None, 1)
    states = []
    for code in outcomes:
        position = advance(position, names[code], failure, success)  # type: ignore[arg-type]
        states.append(position.state)
    return states


def test_failures_below_the_threshold_do_not_change_the_state() -> None:
    assert run("ddu") == ["up", "up", "up"]


def test_the_threshold_th_failure_in_a_row_moves_to_down() -> None:
    assert run("ddd") == ["up", "up", "down"]


def test_recovery_waits_for_the_success_threshold() -> None:
    assert run("dduu", failure=2, success=2) == ["up", "down", "down", "up"]


def test_a_flapping_target_never_reaches_down() -> None:
    assert set(run("dudududu")) == {"up"}


def test_slowness_must_persist_before_degraded() -> None:
    assert run("ssus", failure=2) == ["up", "degraded", "up", "up"]


def test_pending_becomes_up_on_first_success_and_down_after_the_threshold() -> None:
    assert run("u", start="pending") == ["up"]
    assert run("dd", failure=2, start="pending") == ["pending", "down"]


def test_a_failing_but_not_yet_down_monitor_is_retrying() -> None:
    position = advance(Position("up", "up", 5), "down", 3, 1)
    assert is_retrying(position)
    assert not is_retrying(advance(position, "up", 3, 1))

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infrawatch.monitoring.push import PushState, judge_push

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _state(**changes: object) -> PushState:
    fields: dict[str, object] = {
        "created_at": T0,
        "last_at": T0,
        "last_kind": "success",
        "exit_code": None,
        "started_at": None,
        "period_seconds": 300,
        "grace_seconds": 60,
    }
    fields.update(changes)
    return PushState(**fields)  # type: ignore[arg-type]


def test_a_started_job_that_does_not_finish_is_down_after_the_grace_time() -> None:
    started = _state(started_at=T0 + timedelta(seconds=10))
    within = judge_push(started, T0 + timedelta(seconds=69))
    assert within is not None and within.ok
    late = judge_push(started, T0 + timedelta(seconds=71))
    assert late is not None and not late.ok
    assert "started 61 s ago and has not finished" in (late.error or "")


def test_a_finished_job_is_judged_by_period_plus_grace() -> None:
    done = _state(started_at=T0 - timedelta(seconds=5))
    up = judge_push(done, T0 + timedelta(seconds=359))
    assert up is not None and up.ok and up.latency_ms == 5000
    down = judge_push(done, T0 + timedelta(seconds=361))
    assert down is not None and not down.ok and "period 300 s + grace 60 s" in (down.error or "")


def test_a_new_monitor_is_not_judged_before_its_first_period_and_grace() -> None:
    fresh = _state(last_at=None, last_kind=None)
    assert judge_push(fresh, T0 + timedelta(seconds=300)) is None
    silent = judge_push(fresh, T0 + timedelta(seconds=361))
    assert silent is not None and not silent.ok

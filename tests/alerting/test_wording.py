"""What alerts say: severity for receivers that colour by it, and bodies
that read right for monitors without a target."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from infrawatch.alerting import decide
from infrawatch.alerting.senders import severity
from infrawatch.inventory.lifecycle import Health
from infrawatch.monitoring.health import derive_health
from infrawatch.monitoring.service import TransitionBrief


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"event": "down"}, "failure"),
        ({"event": "degraded"}, "warning"),
        ({"event": "certificate"}, "warning"),
        ({"event": "recovered"}, "success"),
        ({"event": "location", "state": "gone"}, "warning"),
        ({"event": "location", "state": "up"}, "success"),
        ({"event": "test"}, "info"),
    ],
)
def test_each_event_has_the_severity_receivers_colour_by(
    payload: dict[str, str], expected: str
) -> None:
    assert severity(payload) == expected


def _brief(kind: str, target: str) -> TransitionBrief:
    return TransitionBrief(
        id=1,
        monitor_id=uuid.uuid4(),
        monitor_name="cron heartbeat",
        monitor_type=kind,
        target=target,
        server_id=None,
        kind="state",
        from_state="up",
        to_state="down",
        at=datetime.now(UTC),
        reason=None,
        in_maintenance=False,
        current_status="down",
    )


def test_a_monitor_without_a_target_is_named_by_what_it_is() -> None:
    assert decide._checked(_brief("push", "")) == "push heartbeat"
    assert decide._checked(_brief("agent", "")) == "host agent"
    assert decide._checked(_brief("http", "http://127.0.0.1/")) == "http http://127.0.0.1/"


def test_one_monitor_up_is_not_all_1() -> None:
    assert derive_health([("up", False)]) == (Health.healthy, "its monitor is up")
    assert derive_health([("up", False)] * 2) == (Health.healthy, "all 2 monitors up")

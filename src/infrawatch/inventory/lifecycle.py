"""The lifecycle axis: who may move a server where. Health is the other axis
and is not changed here."""

from __future__ import annotations

from enum import StrEnum

from infrawatch.core.errors import Conflict


class Lifecycle(StrEnum):
    planned = "planned"
    provisioning = "provisioning"
    active = "active"
    maintenance = "maintenance"
    decommissioning = "decommissioning"
    decommissioned = "decommissioned"
    failed = "failed"


class Health(StrEnum):
    unknown = "unknown"
    healthy = "healthy"
    degraded = "degraded"
    down = "down"


L = Lifecycle
# A server in one of these is not expected to answer: its monitors show
# `maintenance` and raise no alerts (alerting judges this).
RESTING: frozenset[Lifecycle] = frozenset({L.maintenance, L.decommissioning, L.decommissioned})
ALLOWED_TRANSITIONS: dict[Lifecycle, frozenset[Lifecycle]] = {
    L.planned: frozenset({L.provisioning, L.failed, L.decommissioned}),
    L.provisioning: frozenset({L.active, L.failed}),
    L.active: frozenset({L.maintenance, L.decommissioning, L.failed}),
    L.maintenance: frozenset({L.active, L.decommissioning, L.failed}),
    L.decommissioning: frozenset({L.decommissioned, L.failed}),
    L.decommissioned: frozenset(),
    # A failed build is retried or torn down.
    L.failed: frozenset({L.provisioning, L.decommissioning}),
}


def check_transition(current: str, target: str, server_name: str) -> None:
    source, goal = Lifecycle(current), Lifecycle(target)
    if source == goal or goal in ALLOWED_TRANSITIONS[source]:
        return
    allowed = sorted(ALLOWED_TRANSITIONS[source])
    options = ", ".join(allowed) if allowed else "none (it is final)"
    raise Conflict(
        f"server {server_name!r} cannot go from {source.value} to {goal.value}; "
        f"allowed from {source.value}: {options}"
    )

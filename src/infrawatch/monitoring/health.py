"""Server health, derived from the server's monitors: all up -> healthy;
any down or degraded -> degraded; a critical one down, or all down -> down;
none with a known state -> unknown."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.inventory import service as inventory
from infrawatch.inventory.lifecycle import Health
from infrawatch.monitoring import repository

KNOWN = ("up", "degraded", "down")


def derive_health(monitors: Iterable[tuple[str, bool]]) -> tuple[Health, str]:
    """(status, critical) of each unpaused monitor -> (health, why)."""
    known = [(status, critical) for status, critical in monitors if status in KNOWN]
    if not known:
        return Health.unknown, "no monitor has a known state"
    down = sum(1 for status, _ in known if status == "down")
    if any(status == "down" and critical for status, critical in known):
        return Health.down, "a critical monitor is down"
    if down == len(known):
        return Health.down, "every monitor is down"
    if down or any(status == "degraded" for status, _ in known):
        unhealthy = sum(1 for status, _ in known if status != "up")
        return Health.degraded, f"{unhealthy} of {len(known)} monitors down or degraded"
    if len(known) == 1:
        return Health.healthy, "its monitor is up"
    return Health.healthy, f"all {len(known)} monitors up"


async def refresh_server_health(session: AsyncSession, server_ids: Sequence[uuid.UUID]) -> None:
    """Recompute in the transaction that changed the monitors' states."""
    if not server_ids:
        return
    monitors = await repository.statuses_of_servers(session, sorted(set(server_ids)))
    for server_id, states in monitors.items():
        health, reason = derive_health(states)
        await inventory.set_health(session, server_id, health, reason)

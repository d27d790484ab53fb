"""Which monitors a maintenance window covers right now. Checks go on; the
monitors show `maintenance` and their alerts are held."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository
from infrawatch.alerting.decide import Subject, selects
from infrawatch.alerting.schedule import is_active
from infrawatch.core.clock import utcnow
from infrawatch.inventory import service as inventory
from infrawatch.inventory.lifecycle import RESTING
from infrawatch.monitoring import service as monitoring


async def _resting_servers(session: AsyncSession) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for lifecycle in sorted(RESTING):
        found |= set(
            await inventory.live_server_ids_matching(
                session, f"lifecycle:{lifecycle.value}", 1_000_000, ("query", "q")
            )
        )
    return found


async def apply_windows(session: AsyncSession) -> set[uuid.UUID]:
    """Monitors covered by an active window, or whose server rests
    (inventory.lifecycle.RESTING: maintenance, decommissioning)."""
    now = utcnow()
    active = [w for w in await repository.windows(session) if is_active(w, now)]
    covered: set[uuid.UUID] = set()
    resting = await _resting_servers(session)
    if resting:
        pairs = await monitoring.monitor_server_pairs(session)
        covered |= {m for m, s in pairs if s in resting}
    if active:
        pairs = await monitoring.monitor_server_pairs(session)
        server_ids = sorted({s for _, s in pairs if s is not None})
        servers = {}
        for start in range(0, len(server_ids), 500):
            rows = await inventory.servers_by_ids(session, server_ids[start : start + 500])
            servers.update({s.id: s for s in rows})
        for monitor_id, server_id in pairs:
            subject = Subject(monitor_id, servers.get(server_id) if server_id else None)
            if any(selects(w, subject, empty_means_all=False) for w in active):
                covered.add(monitor_id)
    return await monitoring.apply_maintenance(session, covered)

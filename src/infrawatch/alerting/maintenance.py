"""Which monitors a maintenance window covers right now. Checks go on; the
monitors show `maintenance` and their alerts are held."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository
from infrawatch.alerting.processor import Subject, selects
from infrawatch.alerting.schedule import is_active
from infrawatch.core.clock import utcnow
from infrawatch.inventory import service as inventory
from infrawatch.monitoring import service as monitoring


async def apply_windows(session: AsyncSession) -> set[uuid.UUID]:
    now = utcnow()
    active = [w for w in await repository.windows(session) if is_active(w, now)]
    covered: set[uuid.UUID] = set()
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

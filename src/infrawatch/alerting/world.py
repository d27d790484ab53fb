"""Everything a batch of alerting work is decided against, loaded in a fixed
number of queries however large the batch: rules, channels, windows, the
incidents involved, where their monitors stand, the servers with their tags
and groups (dynamic groups compiled once), and the upstream dependency
graph in one recursive query."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository
from infrawatch.alerting.decide import MAX_UPSTREAM_DEPTH, IncidentState, World
from infrawatch.core.clock import utcnow
from infrawatch.inventory import dependencies
from infrawatch.inventory import service as inventory
from infrawatch.monitoring import service as monitoring
from infrawatch.monitoring.service import TransitionBrief


async def for_transitions(session: AsyncSession, transitions: Sequence[TransitionBrief]) -> World:
    """A claimed batch: its monitors' open incidents, the incidents held
    under those (they are released when those resolve), and the holds still
    waiting for an upstream incident."""
    monitor_ids = {t.monitor_id for t in transitions}
    opened = await repository.open_incidents_of_monitors(session, sorted(monitor_ids))
    children = await repository.held_children(session, [i.id for i in opened])
    orphans = await repository.orphaned_upstream_holds(session)
    return await _world(
        session,
        with_windows=True,
        with_graph=True,
        incidents=[*opened, *children, *orphans],
        open_incidents=opened,
        children=children,
        orphans=orphans,
        server_ids={t.server_id for t in transitions if t.server_id},
    )


async def for_incidents(session: AsyncSession, incidents: Sequence[Any]) -> World:
    """Reminders and released holds: these incidents' servers and monitors."""
    return await _world(
        session,
        with_windows=False,
        with_graph=False,
        incidents=incidents,
        open_incidents=(),
        children=(),
        orphans=(),
    )


async def for_the_fleet(session: AsyncSession) -> World:
    """Rules and channels only: news with no monitor behind it."""
    return World(
        now=utcnow(),
        rules=await repository.enabled_rules(session),
        enabled_channels=await repository.enabled_channel_ids(session),
    )


async def _world(
    session: AsyncSession,
    *,
    with_windows: bool,
    with_graph: bool,
    incidents: Sequence[Any],
    open_incidents: Sequence[Any],
    children: Sequence[Any],
    orphans: Sequence[Any],
    server_ids: Iterable[uuid.UUID] = (),
) -> World:
    monitors_now = await monitoring.monitor_briefs(
        session, sorted({i.monitor_id for i in incidents if i.monitor_id})
    )
    start = {
        *server_ids,
        *(i.server_id for i in incidents if i.server_id),
        *(b.server_id for b in monitors_now.values() if b.server_id),
    }
    # Reminders and window releases ask nothing of the upstream graph.
    graph: dict[uuid.UUID, list[uuid.UUID]] = {}
    down: dict[uuid.UUID, list[uuid.UUID]] = {}
    parents: list[Any] = []
    if with_graph:
        graph = await dependencies.upstream_graph(session, sorted(start), MAX_UPSTREAM_DEPTH)
        upstream = {s for targets in graph.values() for s in targets}
        down = await monitoring.down_monitors_on(session, sorted(upstream))
        # The incidents a hold could hang under: those of the monitors down upstream.
        known = {i.monitor_id for i in open_incidents}
        parents = await repository.oldest_open_incident_per_server(
            session, sorted({m for ms in down.values() for m in ms} - known)
        )
    servers = await inventory.servers_by_ids(
        session, sorted(start | {s for targets in graph.values() for s in targets})
    )
    by_parent: dict[uuid.UUID, list[IncidentState]] = {}
    for child in children:
        if child.parent_id is not None:
            by_parent.setdefault(child.parent_id, []).append(IncidentState.of(child))
    open_by_monitor: dict[uuid.UUID, IncidentState] = {}
    for incident in [*parents, *open_incidents]:  # ordered by opened_at: the newest stays
        if incident.monitor_id is not None:
            open_by_monitor[incident.monitor_id] = IncidentState.of(incident)
    return World(
        now=utcnow(),
        rules=await repository.enabled_rules(session),
        windows=await repository.windows(session) if with_windows else (),
        enabled_channels=await repository.enabled_channel_ids(session),
        servers={s.id: s for s in servers},
        upstream=graph,
        down_monitors=down,
        open_incidents=open_by_monitor,
        held_children=by_parent,
        orphans=[IncidentState.of(i) for i in orphans],
        monitors_now=monitors_now,
    )

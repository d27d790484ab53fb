"""The dependency graph: what a server needs (upstream) and what breaks
with it (downstream). Alert suppression walks the same graph."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, NotFound
from infrawatch.inventory import repository
from infrawatch.inventory.models import ServerDependency
from infrawatch.inventory.schemas import DependencyCreate, DependencyOut
from infrawatch.inventory.service import present, require_server

MAX_DEPTH = 32


async def add_dependency(
    session: AsyncSession, ctx: OperationContext, server_id: uuid.UUID, data: DependencyCreate
) -> DependencyOut:
    await repository.lock_dependency_graph(session)
    server = await require_server(session, server_id, live=True)
    upstream = await require_server(session, data.server_id, live=True)
    if upstream.id == server.id:
        raise Conflict("a server cannot depend on itself")
    existing = await repository.get_dependency(session, server.id, upstream.id)
    if existing is not None:
        raise Conflict(f"{server.name!r} already depends on {upstream.name!r} ({existing.kind})")
    if await repository.reaches(session, upstream.id, server.id):
        raise Conflict(
            f"{upstream.name!r} already depends on {server.name!r} (directly or through others); "
            "this edge would make a cycle"
        )
    dependency = ServerDependency(
        server_id=server.id, depends_on_id=upstream.id, kind=data.kind, created_at=utcnow()
    )
    repository.add(session, dependency)
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "server.dependency.add",
            "server",
            server.id,
            None,
            {"depends_on": str(upstream.id), "depends_on_name": upstream.name, "kind": data.kind},
        ),
    )
    out = (await present(session, [upstream]))[0]
    return DependencyOut(server=out, kind=dependency.kind, created_at=dependency.created_at)


async def remove_dependency(
    session: AsyncSession, ctx: OperationContext, server_id: uuid.UUID, upstream_id: uuid.UUID
) -> None:
    dependency = await repository.get_dependency(session, server_id, upstream_id)
    if dependency is None:
        raise NotFound("no such dependency")
    await audit.record(
        session,
        ctx,
        audit.Change(
            "server.dependency.remove",
            "server",
            server_id,
            {"depends_on": str(upstream_id), "kind": dependency.kind},
            None,
        ),
    )
    await repository.delete_dependency(session, dependency)


async def upstream(session: AsyncSession, server_id: uuid.UUID) -> list[DependencyOut]:
    await require_server(session, server_id)
    rows = await repository.upstream_of(session, server_id)
    shown = await present(session, [s for s, _ in rows])
    return [
        DependencyOut(server=out, kind=d.kind, created_at=d.created_at)
        for out, (_, d) in zip(shown, rows, strict=True)
    ]


async def dependents(
    session: AsyncSession, server_id: uuid.UUID, depth: int
) -> list[DependencyOut]:
    """Everything that breaks if this server breaks, nearest first."""
    await require_server(session, server_id)
    rows = await repository.dependents_of(session, server_id, min(depth, MAX_DEPTH))
    servers = {s.id: s for s in await repository.get_servers(session, [r[0] for r in rows])}
    live = [r for r in rows if r[0] in servers and servers[r[0]].deleted_at is None]
    shown = await present(session, [servers[r[0]] for r in live])
    return [
        DependencyOut(server=out, kind=kind, depth=d, via=via, created_at=created_at)
        for out, (_, kind, d, via, created_at) in zip(shown, live, strict=True)
    ]


async def upstream_graph(
    session: AsyncSession, start: Sequence[uuid.UUID], max_depth: int = MAX_DEPTH
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """server → the servers it depends on directly, for every server
    reachable upstream from `start` (one query, however many)."""
    graph: dict[uuid.UUID, list[uuid.UUID]] = {}
    for server_id, depends_on in await repository.upstream_edges(session, start, max_depth):
        graph.setdefault(server_id, []).append(depends_on)
    for upstream in graph.values():
        upstream.sort()
    return graph

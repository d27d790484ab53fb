"""Every query of the inventory domain."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.pagination import SortKey, after_cursor, order_by
from infrawatch.inventory.lifecycle import RESTING, Lifecycle
from infrawatch.inventory.models import (
    Group,
    HealthTransition,
    InventoryGeneration,
    LifecycleTransition,
    Server,
    ServerDependency,
    ServerGroup,
    ServerTag,
    Template,
)

# SQLite allows 32,766 bound parameters per statement; stay well below.
CHUNK = 1000


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _nullable(column: Any) -> ColumnElement[Any]:
    # Keyset comparisons need a total order; NULL compares as nothing.
    coalesced: ColumnElement[Any] = func.coalesce(column, "")
    return coalesced


def name_key(dialect: str) -> ColumnElement[str]:
    """Servers sort by name ignoring case. Byte order ("C") on PostgreSQL, so
    a name prefix is one contiguous range whatever the database's locale."""
    lowered: ColumnElement[str] = func.lower(Server.name)
    return lowered.collate("C") if dialect == "postgresql" else lowered


def server_sort_columns(dialect: str) -> dict[str, ColumnElement[Any]]:
    columns: dict[str, Any] = {
        "id": Server.id,
        "name": name_key(dialect),
        "created_at": Server.created_at,
        "updated_at": Server.updated_at,
        "lifecycle": Server.lifecycle,
        "health": Server.health,
        "ssh_port": Server.ssh_port,
    }
    for nullable in ("hostname", "ip_address", "provider", "region", "os", "environment", "owner"):
        columns[nullable] = _nullable(getattr(Server, nullable))
    return columns


def live_or_all(include_deleted: bool) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = (
        Server.id.is_not(None) if include_deleted else Server.deleted_at.is_(None)
    )
    return condition


# --- servers ------------------------------------------------------------------


async def page_servers(
    session: AsyncSession,
    condition: ColumnElement[bool],
    keys: Sequence[SortKey],
    after: Sequence[Any] | None,
    limit: int,
) -> list[tuple[Server, list[Any]]]:
    """The page, each server with its sort-key values as the database
    computed them (the next cursor is made of those, not of a Python guess)."""
    query = select(Server, *(key.column for key in keys)).where(condition)
    if after is not None:
        query = query.where(after_cursor(keys, after))
    rows = await session.execute(query.order_by(*order_by(keys)).limit(limit + 1))
    return [(row[0], list(row[1:])) for row in rows]


def count_key(session: AsyncSession, condition: ColumnElement[bool]) -> str:
    """The condition as SQL with its values: equal conditions, equal keys."""
    compiled = condition.compile(session.get_bind(), compile_kwargs={"render_postcompile": True})
    return f"servers:{compiled}:{sorted(compiled.params.items(), key=lambda kv: kv[0])!r}"


async def inventory_generation(session: AsyncSession) -> int:
    return int(
        await session.scalar(select(InventoryGeneration.value).where(InventoryGeneration.id == 1))
        or 0
    )


async def select_server_ids(
    session: AsyncSession, condition: ColumnElement[bool], limit: int
) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Server.id).where(condition).order_by(Server.id).limit(limit)
    )
    return list(rows)


async def all_servers(session: AsyncSession, condition: ColumnElement[bool]) -> list[Server]:
    rows = await session.scalars(select(Server).where(condition).order_by(Server.name, Server.id))
    return list(rows)


async def get_server(session: AsyncSession, server_id: uuid.UUID) -> Server | None:
    return await session.get(Server, server_id)


async def get_servers(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Server]:
    found: list[Server] = []
    for part in chunks(list(ids)):
        found.extend(await session.scalars(select(Server).where(Server.id.in_(part))))
    return found


async def server_rows(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """Plain rows (attribute access, no ORM identity map): what a bulk
    action over 10,000 servers needs to decide, at a fraction of the cost."""
    found: list[Row[Any]] = []
    for part in chunks(list(ids)):
        found.extend(await session.execute(select(Server.__table__).where(Server.id.in_(part))))
    return found


# Name look-ups go through the plain name index and leave deleted servers out
# in Python: with a `deleted_at IS NULL` term, PostgreSQL statistics gone stale
# during a bulk load once made the planner check 95,000 rows per 1,000 names.


async def live_servers_by_name(session: AsyncSession, names: Sequence[str]) -> dict[str, Server]:
    found: dict[str, Server] = {}
    for part in chunks(list(names)):
        servers = await session.scalars(select(Server).where(Server.name.in_(part)))
        found.update({s.name: s for s in servers if s.deleted_at is None})
    return found


def add(session: AsyncSession, row: Any) -> None:
    session.add(row)


async def purge_server(session: AsyncSession, server: Server) -> None:
    await session.delete(server)


async def tags_of(
    session: AsyncSession, ids: Sequence[uuid.UUID], keys: Sequence[str] | None = None
) -> dict[uuid.UUID, dict[str, str]]:
    tags: dict[uuid.UUID, dict[str, str]] = defaultdict(dict)
    for part in chunks(list(ids)):
        query = select(ServerTag.server_id, ServerTag.key, ServerTag.value)
        query = query.where(ServerTag.server_id.in_(part))
        if keys is not None:
            query = query.where(ServerTag.key.in_(keys))
        for server_id, key, value in await session.execute(query):
            tags[server_id][key] = value
    return tags


async def static_groups_of(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    groups: dict[uuid.UUID, list[str]] = defaultdict(list)
    for part in chunks(list(ids)):
        query = (
            select(ServerGroup.server_id, Group.name)
            .join(Group, Group.id == ServerGroup.group_id)
            .where(ServerGroup.server_id.in_(part))
        )
        for server_id, name in await session.execute(query):
            groups[server_id].append(name)
    return groups


async def dynamic_members_among(
    session: AsyncSession,
    conditions: Sequence[tuple[str, ColumnElement[bool]]],
    ids: Sequence[uuid.UUID],
) -> dict[uuid.UUID, list[str]]:
    """Which of `ids` each dynamic group holds, in one round trip."""
    groups: dict[uuid.UUID, list[str]] = defaultdict(list)
    if not conditions or not ids:
        return groups
    selects = [
        select(Server.id.label("server_id"), literal(name).label("group_name")).where(
            Server.id.in_(ids), condition
        )
        for name, condition in conditions
    ]
    for server_id, name in await session.execute(union_all(*selects)):
        groups[server_id].append(name)
    return groups


async def replace_tags(session: AsyncSession, server_id: uuid.UUID, tags: dict[str, str]) -> None:
    await session.execute(delete(ServerTag).where(ServerTag.server_id == server_id))
    if tags:
        rows = [{"server_id": server_id, "key": k, "value": v} for k, v in tags.items()]
        await session.execute(insert(ServerTag), rows)


async def replace_static_groups(
    session: AsyncSession, server_id: uuid.UUID, group_ids: Sequence[uuid.UUID]
) -> None:
    await session.execute(delete(ServerGroup).where(ServerGroup.server_id == server_id))
    if group_ids:
        rows = [{"server_id": server_id, "group_id": g} for g in group_ids]
        await session.execute(insert(ServerGroup), rows)


async def insert_lifecycle_transitions(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> None:
    for part in chunks(list(rows)):
        await session.execute(insert(LifecycleTransition), list(part))


async def health_history(
    session: AsyncSession, server_id: uuid.UUID, limit: int
) -> list[HealthTransition]:
    query = select(HealthTransition).where(HealthTransition.server_id == server_id)
    return list(await session.scalars(query.order_by(HealthTransition.id.desc()).limit(limit)))


# --- bulk ---------------------------------------------------------------------


async def bump_servers(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    now: datetime,
    values: dict[str, Any] | None = None,
) -> None:
    for part in chunks(list(ids)):
        await session.execute(
            update(Server)
            .where(Server.id.in_(part))
            .values(updated_at=now, version=Server.version + 1, **(values or {}))
            .execution_options(synchronize_session=False)
        )


async def delete_tags(session: AsyncSession, ids: Sequence[uuid.UUID], keys: Sequence[str]) -> None:
    for part in chunks(list(ids)):
        await session.execute(
            delete(ServerTag).where(ServerTag.server_id.in_(part), ServerTag.key.in_(keys))
        )


async def insert_servers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for part in chunks(list(rows), 500):
        await session.execute(insert(Server), list(part))


async def insert_tags(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for part in chunks(list(rows), 2000):
        await session.execute(insert(ServerTag), list(part))


async def insert_memberships(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    for part in chunks(list(rows), 2000):
        await session.execute(insert(ServerGroup), list(part))


async def static_member_ids(
    session: AsyncSession, group_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    members: set[uuid.UUID] = set()
    for part in chunks(list(ids)):
        query = select(ServerGroup.server_id).where(
            ServerGroup.group_id == group_id, ServerGroup.server_id.in_(part)
        )
        members.update(await session.scalars(query))
    return members


async def remove_static_members(
    session: AsyncSession, group_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> None:
    for part in chunks(list(ids)):
        await session.execute(
            delete(ServerGroup).where(
                ServerGroup.group_id == group_id, ServerGroup.server_id.in_(part)
            )
        )


async def live_names_taken(session: AsyncSession, names: Sequence[str]) -> set[str]:
    taken: set[str] = set()
    for part in chunks(list(names)):
        rows = await session.execute(
            select(Server.name, Server.deleted_at).where(Server.name.in_(part))
        )
        taken.update(name for name, deleted_at in rows if deleted_at is None)
    return taken


async def live_servers_at(session: AsyncSession, addresses: Sequence[str]) -> dict[str, Any]:
    """address -> (id, name) of the live server that has it."""
    found: dict[str, Any] = {}
    for part in chunks(list(addresses)):
        rows = await session.execute(
            select(Server.ip_address, Server.id, Server.name).where(
                Server.ip_address.in_(part), Server.deleted_at.is_(None)
            )
        )
        for address, server_id, name in rows.all():
            found[str(address)] = (server_id, name)
    return found


# --- groups -------------------------------------------------------------------


async def list_groups(session: AsyncSession) -> list[Group]:
    return list(await session.scalars(select(Group).order_by(Group.name)))


async def dynamic_groups(session: AsyncSession) -> list[Group]:
    return list(
        await session.scalars(select(Group).where(Group.query.is_not(None)).order_by(Group.name))
    )


async def get_group(session: AsyncSession, group_id: uuid.UUID) -> Group | None:
    return await session.get(Group, group_id)


async def groups_by_name(session: AsyncSession, names: Sequence[str]) -> dict[str, Group]:
    if not names:
        return {}
    return {g.name: g for g in await session.scalars(select(Group).where(Group.name.in_(names)))}


async def static_member_counts(session: AsyncSession) -> dict[uuid.UUID, int]:
    query = (
        select(ServerGroup.group_id, func.count())
        .join(Server, Server.id == ServerGroup.server_id)
        .where(Server.deleted_at.is_(None))
        .group_by(ServerGroup.group_id)
    )
    return {group_id: int(count) for group_id, count in await session.execute(query)}


async def count_servers(session: AsyncSession, condition: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(Server).where(condition)) or 0)


async def delete_group(session: AsyncSession, group: Group) -> None:
    await session.delete(group)


# --- templates ----------------------------------------------------------------


async def list_templates(session: AsyncSession) -> list[Template]:
    return list(await session.scalars(select(Template).order_by(Template.name)))


async def get_template(session: AsyncSession, template_id: uuid.UUID) -> Template | None:
    return await session.get(Template, template_id)


async def template_by_name(session: AsyncSession, name: str) -> Template | None:
    return (await session.scalars(select(Template).where(Template.name == name))).first()


async def group_by_name(session: AsyncSession, name: str) -> Group | None:
    return (await session.scalars(select(Group).where(Group.name == name))).first()


async def delete_template(session: AsyncSession, template: Template) -> None:
    await session.delete(template)


# --- dependencies -------------------------------------------------------------


async def get_dependency(
    session: AsyncSession, server_id: uuid.UUID, upstream_id: uuid.UUID
) -> ServerDependency | None:
    return await session.get(ServerDependency, (server_id, upstream_id))


async def reaches(session: AsyncSession, start: uuid.UUID, target: uuid.UUID) -> bool:
    """Does following upstream edges from `start` arrive at `target`?"""
    walk = (
        select(ServerDependency.depends_on_id.label("node"))
        .where(ServerDependency.server_id == start)
        .cte("walk", recursive=True)
    )
    walk = walk.union(
        select(ServerDependency.depends_on_id).join(walk, ServerDependency.server_id == walk.c.node)
    )
    found = await session.scalar(
        select(func.count()).select_from(walk).where(walk.c.node == target)
    )
    return bool(found)


async def upstream_edges(
    session: AsyncSession, start: Sequence[uuid.UUID], max_depth: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Every (server, depends_on) edge reachable upstream from `start`,
    `max_depth` edges deep at most, in one recursive query."""
    if not start:
        return []
    dep = ServerDependency.__table__.c
    walk = (
        select(dep.server_id, dep.depends_on_id, literal(1).label("depth"))
        .where(dep.server_id.in_(sorted(set(start))))
        .cte("upstream_walk", recursive=True)
    )
    walk = walk.union(
        select(dep.server_id, dep.depends_on_id, walk.c.depth + 1)
        .join(walk, dep.server_id == walk.c.depends_on_id)
        .where(walk.c.depth < max_depth)
    )
    rows = await session.execute(select(walk.c.server_id, walk.c.depends_on_id).distinct())
    return [(row[0], row[1]) for row in rows]


async def upstream_of(
    session: AsyncSession, server_id: uuid.UUID
) -> list[tuple[Server, ServerDependency]]:
    query = (
        select(Server, ServerDependency)
        .join(ServerDependency, ServerDependency.depends_on_id == Server.id)
        .where(ServerDependency.server_id == server_id)
        .order_by(Server.name)
    )
    return [(s, d) for s, d in (await session.execute(query)).all()]


async def dependents_of(
    session: AsyncSession, server_id: uuid.UUID, max_depth: int
) -> list[tuple[uuid.UUID, str, int, uuid.UUID, datetime]]:
    """(server, kind, depth, via, edge created_at) for everything downstream, shallowest first.
    UNION (not UNION ALL) plus the depth bound keeps diamonds finite."""
    walk = (
        select(
            ServerDependency.server_id.label("node"),
            ServerDependency.kind.label("kind"),
            literal(1).label("depth"),
            ServerDependency.depends_on_id.label("via"),
            ServerDependency.created_at.label("created_at"),
        )
        .where(ServerDependency.depends_on_id == server_id)
        .cte("downstream", recursive=True)
    )
    walk = walk.union(
        select(
            ServerDependency.server_id,
            ServerDependency.kind,
            walk.c.depth + 1,
            ServerDependency.depends_on_id,
            ServerDependency.created_at,
        )
        .join(walk, ServerDependency.depends_on_id == walk.c.node)
        .where(walk.c.depth < max_depth)
    )
    rows = await session.execute(
        select(walk.c.node, walk.c.kind, walk.c.depth, walk.c.via, walk.c.created_at)
    )
    best: dict[uuid.UUID, tuple[uuid.UUID, str, int, uuid.UUID, datetime]] = {}
    for node, kind, depth, via, created_at in rows:
        if node != server_id and (node not in best or depth < best[node][2]):
            best[node] = (node, kind, depth, via, created_at)
    return sorted(best.values(), key=lambda r: r[2])


async def delete_dependency(session: AsyncSession, dependency: ServerDependency) -> None:
    await session.delete(dependency)


async def lock_dependency_graph(session: AsyncSession) -> None:
    """Serialize graph edits so two concurrent edges cannot close a cycle
    that neither saw. SQLite writers are serialized already."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(0x1F0_DE95)))


async def set_health(
    session: AsyncSession, server_id: uuid.UUID, health: str, at: datetime
) -> str | None:
    """The health it had, if it changed; None if unchanged or no such server.
    Does not touch updated_at or version: health is not an edit."""
    server = await session.get(Server, server_id)
    if server is None or server.health == health:
        return None
    before = server.health
    server.health = health
    server.health_changed_at = at
    return before


def add_health_transition(
    session: AsyncSession, server_id: uuid.UUID, before: str, after: str, at: datetime, reason: str
) -> None:
    session.add(
        HealthTransition(
            server_id=server_id, from_state=before, to_state=after, at=at, reason=reason
        )
    )


async def lifecycle_health_counts(session: AsyncSession) -> list[tuple[str, str, int]]:
    """Live servers per (lifecycle, health): one grouped scan."""
    query = (
        select(Server.lifecycle, Server.health, func.count())
        .where(Server.deleted_at.is_(None))
        .group_by(Server.lifecycle, Server.health)
    )
    return [(str(a), str(b), int(n)) for a, b, n in await session.execute(query)]


async def server_ids_where(
    session: AsyncSession, condition: ColumnElement[bool], limit: int
) -> list[uuid.UUID]:
    query = select(Server.id).where(condition).order_by(Server.name).limit(limit)
    return list(await session.scalars(query))


async def live_ids_by_name(session: AsyncSession, names: Sequence[str]) -> dict[str, uuid.UUID]:
    query = select(Server.name, Server.id).where(
        Server.name.in_(names), Server.deleted_at.is_(None)
    )
    return {name: server_id for name, server_id in (await session.execute(query)).all()}


# --- the host map -------------------------------------------------------------------


async def host_map_rows(
    session: AsyncSession, tag: str | None, states: Sequence[str]
) -> list[tuple[str | None, str, int]]:
    """(group, name, state code: an index into `states`) of every live
    server still in service, in the map's order: by the tag's value
    (untagged last), the worst first inside a group so trouble sits at its
    top-left, then by name so cells stay put. One scan, sorted by the
    database: a sort of 100,000 tuples in Python cost as much as the query."""
    group = ServerTag.value if tag else null().label("value")
    code = case(
        (Server.lifecycle.in_([r.value for r in RESTING]), states.index("maintenance")),
        *[(Server.health == state, i) for i, state in enumerate(states) if state != "maintenance"],
        else_=states.index("unknown"),
    )
    query = select(group, Server.name, code)
    if tag:
        query = query.outerjoin(
            ServerTag, and_(ServerTag.server_id == Server.id, ServerTag.key == tag)
        )
    query = query.where(
        Server.deleted_at.is_(None), Server.lifecycle != Lifecycle.decommissioned.value
    ).order_by(group.is_(None), group, code, func.lower(Server.name))
    connection = await session.connection()  # plain rows: no ORM objects per server
    return [(value, name, int(state)) for value, name, state in await connection.execute(query)]


async def tag_keys(session: AsyncSession, limit: int) -> list[str]:
    query = select(ServerTag.key).distinct().order_by(ServerTag.key).limit(limit)
    return [str(key) for key in await session.scalars(query)]


async def groups_where(session: AsyncSession, condition: ColumnElement[bool]) -> list[Row[Any]]:
    """(id, name, query) of the groups a search term names."""
    return list(await session.execute(select(Group.id, Group.name, Group.query).where(condition)))

"""Servers: create, read, change, delete, restore, and the list with search."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext, Role
from infrawatch.core.counts import CountCache
from infrawatch.core.db import stage_event
from infrawatch.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from infrawatch.core.events import Event
from infrawatch.core.pagination import Page, decode_cursor, encode_cursor, parse_sort
from infrawatch.inventory import repository, search, search_sql
from infrawatch.inventory.lifecycle import Health, Lifecycle, check_transition
from infrawatch.inventory.models import Server
from infrawatch.inventory.schemas import ServerOut

SCALAR_FIELDS = (
    "name",
    "hostname",
    "ip_address",
    "ssh_port",
    "provider",
    "region",
    "os",
    "environment",
    "owner",
    "description",
    "attributes",
)


@dataclass
class ServerFilters:
    """Query-string filters, each turned into a search term: one matcher."""

    q: str | None = None
    include_deleted: bool = False
    terms: list[search.Term] = field(default_factory=list)


# --- conditions ---------------------------------------------------------------


async def compile_search(
    session: AsyncSession,
    q: str | None,
    loc: tuple[str | int, ...] = ("query", "q"),
    *,
    counting: bool = False,
) -> ColumnElement[bool] | None:
    if not q or not q.strip():
        return None
    try:
        return await search_sql.compile_query(session, q, counting=counting)
    except search.SearchError as exc:
        raise InvalidInput(
            str(exc),
            loc=loc,
            error_type="query_syntax",
            ctx={"position": exc.position, "reason": exc.reason},
        ) from exc
    except search_sql.GroupQueryError as exc:
        raise InvalidInput(str(exc), loc=loc, error_type="query_group") from exc


async def filter_condition(
    session: AsyncSession,
    filters: ServerFilters,
    loc: tuple[str | int, ...] = ("query", "q"),
    *,
    counting: bool = False,
) -> ColumnElement[bool]:
    """`counting` shapes the same filter for a count over every server rather
    than for a page that walks a few hundred in order."""
    conditions = [repository.live_or_all(filters.include_deleted)]
    searched = await compile_search(session, filters.q, loc, counting=counting)
    if searched is not None:
        conditions.append(searched)
    if filters.terms:
        try:
            conditions.append(
                await search_sql.compile_terms(session, filters.terms, counting=counting)
            )
        except search_sql.GroupQueryError as exc:
            raise InvalidInput(str(exc), loc=("query", "group")) from exc
    return and_(*conditions)


# --- reading ------------------------------------------------------------------


async def dynamic_group_conditions(session: AsyncSession) -> list[tuple[str, ColumnElement[bool]]]:
    conditions = []
    for group in await repository.dynamic_groups(session):
        assert group.query is not None
        try:
            conditions.append((group.name, await search_sql.compile_query(session, group.query)))
        except (search.SearchError, search_sql.GroupQueryError):
            continue  # refused when saved; a group renamed since can make it stale
    return conditions


async def present(session: AsyncSession, servers: Sequence[Server]) -> list[ServerOut]:
    """Servers with their tags and groups (static and dynamic), in a fixed
    number of queries however many servers there are."""
    ids = [s.id for s in servers]
    tags = await repository.tags_of(session, ids)
    groups = await repository.static_groups_of(session, ids)
    dynamic = await repository.dynamic_members_among(
        session, await dynamic_group_conditions(session), ids
    )
    return [
        ServerOut(
            id=s.id,
            name=s.name,
            hostname=s.hostname,
            ip_address=s.ip_address,
            ssh_port=s.ssh_port,
            provider=s.provider,
            region=s.region,
            os=s.os,
            environment=s.environment,
            owner=s.owner,
            description=s.description,
            tags=dict(sorted(tags.get(s.id, {}).items())),
            groups=sorted({*groups.get(s.id, []), *dynamic.get(s.id, [])}),
            attributes=s.attributes or {},
            lifecycle=s.lifecycle,
            health=s.health,
            health_changed_at=s.health_changed_at,
            created_at=s.created_at,
            updated_at=s.updated_at,
            deleted_at=s.deleted_at,
        )
        for s in servers
    ]


async def list_servers(
    session: AsyncSession,
    filters: ServerFilters,
    *,
    sort: str | None,
    cursor: str | None,
    limit: int,
    counts: CountCache | None = None,
) -> Page[ServerOut]:
    columns = repository.server_sort_columns(session.get_bind().dialect.name)
    keys = parse_sort(sort, columns, default="name")
    after = decode_cursor(cursor, keys) if cursor else None
    condition = await filter_condition(session, filters)
    rows = await repository.page_servers(session, condition, keys, after, limit)
    total = await count_servers(
        session, await filter_condition(session, filters, counting=True), counts
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(keys, rows[-1][1])
    servers = [server for server, _ in rows]
    return Page(items=await present(session, servers), total=total, next_cursor=next_cursor)


async def count_servers(
    session: AsyncSession, condition: ColumnElement[bool], counts: CountCache | None
) -> int:
    if counts is None:
        return await repository.count_servers(session, condition)
    return await counts.get(
        repository.count_key(session, condition),
        await repository.inventory_generation(session),
        lambda: repository.count_servers(session, condition),
    )


async def require_server(
    session: AsyncSession, server_id: uuid.UUID, *, live: bool = False
) -> Server:
    server = await repository.get_server(session, server_id)
    if server is None or (live and server.deleted_at is not None):
        raise NotFound(
            "no such server" if server is None else "this server is deleted; restore it first"
        )
    return server


async def get_server(session: AsyncSession, server_id: uuid.UUID) -> Versioned[ServerOut]:
    server = await require_server(session, server_id)
    return Versioned((await present(session, [server]))[0], server.version)


# --- writing ------------------------------------------------------------------


def snapshot(server: ServerOut) -> dict[str, Any]:
    data = server.model_dump(
        mode="json", exclude={"id", "created_at", "updated_at", "health_changed_at"}
    )
    return data


async def resolve_static_groups(
    session: AsyncSession, names: Sequence[str], loc: tuple[str | int, ...] = ("body", "groups")
) -> dict[str, uuid.UUID]:
    unique = sorted(set(names))
    found = await repository.groups_by_name(session, unique)
    missing = [n for n in unique if n not in found]
    if missing:
        raise InvalidInput(f"no such group: {', '.join(missing)}", loc=loc)
    dynamic = [n for n in unique if found[n].query is not None]
    if dynamic:
        raise InvalidInput(
            f"group {dynamic[0]!r} is dynamic: its members come from its query", loc=loc
        )
    return {n: found[n].id for n in unique}


async def _ensure_name_free(session: AsyncSession, name: str, server_id: uuid.UUID | None) -> None:
    taken = (await repository.live_servers_by_name(session, [name])).get(name)
    if taken is not None and taken.id != server_id:
        raise Conflict(f"a server named {name!r} already exists")


def lifecycle_transition_row(
    ctx: OperationContext, server_id: uuid.UUID, old: str | None, new: str
) -> dict[str, Any]:
    return {
        "server_id": server_id,
        "from_state": old,
        "to_state": new,
        "at": utcnow(),
        "actor": ctx.actor.username,
        "request_id": ctx.request_id,
    }


async def apply_changes(
    session: AsyncSession, ctx: OperationContext, server: Server, changes: Mapping[str, Any]
) -> None:
    """The one place a server's writable fields change (create, PATCH, PUT,
    template, import all come here)."""
    if "name" in changes and changes["name"] != server.name:
        await _ensure_name_free(session, changes["name"], server.id)
    for name in SCALAR_FIELDS:
        if name in changes:
            setattr(server, name, changes[name])
    if "lifecycle" in changes and changes["lifecycle"] != server.lifecycle:
        old, new = server.lifecycle, str(changes["lifecycle"])
        if old is not None:
            check_transition(old, new, server.name)
        server.lifecycle = new
        await session.flush()  # the transition row refers to the server
        await repository.insert_lifecycle_transitions(
            session, [lifecycle_transition_row(ctx, server.id, old, new)]
        )
        stage_event(
            session,
            Event(
                "inventory.server.lifecycle_changed", {"id": str(server.id), "from": old, "to": new}
            ),
        )
    await session.flush()
    if "tags" in changes:
        await repository.replace_tags(session, server.id, dict(changes["tags"]))
    if "groups" in changes:
        group_ids = await resolve_static_groups(session, changes["groups"])
        await repository.replace_static_groups(session, server.id, list(group_ids.values()))


async def create_servers(
    session: AsyncSession, ctx: OperationContext, rows: Sequence[Mapping[str, Any]]
) -> list[uuid.UUID]:
    """Create many servers in a fixed number of statements per thousand rows:
    single create, template instantiation and import all come through here."""
    names = [row["name"] for row in rows]
    duplicates = (
        sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    )
    if duplicates:
        raise Conflict(f"the same name is given twice: {', '.join(duplicates[:10])}")
    taken = sorted(await repository.live_names_taken(session, names))
    if taken:
        more = f" and {len(taken) - 10} more" if len(taken) > 10 else ""
        raise Conflict(f"servers with these names already exist: {', '.join(taken[:10])}{more}")
    group_ids = await resolve_static_groups(
        session, [g for row in rows for g in row.get("groups") or []]
    )
    now = utcnow()
    servers: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    memberships: list[dict[str, Any]] = []
    transitions: list[dict[str, Any]] = []
    changes: list[audit.Change] = []
    for row in rows:
        server_id = uuid.uuid4()
        values = {name: row.get(name) for name in SCALAR_FIELDS}
        values["ssh_port"] = row.get("ssh_port") or 22
        values["attributes"] = row.get("attributes") or {}
        lifecycle = str(row["lifecycle"])
        servers.append(
            {
                **values,
                "id": server_id,
                "lifecycle": lifecycle,
                "health": "unknown",
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
        row_tags = dict(row.get("tags") or {})
        tags.extend({"server_id": server_id, "key": k, "value": v} for k, v in row_tags.items())
        row_groups = sorted(set(row.get("groups") or []))
        memberships.extend({"server_id": server_id, "group_id": group_ids[g]} for g in row_groups)
        transitions.append(lifecycle_transition_row(ctx, server_id, None, lifecycle))
        after = audit.jsonable(
            {
                **values,
                "lifecycle": lifecycle,
                "health": "unknown",
                "tags": dict(sorted(row_tags.items())),
                "groups": row_groups,
                "deleted_at": None,
            }
        )
        changes.append(audit.Change("server.create", "server", server_id, None, after))
    await repository.insert_servers(session, servers)
    await repository.insert_tags(session, tags)
    await repository.insert_memberships(session, memberships)
    await repository.insert_lifecycle_transitions(session, transitions)
    await audit.record_many(session, ctx, changes)
    for server in servers:
        stage_event(
            session,
            Event("inventory.server.created", {"id": str(server["id"]), "name": server["name"]}),
        )
    return [server["id"] for server in servers]


async def create_server(
    session: AsyncSession, ctx: OperationContext, data: Mapping[str, Any]
) -> Versioned[ServerOut]:
    (server_id,) = await create_servers(session, ctx, [data])
    return await get_server(session, server_id)


async def update_server(
    session: AsyncSession,
    ctx: OperationContext,
    server_id: uuid.UUID,
    changes: Mapping[str, Any],
    if_match: str | None = None,
) -> Versioned[ServerOut]:
    server = await require_server(session, server_id, live=True)
    check_if_match(if_match, server.version)
    before = snapshot((await present(session, [server]))[0])
    await apply_changes(session, ctx, server, changes)
    out = (await present(session, [server]))[0]
    after = snapshot(out)
    if after != before:
        bump_version(server)
        await session.flush()
        out = out.model_copy(update={"updated_at": server.updated_at})
        await audit.record(
            session, ctx, audit.Change("server.update", "server", server.id, before, after)
        )
        stage_event(
            session, Event("inventory.server.updated", {"id": str(server.id), "name": server.name})
        )
    return Versioned(out, server.version)


async def delete_server(
    session: AsyncSession,
    ctx: OperationContext,
    server_id: uuid.UUID,
    *,
    purge: bool,
    if_match: str | None = None,
) -> None:
    server = await require_server(session, server_id)
    check_if_match(if_match, server.version)
    before = snapshot((await present(session, [server]))[0])
    if purge:
        if not ctx.actor.role.allows(Role.admin):
            raise Forbidden("purging a server needs the admin role")
        await audit.record(
            session, ctx, audit.Change("server.purge", "server", server.id, before, None)
        )
        await repository.purge_server(session, server)
        stage_event(session, Event("inventory.server.purged", {"id": str(server_id)}))
        return
    if server.deleted_at is not None:
        return  # deleting twice changes nothing
    bump_version(server)
    server.deleted_at = server.updated_at
    await audit.record(
        session,
        ctx,
        audit.Change(
            "server.delete",
            "server",
            server.id,
            before,
            {**before, "deleted_at": server.deleted_at},
        ),
    )
    stage_event(
        session, Event("inventory.server.deleted", {"id": str(server.id), "name": server.name})
    )


async def restore_server(
    session: AsyncSession, ctx: OperationContext, server_id: uuid.UUID
) -> Versioned[ServerOut]:
    server = await require_server(session, server_id)
    if server.deleted_at is None:
        return Versioned((await present(session, [server]))[0], server.version)
    if (await repository.live_servers_by_name(session, [server.name])).get(server.name):
        raise Conflict(
            f"the name {server.name!r} was taken by another server meanwhile; "
            "rename that one (or purge this one) first"
        )
    deleted_at = server.deleted_at
    server.deleted_at = None
    bump_version(server)
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "server.restore", "server", server.id, {"deleted_at": deleted_at}, {"deleted_at": None}
        ),
    )
    stage_event(
        session, Event("inventory.server.restored", {"id": str(server.id), "name": server.name})
    )
    return Versioned((await present(session, [server]))[0], server.version)


async def history(
    session: AsyncSession, server_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[Any]:
    await require_server(session, server_id)
    return await audit.list_records(
        session, limit=limit, cursor=cursor, object_type="server", object_id=str(server_id)
    )


async def health_history(session: AsyncSession, server_id: uuid.UUID, limit: int) -> list[Any]:
    await require_server(session, server_id)
    return await repository.health_history(session, server_id, limit)


async def set_health(
    session: AsyncSession, server_id: uuid.UUID, health: Health, reason: str
) -> bool:
    """Only the monitoring engine calls this: health is derived, never set
    through the API. Records the transition and announces it."""
    at = utcnow()
    before = await repository.set_health(session, server_id, health.value, at)
    if before is None:
        return False
    repository.add_health_transition(session, server_id, before, health.value, at, reason)
    stage_event(
        session,
        Event(
            "inventory.server.health",
            {"id": str(server_id), "from": before, "to": health.value, "reason": reason},
        ),
    )
    return True


async def live_servers_at(
    session: AsyncSession, addresses: Sequence[str]
) -> dict[str, tuple[uuid.UUID, str]]:
    """address -> (id, name) of the live server with that IP address."""
    return await repository.live_servers_at(session, addresses)


async def live_names_taken(session: AsyncSession, names: Sequence[str]) -> set[str]:
    return await repository.live_names_taken(session, names)


async def servers_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[ServerOut]:
    return await present(session, await repository.get_servers(session, ids))


async def fleet_counts(session: AsyncSession, cache: CountCache) -> dict[str, dict[str, int]]:
    """Live servers by lifecycle and by health, every value present (0 if
    none). Counted again only when the inventory's generation moved (any
    change to servers, health included, moves it)."""

    async def count() -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {
            "lifecycle": {value.value: 0 for value in Lifecycle},
            "health": {value.value: 0 for value in Health},
        }
        for lifecycle, health, n in await repository.lifecycle_health_counts(session):
            counts["lifecycle"][lifecycle] = counts["lifecycle"].get(lifecycle, 0) + n
            counts["health"][health] = counts["health"].get(health, 0) + n
        return counts

    return await cache.get("fleet", await repository.inventory_generation(session), count)


async def live_server_ids_matching(
    session: AsyncSession, q: str, limit: int, loc: tuple[str | int, ...]
) -> list[uuid.UUID]:
    """Every live server the search language matches, up to `limit`."""
    condition = await filter_condition(session, ServerFilters(q=q), loc)
    return await repository.server_ids_where(session, condition, limit)


async def live_ids_by_name(session: AsyncSession, names: Sequence[str]) -> dict[str, uuid.UUID]:
    return await repository.live_ids_by_name(session, list(names))

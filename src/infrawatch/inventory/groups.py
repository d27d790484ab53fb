"""Groups: static (explicit members) and dynamic (a search query)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.counts import CountCache
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.core.pagination import Page
from infrawatch.inventory import repository, search, search_sql
from infrawatch.inventory.models import Group
from infrawatch.inventory.schemas import GroupCreate, GroupOut, GroupUpdate, ServerOut
from infrawatch.inventory.service import ServerFilters, list_servers

FIELDS = ("name", "description", "query")


async def _check_query(session: AsyncSession, name: str, query: str) -> None:
    """Parse and compile now, with this group on the trail, so a syntax
    error or a group that contains itself is refused when saved."""
    try:
        await search_sql.compile_query(session, query, trail=(name,))
    except (search.SearchError, search_sql.GroupQueryError) as exc:
        raise InvalidInput(str(exc), loc=("body", "query"), error_type="query_syntax") from exc


async def _out(
    session: AsyncSession, group: Group, counts: dict[uuid.UUID, int] | None = None
) -> GroupOut:
    if group.query is None:
        count = (counts or await repository.static_member_counts(session)).get(group.id, 0)
    else:
        condition = await search_sql.compile_query(session, group.query, trail=(group.name,))
        count = await repository.count_servers(session, condition & repository.live_or_all(False))
    return GroupOut(
        id=group.id,
        name=group.name,
        description=group.description,
        query=group.query,
        dynamic=group.query is not None,
        member_count=count,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


async def list_groups(session: AsyncSession) -> list[GroupOut]:
    counts = await repository.static_member_counts(session)
    return [await _out(session, g, counts) for g in await repository.list_groups(session)]


async def _require(session: AsyncSession, group_id: uuid.UUID) -> Group:
    group = await repository.get_group(session, group_id)
    if group is None:
        raise NotFound("no such group")
    return group


async def get_group(session: AsyncSession, group_id: uuid.UUID) -> Versioned[GroupOut]:
    group = await _require(session, group_id)
    return Versioned(await _out(session, group), group.version)


def _fields(group: Group) -> dict[str, Any]:
    return {name: getattr(group, name) for name in FIELDS}


async def create_group(
    session: AsyncSession, ctx: OperationContext, data: GroupCreate
) -> Versioned[GroupOut]:
    if await repository.group_by_name(session, data.name) is not None:
        raise Conflict(f"a group named {data.name!r} already exists")
    now = utcnow()
    group = Group(
        id=uuid.uuid4(),
        name=data.name,
        description=data.description,
        query=data.query,
        created_at=now,
        updated_at=now,
        version=1,
    )
    repository.add(session, group)
    await session.flush()
    # Checked once the group is in the (uncommitted) table, so a query that
    # reaches back to this group, directly or through others, is found.
    if data.query is not None:
        await _check_query(session, data.name, data.query)
    await audit.record(
        session, ctx, audit.Change("group.create", "group", group.id, None, _fields(group))
    )
    return Versioned(await _out(session, group), group.version)


async def update_group(
    session: AsyncSession,
    ctx: OperationContext,
    group_id: uuid.UUID,
    data: GroupUpdate,
    if_match: str | None,
) -> Versioned[GroupOut]:
    group = await _require(session, group_id)
    check_if_match(if_match, group.version)
    before = _fields(group)
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise InvalidInput("may be left out but not set to null", loc=("body", "name"))
    new_name = changes.get("name", group.name)
    if new_name != group.name and await repository.group_by_name(session, new_name) is not None:
        raise Conflict(f"a group named {new_name!r} already exists")
    # Turning a static group dynamic would silently drop its members.
    turning_dynamic = group.query is None and changes.get("query") is not None
    if turning_dynamic and (await repository.static_member_counts(session)).get(group.id):
        raise Conflict("this static group has members; remove them before giving it a query")
    for name, value in changes.items():
        setattr(group, name, value)
    if group.query is not None and {"name", "query"} & changes.keys():
        await session.flush()
        await _check_query(session, group.name, group.query)
    if _fields(group) != before:
        bump_version(group)
        await audit.record(
            session, ctx, audit.Change("group.update", "group", group.id, before, _fields(group))
        )
    await session.flush()
    return Versioned(await _out(session, group), group.version)


async def delete_group(session: AsyncSession, ctx: OperationContext, group_id: uuid.UUID) -> None:
    group = await _require(session, group_id)
    await audit.record(
        session, ctx, audit.Change("group.delete", "group", group.id, _fields(group), None)
    )
    await repository.delete_group(session, group)


async def members(
    session: AsyncSession,
    group_id: uuid.UUID,
    *,
    sort: str | None,
    cursor: str | None,
    limit: int,
    counts: CountCache | None = None,
) -> Page[ServerOut]:
    group = await _require(session, group_id)
    # A group is a saved search: its member list is the server list filtered by it.
    term = search.GroupMatch(group.name)
    filters = ServerFilters(terms=[term])
    return await list_servers(
        session, filters, sort=sort, cursor=cursor, limit=limit, counts=counts
    )

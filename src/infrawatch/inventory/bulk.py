"""Bulk actions over up to 10,000 servers: all-or-nothing, a handful of
statements per thousand servers, one request id on every audit record."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.db import stage_event
from infrawatch.core.errors import Conflict, InvalidInput
from infrawatch.core.events import Event
from infrawatch.core.validation import plain_message
from infrawatch.inventory import repository, service
from infrawatch.inventory.lifecycle import check_transition
from infrawatch.inventory.schemas import (
    BulkRequest,
    BulkResult,
    EmptyParams,
    GroupParams,
    RemoveTagsParams,
    SetLifecycleParams,
    TagsParams,
    UpdateParams,
)

# A bulk action decides on plain rows (repository.server_rows), not ORM objects.
ServerRow = Row[Any]
Changes = list[tuple[ServerRow, dict[str, Any], dict[str, Any]]]  # server, before, after


async def _targets(session: AsyncSession, request: BulkRequest, limit: int) -> list[ServerRow]:
    want_deleted = request.action == "restore"
    if request.ids is not None:
        servers = await repository.server_rows(session, sorted(set(request.ids)))
        missing = set(request.ids) - {s.id for s in servers}
        if missing:
            raise InvalidInput(
                f"no such server: {sorted(missing)[0]}"
                + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""),
                loc=("body", "ids"),
            )
    else:
        filters = service.ServerFilters(q=request.q, include_deleted=want_deleted)
        # Every match is wanted, not a page: the counting form reads each set once.
        condition = await service.filter_condition(
            session, filters, loc=("body", "q"), counting=True
        )
        ids = await repository.select_server_ids(session, condition, limit + 1)
        if len(ids) > limit:
            raise InvalidInput(
                f"the query matches more than {limit} servers; narrow it", loc=("body", "q")
            )
        servers = await repository.server_rows(session, ids)
    return [s for s in servers if (s.deleted_at is not None) == want_deleted]


def _params(model: type[BaseModel], raw: dict[str, Any]) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [
            {"loc": ["body", "params", *e["loc"]], "msg": plain_message(dict(e)), "type": e["type"]}
            for e in exc.errors()
        ]
        raise InvalidInput(str(errors[0]["msg"]), errors=errors) from exc


async def _set_lifecycle(
    session: AsyncSession, ctx: OperationContext, servers: Sequence[ServerRow], raw: dict[str, Any]
) -> Changes:
    target = _params(SetLifecycleParams, raw).lifecycle.value
    refused = []
    for server in servers:
        try:
            check_transition(server.lifecycle, target, server.name)
        except Conflict as exc:
            refused.append(exc.message)
    if refused:
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        raise Conflict(f"nothing changed: {refused[0]}{more}")
    changing = [s for s in servers if s.lifecycle != target]
    ids = [s.id for s in changing]
    await repository.bump_servers(session, ids, utcnow(), {"lifecycle": target})
    await repository.insert_lifecycle_transitions(
        session,
        [service.lifecycle_transition_row(ctx, s.id, s.lifecycle, target) for s in changing],
    )
    return [(s, {"lifecycle": s.lifecycle}, {"lifecycle": target}) for s in changing]


async def _add_tags(
    session: AsyncSession, ctx: OperationContext, servers: Sequence[ServerRow], raw: dict[str, Any]
) -> Changes:
    new_tags: dict[str, str] = _params(TagsParams, raw).tags
    current = await repository.tags_of(session, [s.id for s in servers], list(new_tags))
    changes: Changes = []
    for server in servers:
        have = current.get(server.id, {})
        differing = {k: v for k, v in new_tags.items() if have.get(k) != v}
        if differing:
            changes.append(
                (server, {"tags": {k: have.get(k) for k in differing}}, {"tags": differing})
            )
    ids = [s.id for s, _, _ in changes]
    await repository.delete_tags(session, ids, list(new_tags))
    await repository.insert_tags(
        session, [{"server_id": i, "key": k, "value": v} for i in ids for k, v in new_tags.items()]
    )
    await repository.bump_servers(session, ids, utcnow())
    return changes


async def _remove_tags(
    session: AsyncSession, ctx: OperationContext, servers: Sequence[ServerRow], raw: dict[str, Any]
) -> Changes:
    keys = _params(RemoveTagsParams, raw).keys
    current = await repository.tags_of(session, [s.id for s in servers], keys)
    changes: Changes = []
    for server in servers:
        present = {k: v for k, v in current.get(server.id, {}).items() if k in keys}
        if present:
            changes.append((server, {"tags": present}, {"tags": dict.fromkeys(present)}))
    ids = [s.id for s, _, _ in changes]
    await repository.delete_tags(session, ids, keys)
    await repository.bump_servers(session, ids, utcnow())
    return changes


async def _static_group(session: AsyncSession, raw: dict[str, Any]) -> tuple[str, uuid.UUID]:
    name = _params(GroupParams, raw).group
    group_id = (
        await service.resolve_static_groups(session, [name], loc=("body", "params", "group"))
    )[name]
    return name, group_id


async def _add_group(
    session: AsyncSession, ctx: OperationContext, servers: Sequence[ServerRow], raw: dict[str, Any]
) -> Changes:
    name, group_id = await _static_group(session, raw)
    members = await repository.static_member_ids(session, group_id, [s.id for s in servers])
    joining = [s for s in servers if s.id not in members]
    await repository.insert_memberships(
        session, [{"server_id": s.id, "group_id": group_id} for s in joining]
    )
    await repository.bump_servers(session, [s.id for s in joining], utcnow())
    return [(s, {}, {"group_added": name}) for s in joining]


async def _remove_group(
    session: AsyncSession, ctx: OperationContext, servers: Sequence[ServerRow], raw: dict[str, Any]
) -> Changes:
    name, group_id = await _static_group(session, raw)
    members = await repository.static_member_ids(session, group_id, [s.id for s in servers])
    leaving = [s for s in servers if s.id in members]
    await repository.remove_static_members(session, group_id, [s.id for s in leaving])
    await repository.bump_servers(session, [s.id for s in leaving], utcnow())
    return [(s, {"group_removed": name}, {}) for s in leaving]


async def _update(
    session: AsyncSession, ctx: OperationContext, servers: Sequence[ServerRow], raw: dict[str, Any]
) -> Changes:
    values = _params(UpdateParams, raw).model_dump(exclude_unset=True)
    if not values:
        raise InvalidInput("give at least one field to update", loc=("body", "params"))
    changes: Changes = []
    for server in servers:
        differing = [k for k, v in values.items() if getattr(server, k) != v]
        if differing:
            changes.append(
                (
                    server,
                    {k: getattr(server, k) for k in differing},
                    {k: values[k] for k in differing},
                )
            )
    await repository.bump_servers(session, [s.id for s, _, _ in changes], utcnow(), values)
    return changes


async def _delete(
    session: AsyncSession, ctx: OperationContext, servers: Sequence[ServerRow], raw: dict[str, Any]
) -> Changes:
    _params(EmptyParams, raw)
    now = utcnow()
    await repository.bump_servers(session, [s.id for s in servers], now, {"deleted_at": now})
    return [(s, {"deleted_at": None}, {"deleted_at": now}) for s in servers]


async def _restore(
    session: AsyncSession, ctx: OperationContext, servers: Sequence[ServerRow], raw: dict[str, Any]
) -> Changes:
    _params(EmptyParams, raw)
    names = [s.name for s in servers]
    clashes = sorted(await repository.live_names_taken(session, names))
    clashes += sorted({n for n in names if names.count(n) > 1} - set(clashes))
    if clashes:
        raise Conflict(
            f"nothing restored: these names are taken meanwhile: {', '.join(clashes[:10])}"
        )
    await repository.bump_servers(session, [s.id for s in servers], utcnow(), {"deleted_at": None})
    return [(s, {"deleted_at": s.deleted_at}, {"deleted_at": None}) for s in servers]


Action = Callable[
    [AsyncSession, OperationContext, Sequence[ServerRow], dict[str, Any]], Awaitable[Changes]
]
ACTIONS: dict[str, Action] = {
    "set_lifecycle": _set_lifecycle,
    "add_tags": _add_tags,
    "remove_tags": _remove_tags,
    "add_group": _add_group,
    "remove_group": _remove_group,
    "update": _update,
    "delete": _delete,
    "restore": _restore,
}
AUDIT_ACTION = {"delete": "server.delete", "restore": "server.restore"}


async def run_bulk(
    session: AsyncSession, ctx: OperationContext, request: BulkRequest, limit: int
) -> BulkResult:
    servers = await _targets(session, request, limit)
    changes = await ACTIONS[request.action](session, ctx, servers, request.params)
    action = AUDIT_ACTION.get(request.action, "server.update")
    await audit.record_many(
        session,
        ctx,
        [audit.Change(action, "server", s.id, before, after) for s, before, after in changes],
    )
    changed_ids = [s.id for s, _, _ in changes]
    await audit.record(
        session,
        ctx,
        audit.Change(
            f"server.bulk.{request.action}",
            "bulk",
            ctx.request_id,
            None,
            {
                "matched": len(servers),
                "changed": len(changed_ids),
                "params": request.params,
                "selector": {"q": request.q}
                if request.q is not None
                else {"ids": len(request.ids or [])},
            },
        ),
    )
    if changed_ids:
        stage_event(
            session,
            Event(
                "inventory.servers.bulk_changed",
                {
                    "action": request.action,
                    "count": len(changed_ids),
                    "request_id": ctx.request_id,
                    "ids": [str(i) for i in changed_ids[:1000]],
                },
            ),
        )
    return BulkResult(
        action=request.action,
        request_id=ctx.request_id,
        matched=len(servers),
        changed=len(changed_ids),
        changed_ids=changed_ids,
    )

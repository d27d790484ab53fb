"""Templates: defaults for new servers, and stamping out many at once."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.inventory import repository, service
from infrawatch.inventory.models import Template
from infrawatch.inventory.schemas import (
    InstantiateRequest,
    ServerOut,
    TemplateCreate,
    TemplateDefaults,
    TemplateOut,
    TemplateUpdate,
)

_NUMBER = re.compile(r"\{n(?::(0?)([1-9]))?\}")

# Domains above inventory add to what instantiating does, in the same
# transaction (monitoring creates the template's monitors for each new
# server). Registered by create_app: inventory never imports them.
InstantiateHook = Callable[
    [AsyncSession, OperationContext, uuid.UUID, list[ServerOut]], Awaitable[None]
]
_instantiate_hooks: dict[str, InstantiateHook] = {}


def on_instantiate(name: str, hook: InstantiateHook) -> None:
    """One hook per name: an app created again (tests do) replaces it."""
    _instantiate_hooks[name] = hook


def _out(template: Template) -> TemplateOut:
    return TemplateOut(
        id=template.id,
        name=template.name,
        description=template.description,
        defaults=TemplateDefaults.model_validate(template.defaults),
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


def _fields(template: Template) -> dict[str, Any]:
    return {
        "name": template.name,
        "description": template.description,
        "defaults": template.defaults,
    }


async def _require(session: AsyncSession, template_id: uuid.UUID) -> Template:
    template = await repository.get_template(session, template_id)
    if template is None:
        raise NotFound("no such template")
    return template


async def list_templates(session: AsyncSession) -> list[TemplateOut]:
    return [_out(t) for t in await repository.list_templates(session)]


async def get_template(session: AsyncSession, template_id: uuid.UUID) -> Versioned[TemplateOut]:
    template = await _require(session, template_id)
    return Versioned(_out(template), template.version)


async def create_template(
    session: AsyncSession, ctx: OperationContext, data: TemplateCreate
) -> Versioned[TemplateOut]:
    if await repository.template_by_name(session, data.name) is not None:
        raise Conflict(f"a template named {data.name!r} already exists")
    await service.resolve_static_groups(
        session, data.defaults.groups, loc=("body", "defaults", "groups")
    )
    now = utcnow()
    template = Template(
        id=uuid.uuid4(),
        name=data.name,
        description=data.description,
        defaults=data.defaults.model_dump(mode="json"),
        created_at=now,
        updated_at=now,
        version=1,
    )
    repository.add(session, template)
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change("template.create", "template", template.id, None, _fields(template)),
    )
    return Versioned(_out(template), template.version)


async def update_template(
    session: AsyncSession,
    ctx: OperationContext,
    template_id: uuid.UUID,
    data: TemplateUpdate,
    if_match: str | None,
) -> Versioned[TemplateOut]:
    template = await _require(session, template_id)
    check_if_match(if_match, template.version)
    before = _fields(template)
    changes = data.model_dump(exclude_unset=True)
    for required in ("name", "defaults"):
        if required in changes and changes[required] is None:
            raise InvalidInput("may be left out but not set to null", loc=("body", required))
    if "name" in changes and changes["name"] != template.name:
        if await repository.template_by_name(session, changes["name"]) is not None:
            raise Conflict(f"a template named {changes['name']!r} already exists")
        template.name = changes["name"]
    if "description" in changes:
        template.description = changes["description"]
    if data.defaults is not None:
        await service.resolve_static_groups(
            session, data.defaults.groups, loc=("body", "defaults", "groups")
        )
        template.defaults = data.defaults.model_dump(mode="json")
    if _fields(template) != before:
        bump_version(template)
        await audit.record(
            session,
            ctx,
            audit.Change("template.update", "template", template.id, before, _fields(template)),
        )
    await session.flush()
    return Versioned(_out(template), template.version)


async def delete_template(
    session: AsyncSession, ctx: OperationContext, template_id: uuid.UUID
) -> None:
    template = await _require(session, template_id)
    await audit.record(
        session,
        ctx,
        audit.Change("template.delete", "template", template.id, _fields(template), None),
    )
    await repository.delete_template(session, template)


def render_name(pattern: str, number: int) -> str:
    def substitute(match: re.Match[str]) -> str:
        width = int(match.group(2) or 0)
        return str(number).zfill(width)

    return _NUMBER.sub(substitute, pattern)


async def instantiate(
    session: AsyncSession,
    ctx: OperationContext,
    template_id: uuid.UUID,
    request: InstantiateRequest,
) -> list[ServerOut]:
    """All `count` servers in the caller's transaction, or none of them."""
    template = await _require(session, template_id)
    defaults = TemplateDefaults.model_validate(template.defaults).model_dump()
    overrides = request.overrides.model_dump(exclude_unset=True) if request.overrides else {}
    names = [render_name(request.name_pattern, request.start + i) for i in range(request.count)]
    too_long = [n for n in names if len(n) > 128]
    if too_long:
        raise InvalidInput(
            f"generated name {too_long[0]!r} is longer than 128 characters",
            loc=("body", "name_pattern"),
        )
    rows = [{**defaults, **overrides, "name": name} for name in names]
    ids = await service.create_servers(session, ctx, rows)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "template.instantiate",
            "template",
            template.id,
            None,
            {"count": len(ids), "first": names[0], "last": names[-1]},
        ),
    )
    position = {server_id: n for n, server_id in enumerate(ids)}
    servers = sorted(await repository.get_servers(session, ids), key=lambda s: position[s.id])
    created = await service.present(session, servers)
    await apply_hooks(session, ctx, template.id, created)
    return created


async def template_by_ref(session: AsyncSession, ref: str) -> TemplateOut:
    """A template by id or by name (what a create-server request names)."""
    try:
        return _out(await _require(session, uuid.UUID(ref)))
    except (ValueError, NotFound):
        pass
    for template in await list_templates(session):
        if template.name == ref:
            return template
    raise NotFound(f"no template {ref!r}")


def server_defaults(template: TemplateOut) -> dict[str, Any]:
    """A template's fields for a server made some other way than by
    instantiating (the create-server flow): without the lifecycle, which
    that flow drives itself."""
    defaults = template.defaults.model_dump(exclude_unset=True)
    defaults.pop("lifecycle", None)
    return defaults


async def apply_hooks(
    session: AsyncSession, ctx: OperationContext, template_id: uuid.UUID, servers: list[ServerOut]
) -> None:
    """What instantiating adds (the template's monitors), for servers that
    exist already: the create-server flow calls it once a server is active."""
    for hook in _instantiate_hooks.values():
        await hook(session, ctx, template_id, servers)

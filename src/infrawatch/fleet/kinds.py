"""What config as code manages, kind by kind: how a kind's objects read in
the document's form (names for references, no secrets), and how one is
created, changed and deleted, through the domains' own services (so every
check, every audit record and every event is the one the API gives).

The document's form of an object is its create schema's fields with ids
replaced by names: `server_id` → `server`, `channel_ids` → `channels`,
`monitor_ids` → `monitors`, `server_ids` → `servers`."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import time
from typing import Annotated, Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import channels, rules, windows
from infrawatch.alerting.schedule import weekdays_to_cron
from infrawatch.alerting.schemas import (
    ChannelCreate,
    ChannelUpdate,
    RuleCreate,
    RuleUpdate,
    WindowCreate,
    WindowUpdate,
)
from infrawatch.core.concurrency import Versioned
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring
from infrawatch.core.errors import InvalidInput
from infrawatch.inventory import groups
from infrawatch.inventory import service as inventory
from infrawatch.inventory import templates as inventory_templates
from infrawatch.inventory.schemas import (
    GroupCreate,
    GroupUpdate,
    ServerCreate,
    ServerUpdate,
    TemplateCreate,
    TemplateUpdate,
)
from infrawatch.monitoring import service as monitoring
from infrawatch.monitoring import templates as monitor_templates
from infrawatch.monitoring.schemas import MonitorCreate, MonitorUpdate, validate_monitor
from infrawatch.monitoring.target_secrets import MASK, split_password
from infrawatch.statuspage import pages
from infrawatch.statuspage.schemas import PageCreate, PageUpdate

PAGE = 500


@dataclass(frozen=True)
class Ref:
    """A document field naming objects of another kind, for a schema field
    holding their ids."""

    field: str  # in the create schema
    kind: str  # the document key of the kind it names
    many: bool


@dataclass
class Existing:
    id: uuid.UUID
    fields: dict[str, Any]  # the create schema's fields, ids as stored


@dataclass
class Tools:
    """What a kind's operations need besides the session."""

    keyring: Keyring
    base_url: str
    # Stored secrets are the admins' (as through the API): a reference to
    # one from anyone else would let them send it out in a channel URL.
    may_read_secrets: bool = True

    @property
    def presenter(self) -> monitoring.Presenter:
        return monitoring.Presenter(keyring=self.keyring, base_url=self.base_url)


Loader = Callable[[AsyncSession, Tools], Awaitable[dict[str, Existing]]]
Creator = Callable[[AsyncSession, OperationContext, Tools, dict[str, Any]], Awaitable[uuid.UUID]]
Updater = Callable[
    [AsyncSession, OperationContext, Tools, uuid.UUID, dict[str, Any]], Awaitable[None]
]
Deleter = Callable[[AsyncSession, OperationContext, Tools, uuid.UUID], Awaitable[None]]
SecretReader = Callable[[AsyncSession, Tools, uuid.UUID, str], Awaitable[str | None]]
# (kind, name, where in the item) → its id, or a 422 saying what is missing.
Resolver = Callable[[str, Any, tuple[str | int, ...]], uuid.UUID]
Namer = Callable[[str, Any], str | None]  # (kind, id) → its name, None if not live


@dataclass(frozen=True)
class Kind:
    key: str  # the document's key: "servers"
    label: str  # one of them: "server"
    schema: type[BaseModel]  # what creating one takes
    load: Loader
    create: Creator
    update: Updater
    delete: Deleter
    refs: dict[str, Ref] = field(default_factory=dict)
    # Fields only ever given by reference (${secret:…}), left out of exports;
    # left out of a document, they keep what is stored.
    secrets: tuple[str, ...] = ()
    read_secret: SecretReader | None = None
    # Fields set at creation for good: a document changing one is refused.
    fixed: tuple[str, ...] = ()
    # What the service makes of validated fields (defaults it derives), so
    # a document that leaves them out compares equal to what is stored.
    normalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # The password stored apart from the target (monitors), to compare with
    # one a document gives by reference.
    target_password: Callable[[AsyncSession, Tools, uuid.UUID], Awaitable[str | None]] | None = None
    # Fields the service derives when they are left out (a monitor's
    # timeout from its interval): an export leaves them out when they are
    # what would be derived.
    derived: tuple[str, ...] = ()
    key_field: str = "name"  # what names one in the document (a page: its slug)
    # References deeper in the item than a top-level field (a page's
    # sections list monitors): names to ids, and back.
    nested_ids: Callable[[dict[str, Any], Resolver], dict[str, Any]] | None = None
    nested_names: Callable[[dict[str, Any], Namer], dict[str, Any]] | None = None
    needs: tuple[str, ...] = ()  # kinds those nested references name


def _fields(schema: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in schema.model_fields if name in values}


# Groups, rules, windows and status pages: services of one shape (list,
# create → out, update with an If-Match, delete), so one set of adapters
# serves them all.


def _simple(
    listed: Callable[[AsyncSession], Awaitable[list[Any]]],
    schema: type[BaseModel],
    update_schema: type[BaseModel],
    create: Callable[[AsyncSession, OperationContext, Any], Awaitable[Any]],
    update: Callable[[AsyncSession, OperationContext, uuid.UUID, Any, None], Awaitable[Any]],
    delete: Callable[[AsyncSession, OperationContext, uuid.UUID], Awaitable[None]],
    key: str = "name",
) -> tuple[Loader, Creator, Updater, Deleter]:
    async def load(session: AsyncSession, tools: Tools) -> dict[str, Existing]:
        return {
            getattr(out, key): Existing(out.id, _fields(schema, out.model_dump(mode="json")))
            for out in await listed(session)
        }

    async def make(
        session: AsyncSession, ctx: OperationContext, tools: Tools, values: dict[str, Any]
    ) -> uuid.UUID:
        made = await create(session, ctx, schema(**values))
        out = made.value if isinstance(made, Versioned) else made
        made_id: uuid.UUID = out.id
        return made_id

    async def change(
        session: AsyncSession,
        ctx: OperationContext,
        tools: Tools,
        object_id: uuid.UUID,
        changes: dict[str, Any],
    ) -> None:
        await update(session, ctx, object_id, update_schema(**changes), None)

    async def remove(
        session: AsyncSession, ctx: OperationContext, tools: Tools, object_id: uuid.UUID
    ) -> None:
        await delete(session, ctx, object_id)

    return load, make, change, remove


# --- servers --------------------------------------------------------------------------


async def _load_servers(session: AsyncSession, tools: Tools) -> dict[str, Existing]:
    dynamic = {g.name for g in await groups.list_groups(session) if g.dynamic}
    found: dict[str, Existing] = {}
    cursor = None
    while True:
        page = await inventory.list_servers(
            session, inventory.ServerFilters(), sort="name", cursor=cursor, limit=PAGE
        )
        for server in page.items:
            values = _fields(ServerCreate, server.model_dump(mode="json"))
            # Membership of a dynamic group follows from its query: not a setting.
            values["groups"] = [g for g in values["groups"] if g not in dynamic]
            found[server.name] = Existing(server.id, values)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def _create_server(
    session: AsyncSession, ctx: OperationContext, tools: Tools, values: dict[str, Any]
) -> uuid.UUID:
    data = ServerCreate(**values).model_dump()
    return (await inventory.create_server(session, ctx, data)).value.id


async def _update_server(
    session: AsyncSession,
    ctx: OperationContext,
    tools: Tools,
    server_id: uuid.UUID,
    changes: dict[str, Any],
) -> None:
    data = ServerUpdate(**changes).model_dump(exclude_unset=True)
    await inventory.update_server(session, ctx, server_id, data)


async def _delete_server(
    session: AsyncSession, ctx: OperationContext, tools: Tools, server_id: uuid.UUID
) -> None:
    await inventory.delete_server(session, ctx, server_id, purge=False)


# --- server templates -----------------------------------------------------------------


class TemplateDocument(TemplateCreate):
    """A template with the monitors it stamps out for each server (names
    with {server}, targets with {hostname} and {ip})."""

    monitors: Annotated[list[dict[str, Any]], Field(max_length=50)] = Field(default_factory=list)


async def _load_templates(session: AsyncSession, tools: Tools) -> dict[str, Existing]:
    found = {}
    for template in await inventory_templates.list_templates(session):
        values = _fields(TemplateCreate, template.model_dump(mode="json"))
        values["monitors"] = await monitor_templates.get_template_monitors(session, template.id)
        found[template.name] = Existing(template.id, values)
    return found


def _check_template_targets(values: dict[str, Any]) -> dict[str, Any]:
    for index, spec in enumerate(values.get("monitors") or []):
        _, password = split_password(str(spec.get("target", "")))
        if password is not None and password != MASK:
            raise InvalidInput(
                "a template monitor's password is not written in a document: set it with "
                "PUT /api/v1/templates/{id}/monitors; a document keeps it with ***",
                loc=("monitors", index, "target"),
            )
    return values


async def _create_template(
    session: AsyncSession, ctx: OperationContext, tools: Tools, values: dict[str, Any]
) -> uuid.UUID:
    monitors = values.get("monitors") or []
    data = TemplateCreate(**{k: v for k, v in values.items() if k != "monitors"})
    template_id = (await inventory_templates.create_template(session, ctx, data)).value.id
    if monitors:
        await monitor_templates.set_template_monitors(session, template_id, monitors, tools.keyring)
    return template_id


async def _update_template(
    session: AsyncSession,
    ctx: OperationContext,
    tools: Tools,
    template_id: uuid.UUID,
    changes: dict[str, Any],
) -> None:
    rest = {k: v for k, v in changes.items() if k != "monitors"}
    if rest:
        await inventory_templates.update_template(
            session, ctx, template_id, TemplateUpdate(**rest), None
        )
    if "monitors" in changes:
        await monitor_templates.set_template_monitors(
            session, template_id, changes["monitors"] or [], tools.keyring
        )


async def _delete_template(
    session: AsyncSession, ctx: OperationContext, tools: Tools, template_id: uuid.UUID
) -> None:
    await inventory_templates.delete_template(session, ctx, template_id)


# --- monitors -------------------------------------------------------------------------


async def _load_monitors(session: AsyncSession, tools: Tools) -> dict[str, Existing]:
    found: dict[str, Existing] = {}
    cursor = None
    while True:
        page = await monitoring.list_monitors(
            session, tools.presenter, filters={}, sort="name", cursor=cursor, limit=PAGE
        )
        for monitor in page.items:
            found[monitor.name] = Existing(
                monitor.id, _fields(MonitorCreate, monitor.model_dump(mode="json"))
            )
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def _create_monitor(
    session: AsyncSession, ctx: OperationContext, tools: Tools, values: dict[str, Any]
) -> uuid.UUID:
    created = await monitoring.create_monitor(
        session, ctx, MonitorCreate(**values), tools.presenter
    )
    return created.value.id


async def _update_monitor(
    session: AsyncSession,
    ctx: OperationContext,
    tools: Tools,
    monitor_id: uuid.UUID,
    changes: dict[str, Any],
) -> None:
    changes = {k: v for k, v in changes.items() if k != "type"}
    await monitoring.update_monitor(
        session, ctx, monitor_id, MonitorUpdate(**changes), None, tools.presenter
    )


async def _delete_monitor(
    session: AsyncSession, ctx: OperationContext, tools: Tools, monitor_id: uuid.UUID
) -> None:
    await monitoring.delete_monitor(session, ctx, monitor_id)


def _normal_monitor(values: dict[str, Any]) -> dict[str, Any]:
    target, settings = validate_monitor(
        values["type"], values["target"], values["settings"], values["conditions"]
    )
    timeout, retry = monitoring.effective_timing(
        values["interval_seconds"], values["timeout_seconds"], values["retry_interval_seconds"]
    )
    return values | {
        # As stored: the password apart (compared on its own), *** in its place.
        "target": split_password(target)[0],
        "settings": settings,
        "timeout_seconds": timeout,
        "retry_interval_seconds": retry,
    }


async def _monitor_password(
    session: AsyncSession, tools: Tools, monitor_id: uuid.UUID
) -> str | None:
    return monitoring.target_password(await monitoring.require(session, monitor_id), tools.keyring)


# --- channels -------------------------------------------------------------------------


async def _load_channels(session: AsyncSession, tools: Tools) -> dict[str, Existing]:
    return {
        c.name: Existing(c.id, {"name": c.name, "kind": c.kind, "enabled": c.enabled})
        for c in await channels.list_channels(session)
    }


async def _channel_secret(
    session: AsyncSession, tools: Tools, channel_id: uuid.UUID, name: str
) -> str | None:
    target = channels.channel_target(await channels.get_channel(session, channel_id), tools.keyring)
    return target.url if name == "url" else target.secret


async def _create_channel(
    session: AsyncSession, ctx: OperationContext, tools: Tools, values: dict[str, Any]
) -> uuid.UUID:
    return (await channels.create_channel(session, ctx, ChannelCreate(**values), tools.keyring)).id


async def _update_channel(
    session: AsyncSession,
    ctx: OperationContext,
    tools: Tools,
    channel_id: uuid.UUID,
    changes: dict[str, Any],
) -> None:
    changes = {k: v for k, v in changes.items() if k != "kind"}
    await channels.update_channel(session, ctx, channel_id, ChannelUpdate(**changes), tools.keyring)


async def _delete_channel(
    session: AsyncSession, ctx: OperationContext, tools: Tools, channel_id: uuid.UUID
) -> None:
    await channels.delete_channel(session, ctx, channel_id)


# --- maintenance windows --------------------------------------------------------------


def _normal_window(values: dict[str, Any]) -> dict[str, Any]:
    """Weekdays and a start time are stored as the cron expression they make."""
    if values.get("weekdays") and values.get("start_time"):
        start = time.fromisoformat(values["start_time"])
        cron = weekdays_to_cron(values["weekdays"], start)
        return values | {"cron": cron, "weekdays": None, "start_time": None}
    return values


# --- status pages ---------------------------------------------------------------------


def _section_monitors(values: dict[str, Any]) -> list[tuple[int, int, dict[str, Any]]]:
    found = []
    sections = values.get("sections")
    for i, section in enumerate(sections if isinstance(sections, list) else []):
        listed = section.get("monitors") if isinstance(section, dict) else None
        for j, entry in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(entry, dict):
                found.append((i, j, entry))
    return found


def _page_ids(values: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    """`monitor: NAME` in each section's entries made `monitor_id`."""
    converted = copy.deepcopy(values)
    for i, j, entry in _section_monitors(converted):
        loc: tuple[str | int, ...] = ("sections", i, "monitors", j)
        if "monitor_id" in entry:
            raise InvalidInput(
                "a document names what it refers to: write monitor (by name), not monitor_id",
                loc=(*loc, "monitor_id"),
            )
        if "monitor" in entry:
            entry["monitor_id"] = resolve("monitors", entry.pop("monitor"), (*loc, "monitor"))
    return converted


def _page_names(values: dict[str, Any], name_of: Namer) -> dict[str, Any]:
    converted = copy.deepcopy(values)
    for _, _, entry in _section_monitors(converted):
        entry["monitor"] = name_of("monitors", entry.pop("monitor_id", None))
    # An entry whose monitor is gone has no name to write: left out.
    for section in converted.get("sections") or []:
        section["monitors"] = [e for e in section.get("monitors", []) if e["monitor"] is not None]
    return converted


# In the order they are created: what a kind names exists before it.
KINDS: tuple[Kind, ...] = (
    Kind(
        "groups",
        "group",
        GroupCreate,
        *_simple(
            groups.list_groups,
            GroupCreate,
            GroupUpdate,
            groups.create_group,
            groups.update_group,
            groups.delete_group,
        ),
    ),
    Kind(
        "templates",
        "template",
        TemplateDocument,
        _load_templates,
        _create_template,
        _update_template,
        _delete_template,
        normalize=_check_template_targets,
    ),
    Kind(
        "servers",
        "server",
        ServerCreate,
        _load_servers,
        _create_server,
        _update_server,
        _delete_server,
    ),
    Kind(
        "monitors",
        "monitor",
        MonitorCreate,
        _load_monitors,
        _create_monitor,
        _update_monitor,
        _delete_monitor,
        refs={"server": Ref("server_id", "servers", many=False)},
        fixed=("type",),
        normalize=_normal_monitor,
        target_password=_monitor_password,
        derived=("timeout_seconds", "retry_interval_seconds", "settings"),
    ),
    Kind(
        "channels",
        "channel",
        ChannelCreate,
        _load_channels,
        _create_channel,
        _update_channel,
        _delete_channel,
        secrets=("url", "secret"),
        read_secret=_channel_secret,
        fixed=("kind",),
    ),
    Kind(
        "rules",
        "rule",
        RuleCreate,
        *_simple(
            rules.list_rules,
            RuleCreate,
            RuleUpdate,
            rules.create_rule,
            rules.update_rule,
            rules.delete_rule,
        ),
        refs={
            "channels": Ref("channel_ids", "channels", many=True),
            "monitors": Ref("monitor_ids", "monitors", many=True),
            "servers": Ref("server_ids", "servers", many=True),
        },
    ),
    Kind(
        "windows",
        "maintenance window",
        WindowCreate,
        *_simple(
            windows.list_windows,
            WindowCreate,
            WindowUpdate,
            windows.create_window,
            windows.update_window,
            windows.delete_window,
        ),
        refs={
            "monitors": Ref("monitor_ids", "monitors", many=True),
            "servers": Ref("server_ids", "servers", many=True),
        },
        normalize=_normal_window,
    ),
    Kind(
        "status_pages",
        "status page",
        PageCreate,
        *_simple(
            pages.list_pages,
            PageCreate,
            PageUpdate,
            pages.create_page,
            pages.update_page,
            pages.delete_page,
            key="slug",
        ),
        key_field="slug",
        derived=("published", "refresh_seconds"),
        nested_ids=_page_ids,
        nested_names=_page_names,
        needs=("monitors",),
    ),
)
BY_KEY = {kind.key: kind for kind in KINDS}

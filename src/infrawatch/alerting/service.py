"""Channels, rules, maintenance windows and incidents: the parts people edit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository
from infrawatch.alerting.channels import (
    DeliveryError,
    Message,
    Target,
    apprise_supports,
    send,
    url_hint,
)
from infrawatch.alerting.models import (
    AlertRule,
    Incident,
    IncidentEvent,
    MaintenanceWindow,
    NotificationChannel,
)
from infrawatch.alerting.schedule import check_cron, is_active, next_start, weekdays_to_cron
from infrawatch.alerting.schemas import (
    ChannelCreate,
    ChannelOut,
    ChannelTestResult,
    ChannelUpdate,
    IncidentEventOut,
    IncidentOut,
    RuleCreate,
    RuleOut,
    RuleUpdate,
    WindowCreate,
    WindowOut,
    WindowUpdate,
)
from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, apply_changes, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.core.pagination import Page, decode_cursor, encode_cursor
from infrawatch.core.validation import plain_message

# --- channels ----------------------------------------------------------------------------


def _url_ref(channel_id: uuid.UUID) -> SecretRef:
    return SecretRef("notification_channels", "url_encrypted", str(channel_id))


def _secret_ref(channel_id: uuid.UUID) -> SecretRef:
    return SecretRef("notification_channels", "secret_encrypted", str(channel_id))


def channel_target(channel: NotificationChannel, keyring: Keyring) -> Target:
    secret = None
    if channel.secret_encrypted is not None:
        secret = keyring.decrypt(channel.secret_encrypted, _secret_ref(channel.id))
    return Target(
        channel.kind, keyring.decrypt(channel.url_encrypted, _url_ref(channel.id)), secret
    )


def channel_out(channel: NotificationChannel) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        kind=channel.kind,
        url_hint=channel.url_hint,
        has_secret=channel.secret_encrypted is not None,
        enabled=channel.enabled,
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _check_url(kind: str, url: str) -> None:
    if kind == "webhook":
        if not url.startswith(("http://", "https://")):
            raise InvalidInput("a webhook URL starts with http:// or https://", loc=("body", "url"))
    elif not apprise_supports(url):
        raise InvalidInput(
            "Apprise does not recognise this URL; see the Apprise wiki for the formats",
            loc=("body", "url"),
        )


def _audit_fields(channel: NotificationChannel) -> dict[str, Any]:
    # Never the URL or the secret: only that they changed.
    return {
        "name": channel.name,
        "kind": channel.kind,
        "url_hint": channel.url_hint,
        "enabled": channel.enabled,
    }


async def _require(session: AsyncSession, model: Any, row_id: uuid.UUID, what: str) -> Any:
    row = await repository.get(session, model, row_id)
    if row is None:
        raise NotFound(f"no such {what}")
    return row


async def _name_free(session: AsyncSession, model: Any, name: str, what: str) -> None:
    if await repository.by_name(session, model, name) is not None:
        raise Conflict(f"a {what} named {name!r} already exists")


async def list_channels(session: AsyncSession) -> list[ChannelOut]:
    return [channel_out(c) for c in await repository.all_of(session, NotificationChannel)]


async def get_channel(session: AsyncSession, channel_id: uuid.UUID) -> NotificationChannel:
    channel: NotificationChannel = await _require(
        session, NotificationChannel, channel_id, "channel"
    )
    return channel


async def create_channel(
    session: AsyncSession, ctx: OperationContext, data: ChannelCreate, keyring: Keyring
) -> ChannelOut:
    _check_url(data.kind, data.url)
    if data.secret is not None and data.kind != "webhook":
        raise InvalidInput("only webhook channels have a signing secret", loc=("body", "secret"))
    await _name_free(session, NotificationChannel, data.name, "channel")
    now = utcnow()
    channel = NotificationChannel(
        id=uuid.uuid4(),
        name=data.name,
        kind=data.kind,
        url_hint=url_hint(data.url),
        enabled=data.enabled,
        created_at=now,
        updated_at=now,
        version=1,
    )
    channel.url_encrypted = keyring.encrypt(data.url, _url_ref(channel.id))
    if data.secret is not None:
        channel.secret_encrypted = keyring.encrypt(
            data.secret.get_secret_value(), _secret_ref(channel.id)
        )
    repository.add(session, channel)
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "channel.create", "notification_channel", channel.id, None, _audit_fields(channel)
        ),
    )
    return channel_out(channel)


async def update_channel(
    session: AsyncSession,
    ctx: OperationContext,
    channel_id: uuid.UUID,
    data: ChannelUpdate,
    keyring: Keyring,
    if_match: str | None = None,
) -> Versioned[ChannelOut]:
    channel = await get_channel(session, channel_id)
    check_if_match(if_match, channel.version)
    before = _audit_fields(channel)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("name") is None and "name" in changes:
        raise InvalidInput("name cannot be null", loc=("body", "name"))
    if changes.get("name") and changes["name"] != channel.name:
        await _name_free(session, NotificationChannel, changes["name"], "channel")
        channel.name = changes["name"]
    if data.url is not None:
        _check_url(channel.kind, data.url)
        channel.url_encrypted = keyring.encrypt(data.url, _url_ref(channel.id))
        channel.url_hint = url_hint(data.url)
    if data.secret is not None:
        if channel.kind != "webhook":
            raise InvalidInput(
                "only webhook channels have a signing secret", loc=("body", "secret")
            )
        channel.secret_encrypted = keyring.encrypt(
            data.secret.get_secret_value(), _secret_ref(channel.id)
        )
    if data.enabled is not None:
        channel.enabled = data.enabled
    bump_version(channel)
    after = _audit_fields(channel)
    if data.url is not None:
        after["url"] = "(changed)"
    if data.secret is not None:
        after["secret"] = "(changed)"  # noqa: S105 (a marker, not a secret)
    await audit.record(
        session,
        ctx,
        audit.Change("channel.update", "notification_channel", channel.id, before, after),
    )
    return Versioned(channel_out(channel), channel.version)


async def delete_channel(
    session: AsyncSession, ctx: OperationContext, channel_id: uuid.UUID
) -> None:
    channel = await get_channel(session, channel_id)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "channel.delete", "notification_channel", channel.id, _audit_fields(channel), None
        ),
    )
    await repository.remove(session, channel)


async def test_channel(
    session: AsyncSession, ctx: OperationContext, channel_id: uuid.UUID, keyring: Keyring
) -> ChannelTestResult:
    channel = await get_channel(session, channel_id)
    message = Message(
        title="InfraWatch test notification",
        body=f"This channel works. Sent by {ctx.actor.username}.",
        payload={"event": "test", "sent_at": utcnow().isoformat()},
    )
    try:
        await send(channel_target(channel, keyring), message)
    except DeliveryError as exc:
        return ChannelTestResult(ok=False, error=str(exc))
    return ChannelTestResult(ok=True, error=None)


# --- rules -------------------------------------------------------------------------------


def rule_out(rule: AlertRule) -> RuleOut:
    return RuleOut(
        id=rule.id,
        name=rule.name,
        enabled=rule.enabled,
        events=rule.events,
        channel_ids=[uuid.UUID(c) for c in rule.channel_ids],
        reminder_minutes=rule.reminder_minutes,
        certificate_days=rule.certificate_days,
        monitor_ids=[uuid.UUID(m) for m in rule.monitor_ids],
        server_ids=[uuid.UUID(s) for s in rule.server_ids],
        tags=rule.tags,
        groups=rule.groups,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


def _rule_fields(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for key in ("channel_ids", "monitor_ids", "server_ids"):
        if out.get(key) is not None:
            out[key] = [str(v) for v in out[key]]
    return out


async def _check_channels(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    found = await repository.channels_by_ids(session, ids)
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"no such channels: {', '.join(missing)}", loc=("body", "channel_ids"))


async def list_rules(session: AsyncSession) -> list[RuleOut]:
    return [rule_out(r) for r in await repository.all_of(session, AlertRule)]


async def get_rule(session: AsyncSession, rule_id: uuid.UUID) -> AlertRule:
    rule: AlertRule = await _require(session, AlertRule, rule_id, "alert rule")
    return rule


async def create_rule(session: AsyncSession, ctx: OperationContext, data: RuleCreate) -> RuleOut:
    await _check_channels(session, data.channel_ids)
    await _name_free(session, AlertRule, data.name, "rule")
    now = utcnow()
    rule = AlertRule(
        id=uuid.uuid4(),
        created_at=now,
        updated_at=now,
        version=1,
        **_rule_fields(data.model_dump()),
    )
    repository.add(session, rule)
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "alert_rule.create", "alert_rule", rule.id, None, _rule_fields(data.model_dump())
        ),
    )
    return rule_out(rule)


async def update_rule(
    session: AsyncSession,
    ctx: OperationContext,
    rule_id: uuid.UUID,
    data: RuleUpdate,
    if_match: str | None,
) -> Versioned[RuleOut]:
    rule = await get_rule(session, rule_id)
    check_if_match(if_match, rule.version)
    changes = _rule_fields(data.model_dump(exclude_unset=True))
    for key in (
        "name",
        "enabled",
        "events",
        "channel_ids",
        "certificate_days",
        "monitor_ids",
        "server_ids",
        "tags",
        "groups",
    ):
        if key in changes and changes[key] is None:
            raise InvalidInput(f"{key} cannot be null", loc=("body", key))
    if data.channel_ids is not None:
        await _check_channels(session, data.channel_ids)
    if "name" in changes and changes["name"] != rule.name:
        await _name_free(session, AlertRule, changes["name"], "rule")
    before = apply_changes(rule, changes)
    await audit.record(
        session, ctx, audit.Change("alert_rule.update", "alert_rule", rule.id, before, changes)
    )
    return Versioned(rule_out(rule), rule.version)


async def delete_rule(session: AsyncSession, ctx: OperationContext, rule_id: uuid.UUID) -> None:
    rule = await get_rule(session, rule_id)
    await audit.record(
        session,
        ctx,
        audit.Change("alert_rule.delete", "alert_rule", rule.id, {"name": rule.name}, None),
    )
    await repository.remove(session, rule)


# --- maintenance windows -------------------------------------------------------------------


def window_out(window: MaintenanceWindow, now: datetime | None = None) -> WindowOut:
    now = now or utcnow()
    return WindowOut(
        id=window.id,
        name=window.name,
        description=window.description,
        starts_at=window.starts_at,
        ends_at=window.ends_at,
        cron=window.cron,
        duration_minutes=window.duration_minutes,
        timezone=window.timezone,
        monitor_ids=[uuid.UUID(m) for m in window.monitor_ids],
        server_ids=[uuid.UUID(s) for s in window.server_ids],
        tags=window.tags,
        groups=window.groups,
        active=is_active(window, now),
        next_start=next_start(window, now),
        created_at=window.created_at,
        updated_at=window.updated_at,
    )


async def list_windows(session: AsyncSession) -> list[WindowOut]:
    now = utcnow()
    return [window_out(w, now) for w in await repository.all_of(session, MaintenanceWindow)]


async def get_window(session: AsyncSession, window_id: uuid.UUID) -> MaintenanceWindow:
    window: MaintenanceWindow = await _require(
        session, MaintenanceWindow, window_id, "maintenance window"
    )
    return window


async def create_window(
    session: AsyncSession, ctx: OperationContext, data: WindowCreate
) -> WindowOut:
    cron = _window_cron(data)
    await _name_free(session, MaintenanceWindow, data.name, "maintenance window")
    now = utcnow()
    window = MaintenanceWindow(
        id=uuid.uuid4(),
        name=data.name,
        description=data.description,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        cron=cron,
        duration_minutes=data.duration_minutes if cron else None,
        timezone=data.timezone,
        monitor_ids=[str(m) for m in data.monitor_ids],
        server_ids=[str(s) for s in data.server_ids],
        tags=data.tags,
        groups=data.groups,
        created_at=now,
        updated_at=now,
        version=1,
    )
    repository.add(session, window)
    await session.flush()
    out = window_out(window, now)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "maintenance.create",
            "maintenance_window",
            window.id,
            None,
            out.model_dump(exclude={"active", "next_start", "created_at", "updated_at", "id"}),
        ),
    )
    return out


def _window_cron(data: WindowCreate) -> str | None:
    """The window's schedule as one cron expression (weekdays and a start
    time become one), checked."""
    cron = data.cron
    if data.weekdays is not None and data.start_time is not None:
        cron = weekdays_to_cron(data.weekdays, data.start_time)
    if cron is not None:
        try:
            check_cron(cron)
        except ValueError as exc:
            raise InvalidInput(str(exc), loc=("body", "cron")) from None
    return cron


async def update_window(
    session: AsyncSession,
    ctx: OperationContext,
    window_id: uuid.UUID,
    data: WindowUpdate,
    if_match: str | None,
) -> Versioned[WindowOut]:
    window = await get_window(session, window_id)
    check_if_match(if_match, window.version)
    before = window_out(window).model_dump(
        exclude={"active", "next_start", "created_at", "updated_at", "id"}
    )
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise InvalidInput("name cannot be null", loc=("body", "name"))
    merged = {key: before[key] for key in WindowCreate.model_fields if key in before}
    merged.update(changes)
    if "weekdays" in changes or "start_time" in changes:
        merged.pop("cron", None)  # the weekdays make the cron expression anew
    try:
        checked = WindowCreate.model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(
            plain_message(dict(error)), loc=("body", *[str(p) for p in error.get("loc", ())])
        ) from None
    cron = _window_cron(checked)
    if checked.name != window.name:
        await _name_free(session, MaintenanceWindow, checked.name, "maintenance window")
    window.name = checked.name
    window.description = checked.description
    window.starts_at, window.ends_at = checked.starts_at, checked.ends_at
    window.cron = cron
    window.duration_minutes = checked.duration_minutes if cron else None
    window.timezone = checked.timezone
    window.monitor_ids = [str(m) for m in checked.monitor_ids]
    window.server_ids = [str(s) for s in checked.server_ids]
    window.tags, window.groups = checked.tags, checked.groups
    bump_version(window)
    await session.flush()
    out = window_out(window)
    after = out.model_dump(exclude={"active", "next_start", "created_at", "updated_at", "id"})
    changed = [key for key in after if after[key] != before.get(key)]
    await audit.record(
        session,
        ctx,
        audit.Change(
            "maintenance.update",
            "maintenance_window",
            window.id,
            {key: before.get(key) for key in changed},
            {key: after[key] for key in changed},
        ),
    )
    return Versioned(out, window.version)


async def delete_window(session: AsyncSession, ctx: OperationContext, window_id: uuid.UUID) -> None:
    window = await get_window(session, window_id)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "maintenance.delete", "maintenance_window", window.id, {"name": window.name}, None
        ),
    )
    await repository.remove(session, window)


# --- incidents ------------------------------------------------------------------------------


def incident_out(incident: Incident, timeline: list[IncidentEvent]) -> IncidentOut:
    return IncidentOut(
        id=incident.id,
        monitor_id=incident.monitor_id,
        server_id=incident.server_id,
        title=incident.title,
        status=incident.status,
        opened_at=incident.opened_at,
        resolved_at=incident.resolved_at,
        acknowledged_at=incident.acknowledged_at,
        acknowledged_by=incident.acknowledged_by,
        held=incident.held,
        parent_id=incident.parent_id,
        timeline=[IncidentEventOut(at=e.at, kind=e.kind, message=e.message) for e in timeline],
    )


async def list_incidents(
    session: AsyncSession, status: str | None, cursor: str | None, limit: int
) -> Page[IncidentOut]:
    # Newest first, the id breaking ties: incidents opened in the same
    # instant (an outage of many monitors) are neither skipped nor repeated
    # at a page's edge.
    keys = repository.INCIDENT_ORDER
    after = decode_cursor(cursor, keys) if cursor else None
    rows = await repository.page_incidents(session, status, after, limit + 1)
    timelines = await repository.timelines(session, [i.id for i in rows[:limit]])
    last = rows[limit - 1] if len(rows) > limit else None
    next_cursor = encode_cursor(keys, [last.opened_at, last.id]) if last else None
    return Page(
        items=[incident_out(i, timelines[i.id]) for i in rows[:limit]],
        total=await repository.count_incidents(session, status),
        next_cursor=next_cursor,
    )


async def incidents_overlapping(
    session: AsyncSession, since: datetime, limit: int = 12
) -> list[Incident]:
    """For a timeline of the period from `since`: each incident's span."""
    return await repository.incidents_overlapping(session, since, limit)


async def get_incident(session: AsyncSession, incident_id: uuid.UUID) -> IncidentOut:
    incident: Incident = await _require(session, Incident, incident_id, "incident")
    return incident_out(incident, (await repository.timelines(session, [incident.id]))[incident.id])


async def acknowledge(
    session: AsyncSession, ctx: OperationContext, incident_id: uuid.UUID
) -> IncidentOut:
    incident: Incident = await _require(session, Incident, incident_id, "incident")
    if incident.status != "open":
        raise Conflict("the incident is resolved; there is nothing to acknowledge")
    if incident.acknowledged_at is None:
        now = utcnow()
        incident.acknowledged_at = now
        incident.acknowledged_by = ctx.actor.username
        repository.add(
            session,
            IncidentEvent(
                incident_id=incident.id,
                at=now,
                kind="acknowledged",
                message=f"acknowledged by {ctx.actor.username}; reminders stop",
            ),
        )
        await audit.record(
            session,
            ctx,
            audit.Change(
                "incident.ack",
                "incident",
                incident.id,
                None,
                {"acknowledged_by": ctx.actor.username},
            ),
        )
        await session.flush()
    return await get_incident(session, incident.id)

"""Alert rules: which monitors send which events to which channels."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository, rows
from infrawatch.alerting.models import (
    AlertRule,
)
from infrawatch.alerting.schemas import (
    RuleCreate,
    RuleOut,
    RuleUpdate,
)
from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, apply_changes, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import InvalidInput


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
    rule: AlertRule = await rows.require(session, AlertRule, rule_id, "alert rule")
    return rule


async def create_rule(session: AsyncSession, ctx: OperationContext, data: RuleCreate) -> RuleOut:
    await _check_channels(session, data.channel_ids)
    await rows.name_free(session, AlertRule, data.name, "rule")
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
        await rows.name_free(session, AlertRule, changes["name"], "rule")
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

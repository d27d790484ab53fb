"""Maintenance windows: their definitions, and which monitors one covers
right now (checks go on; the monitors show `maintenance` and their alerts
are held). When a window is on is `schedule.py`."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository, rows
from infrawatch.alerting.decide import Subject, selects
from infrawatch.alerting.models import (
    MaintenanceWindow,
)
from infrawatch.alerting.schedule import check_cron, is_active, next_start, weekdays_to_cron
from infrawatch.alerting.schemas import (
    WindowCreate,
    WindowOut,
    WindowUpdate,
)
from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import InvalidInput
from infrawatch.core.validation import plain_message
from infrawatch.inventory import service as inventory
from infrawatch.inventory.lifecycle import RESTING
from infrawatch.monitoring import service as monitoring


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
    window: MaintenanceWindow = await rows.require(
        session, MaintenanceWindow, window_id, "maintenance window"
    )
    return window


async def create_window(
    session: AsyncSession, ctx: OperationContext, data: WindowCreate
) -> WindowOut:
    cron = _window_cron(data)
    await rows.name_free(session, MaintenanceWindow, data.name, "maintenance window")
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
        await rows.name_free(session, MaintenanceWindow, checked.name, "maintenance window")
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


# --- applying them -----------------------------------------------------------------------


async def _resting_servers(session: AsyncSession) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for lifecycle in sorted(RESTING):
        found |= set(
            await inventory.live_server_ids_matching(
                session, f"lifecycle:{lifecycle.value}", 1_000_000, ("query", "q")
            )
        )
    return found


async def apply_windows(session: AsyncSession) -> set[uuid.UUID]:
    """Monitors covered by an active window, or whose server rests
    (inventory.lifecycle.RESTING: maintenance, decommissioning)."""
    now = utcnow()
    active = [w for w in await repository.windows(session) if is_active(w, now)]
    covered: set[uuid.UUID] = set()
    resting = await _resting_servers(session)
    if resting:
        pairs = await monitoring.monitor_server_pairs(session)
        covered |= {m for m, s in pairs if s in resting}
    if active:
        pairs = await monitoring.monitor_server_pairs(session)
        server_ids = sorted({s for _, s in pairs if s is not None})
        servers = {}
        for start in range(0, len(server_ids), 500):
            rows = await inventory.servers_by_ids(session, server_ids[start : start + 500])
            servers.update({s.id: s for s in rows})
        for monitor_id, server_id in pairs:
            subject = Subject(monitor_id, servers.get(server_id) if server_id else None)
            if any(selects(w, subject, empty_means_all=False) for w in active):
                covered.add(monitor_id)
    return await monitoring.apply_maintenance(session, covered)

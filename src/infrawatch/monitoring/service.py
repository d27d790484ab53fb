"""Monitors: create, change, pause, delete; history and uptime; push pings."""

from __future__ import annotations

import secrets
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef, hash_token
from infrawatch.core.db import stage_event
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.core.events import Event
from infrawatch.core.pagination import (
    Page,
    before_id,
    decode_cursor,
    encode_cursor,
    next_id_cursor,
    parse_sort,
)
from infrawatch.core.validation import has_default
from infrawatch.inventory import service as inventory
from infrawatch.monitoring import repository, target_secrets
from infrawatch.monitoring.health import refresh_server_health
from infrawatch.monitoring.models import SHARD_COUNT, Monitor
from infrawatch.monitoring.rollups import WINDOWS, Bucket, summarize
from infrawatch.monitoring.schemas import (
    LocationStateOut,
    MonitorCreate,
    MonitorFields,
    MonitorOut,
    MonitorUpdate,
    ProbeLocationOut,
    StoredResultOut,
    TransitionOut,
    UptimeWindow,
    validate_monitor,
)

CONFIG_FIELDS = (
    "name",
    "type",
    "target",
    "interval_seconds",
    "timeout_seconds",
    "retry_interval_seconds",
    "failure_threshold",
    "success_threshold",
    "degraded_threshold_ms",
    "conditions",
    "settings",
    "server_id",
    "critical",
    "paused",
    "locations",
    "quorum",
)
NOT_NULL = (
    "name",
    "target",
    "interval_seconds",
    "failure_threshold",
    "success_threshold",
    "conditions",
    "settings",
    "critical",
    "paused",
    "locations",
)
PUSH_PATH = "/api/v1/push/"


@dataclass(frozen=True)
class Presenter:
    """What turning a row into a response needs from outside the database."""

    keyring: Keyring
    base_url: str  # e.g. http://127.0.0.1:8000, for push URLs
    # Push tokens are credentials (whoever has one sets the monitor's state):
    # shown to those who may change monitors, not to viewers or read-only tokens.
    reveal_push_tokens: bool = False

    def push_token(self, monitor: Monitor) -> str | None:
        if monitor.push_token_encrypted is None or not self.reveal_push_tokens:
            return None
        ref = SecretRef("monitors", "push_token_encrypted", str(monitor.id))
        return self.keyring.decrypt(monitor.push_token_encrypted, ref)


def display_status(monitor: Monitor) -> str:
    if monitor.paused:
        return "paused"
    if monitor.in_maintenance:
        return "maintenance"
    return monitor.status


def present(
    monitor: Monitor, presenter: Presenter, last_checked: dict[uuid.UUID, Any]
) -> MonitorOut:
    settings = dict(monitor.settings or {})
    push_url = None
    token = presenter.push_token(monitor)
    if token is not None:
        settings["token"] = token
        push_url = presenter.base_url.rstrip("/") + PUSH_PATH + token
    return MonitorOut(
        id=monitor.id,
        name=monitor.name,
        type=monitor.type,
        target=monitor.target,
        interval_seconds=monitor.interval_seconds,
        timeout_seconds=monitor.timeout_seconds,
        retry_interval_seconds=monitor.retry_interval_seconds,
        failure_threshold=monitor.failure_threshold,
        success_threshold=monitor.success_threshold,
        degraded_threshold_ms=monitor.degraded_threshold_ms,
        conditions=list(monitor.conditions or []),
        settings=settings,
        push_url=push_url,
        server_id=monitor.server_id,
        critical=monitor.critical,
        paused=monitor.paused,
        locations=list(monitor.locations or []),
        quorum=monitor.quorum,
        status=display_status(monitor),
        status_changed_at=monitor.status_changed_at,
        last_checked_at=last_checked.get(monitor.id),
        cert_expires_at=monitor.cert_expires_at,
        created_at=monitor.created_at,
        updated_at=monitor.updated_at,
    )


async def present_one(session: AsyncSession, monitor: Monitor, presenter: Presenter) -> MonitorOut:
    return present(monitor, presenter, await repository.last_checked(session, [monitor.id]))


def _fields(monitor: Monitor) -> dict[str, Any]:
    return {name: getattr(monitor, name) for name in CONFIG_FIELDS}


async def require(session: AsyncSession, monitor_id: uuid.UUID) -> Monitor:
    monitor = await repository.get(session, monitor_id)
    if monitor is None:
        raise NotFound("no such monitor")
    return monitor


async def _check_server(
    session: AsyncSession, server_id: uuid.UUID | None, monitor_type: str
) -> None:
    if server_id is None and monitor_type == "agent":
        raise InvalidInput(
            "an agent monitor watches a server's agent: give server_id", loc=("body", "server_id")
        )
    if server_id is not None:
        try:
            await inventory.require_server(session, server_id, live=True)
        except NotFound:
            raise InvalidInput("no such server", loc=("body", "server_id")) from None


def _check_locations(monitor_type: str, locations: list[str], quorum: int | None) -> None:
    if locations and monitor_type in ("push", "agent"):
        raise InvalidInput(
            f"{monitor_type} monitors are judged from what they are sent, not checked from "
            "a location: leave locations empty",
            loc=("body", "locations"),
        )
    if len(set(locations)) != len(locations):
        raise InvalidInput("a location is listed twice", loc=("body", "locations"))
    if quorum is not None and quorum > len(locations):
        raise InvalidInput(
            f"quorum {quorum} is more than the {len(locations)} location(s) listed",
            loc=("body", "quorum"),
        )


def effective_timing(interval: int, timeout: float | None, retry: int | None) -> tuple[float, int]:
    """The timeout and retry interval a monitor gets when it gives none."""
    timeout = timeout if timeout is not None else float(min(10, interval))
    if timeout > interval:
        raise InvalidInput(
            f"timeout_seconds ({timeout:g}) must not exceed interval_seconds ({interval})",
            loc=("body", "timeout_seconds"),
        )
    return timeout, retry if retry is not None else min(interval, 20)


def _announce(session: AsyncSession, monitor: Monitor, action: str) -> None:
    # The engines reload this monitor (in this process at once, in others
    # through Redis or, without it, at their next reconcile).
    stage_event(
        session,
        Event("monitoring.monitor.changed", {"id": str(monitor.id), "action": action}),
    )


async def create_monitor(
    session: AsyncSession,
    ctx: OperationContext,
    data: MonitorCreate,
    presenter: Presenter,
) -> Versioned[MonitorOut]:
    target, settings = validate_monitor(data.type, data.target, data.settings, data.conditions)
    timeout, retry = effective_timing(
        data.interval_seconds, data.timeout_seconds, data.retry_interval_seconds
    )
    if await repository.by_name(session, data.name) is not None:
        raise Conflict(f"a monitor named {data.name!r} already exists")
    await _check_server(session, data.server_id, data.type)
    _check_locations(data.type, data.locations, data.quorum)
    now = utcnow()
    monitor = Monitor(
        id=uuid.uuid4(),
        name=data.name,
        type=data.type,
        target=target,
        interval_seconds=data.interval_seconds,
        timeout_seconds=timeout,
        retry_interval_seconds=retry,
        failure_threshold=data.failure_threshold,
        success_threshold=data.success_threshold,
        degraded_threshold_ms=data.degraded_threshold_ms,
        conditions=list(data.conditions),
        settings=settings,
        server_id=data.server_id,
        critical=data.critical,
        paused=data.paused,
        locations=list(data.locations),
        located=bool(data.locations),
        quorum=data.quorum,
        in_maintenance=False,
        status="pending",
        created_at=now,
        updated_at=now,
        version=1,
    )
    monitor.shard = zlib.crc32(monitor.id.bytes) % SHARD_COUNT
    _seal_target(monitor, target, presenter.keyring)
    if data.type == "push":
        _issue_push_token(monitor, presenter.keyring)
    repository.add(session, monitor)
    await session.flush()
    await audit.record(
        session, ctx, audit.Change("monitor.create", "monitor", monitor.id, None, _fields(monitor))
    )
    _announce(session, monitor, "create")
    return Versioned(await present_one(session, monitor, presenter), monitor.version)


def _target_ref(monitor: Monitor) -> SecretRef:
    return target_secrets.secret_ref(str(monitor.id))


def target_password(monitor: Monitor, keyring: Keyring) -> str | None:
    if monitor.target_secret_encrypted is None:
        return None
    return target_secrets.reveal(monitor.target_secret_encrypted, str(monitor.id), keyring)


def _seal_target(monitor: Monitor, target: str, keyring: Keyring) -> bool:
    """Keep the target with its password masked and the password encrypted.
    A target sent back with the mask (a form showing what it was given)
    keeps the stored password. True when the password changed."""
    masked, password = target_secrets.split_password(target)
    old = target_password(monitor, keyring)
    if password == target_secrets.MASK and old is not None:
        password = old
    monitor.target = masked
    if password == old:
        return False
    monitor.target_secret_encrypted = (
        keyring.encrypt(password, _target_ref(monitor)) if password else None
    )
    return True


async def has_clear_target_passwords(session: AsyncSession) -> bool:
    return bool(await repository.monitors_with_clear_passwords(session))


async def seal_target_passwords(session: AsyncSession, keyring: Keyring) -> int:
    """Move passwords that an older version stored in clear in `target` into
    the encrypted column. Run at start-up; a no-op once done."""
    sealed = 0
    for monitor in await repository.monitors_with_clear_passwords(session):
        if _seal_target(monitor, monitor.target, keyring):
            sealed += 1
    return sealed


def _issue_push_token(monitor: Monitor, keyring: Keyring) -> None:
    token = secrets.token_urlsafe(24)
    monitor.push_token_hash = hash_token(token)
    monitor.push_token_encrypted = keyring.encrypt(
        token, SecretRef("monitors", "push_token_encrypted", str(monitor.id))
    )


async def update_monitor(
    session: AsyncSession,
    ctx: OperationContext,
    monitor_id: uuid.UUID,
    data: MonitorUpdate,
    if_match: str | None,
    presenter: Presenter,
) -> Versioned[MonitorOut]:
    monitor = await require(session, monitor_id)
    check_if_match(if_match, monitor.version)
    changes = data.model_dump(exclude_unset=True)
    for name in NOT_NULL:
        if name in changes and changes[name] is None:
            # null means "not set": a field with a default goes back to it.
            if not has_default(MonitorFields, name):
                raise InvalidInput(f"{name} cannot be null", loc=("body", name))
            changes[name] = MonitorFields.model_fields[name].get_default(call_default_factory=True)
    before = _fields(monitor)
    merged = {**before, **changes}
    target, settings = validate_monitor(
        monitor.type, merged["target"], merged["settings"], merged["conditions"]
    )
    timeout, retry = effective_timing(
        merged["interval_seconds"], merged["timeout_seconds"], merged["retry_interval_seconds"]
    )
    if merged["name"] != monitor.name and await repository.by_name(session, merged["name"]):
        raise Conflict(f"a monitor named {merged['name']!r} already exists")
    if "server_id" in changes:
        await _check_server(session, changes["server_id"], monitor.type)
    _check_locations(monitor.type, merged["locations"], merged["quorum"])
    old_server = monitor.server_id
    for name, value in merged.items():
        setattr(monitor, name, value)
    monitor.located = bool(monitor.locations)
    # A location no longer listed has no say: its last word goes.
    await repository.drop_location_states(session, monitor.id, keep=monitor.locations)
    monitor.settings = settings
    password_changed = _seal_target(monitor, target, presenter.keyring)
    monitor.timeout_seconds, monitor.retry_interval_seconds = timeout, retry
    after = _fields(monitor)
    if password_changed:
        after["target_password"] = "changed"  # noqa: S105 (that it changed, not to what)
    if after != before:
        bump_version(monitor)
        await session.flush()
        await audit.record(
            session, ctx, audit.Change("monitor.update", "monitor", monitor.id, before, after)
        )
        await refresh_server_health(
            session, [s for s in (old_server, monitor.server_id) if s is not None]
        )
        _announce(session, monitor, "update")
    return Versioned(await present_one(session, monitor, presenter), monitor.version)


async def set_paused(
    session: AsyncSession,
    ctx: OperationContext,
    monitor_id: uuid.UUID,
    paused: bool,
    presenter: Presenter,
) -> Versioned[MonitorOut]:
    return await update_monitor(
        session, ctx, monitor_id, MonitorUpdate(paused=paused), None, presenter
    )


async def delete_monitor(
    session: AsyncSession, ctx: OperationContext, monitor_id: uuid.UUID
) -> None:
    monitor = await require(session, monitor_id)
    server_id = monitor.server_id
    await audit.record(
        session, ctx, audit.Change("monitor.delete", "monitor", monitor.id, _fields(monitor), None)
    )
    _announce(session, monitor, "delete")
    await repository.delete_monitor(session, monitor)
    await session.flush()
    if server_id is not None:
        await refresh_server_health(session, [server_id])


async def list_monitors(
    session: AsyncSession,
    presenter: Presenter,
    *,
    filters: dict[str, Any],
    sort: str | None,
    cursor: str | None,
    limit: int,
) -> Page[MonitorOut]:
    columns: dict[str, Any] = {
        "name": Monitor.name,
        "created_at": Monitor.created_at,
        "type": Monitor.type,
        "status": Monitor.status,
        "id": Monitor.id,
    }
    keys = parse_sort(sort, columns, default="name")
    after = decode_cursor(cursor, keys) if cursor else None
    conditions = repository.filter_conditions(filters)
    rows = await repository.page_monitors_keyed(session, conditions, keys, after, limit)
    total = await repository.count_monitors(session, conditions)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(keys, rows[-1][1])
    monitors = [m for m, _ in rows]
    checked = await repository.last_checked(session, [m.id for m in monitors])
    return Page(
        items=[present(m, presenter, checked) for m in monitors],
        total=total,
        next_cursor=next_cursor,
    )


# --- history -------------------------------------------------------------------------


async def results(
    session: AsyncSession, monitor_id: uuid.UUID, cursor: str | None, limit: int
) -> Page[StoredResultOut]:
    await require(session, monitor_id)
    rows = await repository.results_page(session, monitor_id, before_id(cursor), limit + 1)
    next_cursor = next_id_cursor(rows, limit)
    return Page(
        items=[
            StoredResultOut(
                id=r.id,
                checked_at=r.checked_at,
                ok=r.outcome != "down",
                outcome=r.outcome,
                state=r.state,
                latency_ms=r.latency_ms,
                status_code=r.status_code,
                error=r.error,
                details=r.details,
                location=r.location,
            )
            for r in rows[:limit]
        ],
        total=await repository.count_results(session, monitor_id),
        next_cursor=next_cursor,
    )


async def uptime(session: AsyncSession, monitor_id: uuid.UUID) -> dict[str, UptimeWindow]:
    await require(session, monitor_id)
    now = utcnow()
    windows: dict[str, UptimeWindow] = {}
    for label, (span, granularity) in WINDOWS.items():
        bucket = Bucket()
        for row in await repository.rollups(session, monitor_id, granularity, now - span):
            bucket.merge_row(row)
        windows[label] = UptimeWindow(**summarize(bucket))
    return windows


async def daily_uptime(
    session: AsyncSession, monitor_id: uuid.UUID, days: int
) -> list[dict[str, Any]]:
    """One entry per day (oldest first), for uptime bars."""
    since = utcnow() - timedelta(days=days)
    out = []
    for row in await repository.rollups(session, monitor_id, 86400, since):
        bucket = Bucket()
        bucket.merge_row(row)
        out.append({"date": row.bucket_start.date().isoformat(), **summarize(bucket)})
    return out


async def transitions(
    session: AsyncSession, monitor_id: uuid.UUID, limit: int
) -> list[TransitionOut]:
    await require(session, monitor_id)
    return [
        TransitionOut(
            id=t.id,
            from_state=t.from_state,
            to_state=t.to_state,
            at=t.at,
            reason=t.reason,
            kind=t.kind,
        )
        for t in await repository.transitions(session, monitor_id, limit)
    ]


# --- push ------------------------------------------------------------------------------


async def record_push(session: AsyncSession, token: str, kind: str, exit_code: int | None) -> None:
    """kind: success, start or fail. Unknown tokens are a 404 that says no
    more than that."""
    monitor = await repository.by_push_token_hash(session, hash_token(token))
    if monitor is None or monitor.type != "push":
        raise NotFound("no push monitor has this token")
    now = utcnow()
    if kind == "start":
        monitor.push_started_at = now
    else:
        monitor.push_last_at = now
        monitor.push_last_kind = kind
        monitor.push_last_exit_code = exit_code
    stage_event(session, Event("monitoring.push", {"id": str(monitor.id), "kind": kind}))


# --- for alerting ------------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionBrief:
    id: int
    monitor_id: uuid.UUID
    monitor_name: str
    monitor_type: str
    target: str
    server_id: uuid.UUID | None
    kind: str
    from_state: str
    to_state: str
    at: datetime
    reason: str | None
    in_maintenance: bool
    current_status: str


def _brief(
    monitor: Monitor,
    *,
    transition_id: int,
    kind: str,
    from_state: str,
    to_state: str,
    at: datetime,
    reason: str | None,
) -> TransitionBrief:
    return TransitionBrief(
        id=transition_id,
        monitor_id=monitor.id,
        monitor_name=monitor.name,
        monitor_type=monitor.type,
        target=monitor.target,
        server_id=monitor.server_id,
        kind=kind,
        from_state=from_state,
        to_state=to_state,
        at=at,
        reason=reason,
        in_maintenance=monitor.in_maintenance,
        current_status=monitor.status,
    )


async def claim_unalerted_transitions(
    session: AsyncSession, settle_seconds: float, limit: int = 200
) -> list[TransitionBrief]:
    """From the transitions table alone: the writer put the monitor's facts
    on each row when it wrote it."""
    cutoff = utcnow() - timedelta(seconds=settle_seconds)
    return [
        TransitionBrief(
            id=t.id,
            monitor_id=t.monitor_id,
            monitor_name=t.monitor_name or "",
            monitor_type=t.monitor_type or "",
            target=t.target or "",
            server_id=t.server_id,
            kind=t.kind,
            from_state=t.from_state,
            to_state=t.to_state,
            at=t.at,
            reason=t.reason,
            in_maintenance=bool(t.in_maintenance),
            current_status=t.to_state if t.kind == "state" else "",
        )
        for t in await repository.claim_unalerted(session, cutoff, limit)
    ]


async def has_unalerted_transitions(session: AsyncSession) -> bool:
    """A cheap read first, so an idle alerting loop takes no write lock."""
    return await repository.any_unalerted(session)


async def mark_alerted(session: AsyncSession, ids: list[int]) -> None:
    await repository.mark_alerted(session, ids, utcnow())


@dataclass(frozen=True)
class LocationNews:
    name: str
    state: str  # gone, up
    since: datetime


async def has_location_news(session: AsyncSession) -> bool:
    return await repository.any_location_news(session)


async def claim_location_news(session: AsyncSession, limit: int = 100) -> list[LocationNews]:
    rows = await repository.claim_location_news(session, limit)
    return [LocationNews(row.name, row.state, row.since) for row in rows]


async def mark_location_news(session: AsyncSession, names: list[str]) -> None:
    await repository.mark_location_news(session, names, utcnow())


async def down_monitors_on(
    session: AsyncSession, server_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """server → its monitors that are down right now (paused ones left out)."""
    down: dict[uuid.UUID, list[uuid.UUID]] = {}
    for monitor_id, server_id in await repository.down_monitors_of_servers(session, server_ids):
        down.setdefault(server_id, []).append(monitor_id)
    return down


async def monitor_server_pairs(session: AsyncSession) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
    return await repository.all_monitor_targets(session)


async def apply_maintenance(session: AsyncSession, covered: set[uuid.UUID]) -> set[uuid.UUID]:
    """Flag exactly these monitors as in maintenance; returns those whose
    flag changed."""
    current = await repository.in_maintenance_ids(session)
    entering, leaving = covered - current, current - covered
    await repository.set_in_maintenance(session, sorted(entering), True)
    await repository.set_in_maintenance(session, sorted(leaving), False)
    for monitor_id in entering | leaving:
        stage_event(
            session,
            Event(
                "monitoring.monitor.maintenance",
                {"id": str(monitor_id), "in_maintenance": monitor_id in entering},
            ),
        )
    return entering | leaving


async def monitor_briefs(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, TransitionBrief]:
    """Where monitors stand now, shaped like a transition to their state."""
    now = utcnow()
    return {
        m.id: _brief(
            m,
            transition_id=0,
            kind="state",
            from_state=m.status,
            to_state=m.status,
            at=now,
            reason=f"still {m.status}",
        )
        for m in await repository.monitors_by_ids(session, ids)
    }


async def existing_monitor_ids(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return await repository.existing_ids(session, ids) if ids else set()


# --- several locations ------------------------------------------------------------------


def _live_since(lease_seconds: float) -> datetime:
    # A worker is counted for one lease after its last heartbeat (leases.py).
    return utcnow() - timedelta(seconds=lease_seconds)


async def location_states(
    session: AsyncSession, monitor_id: uuid.UUID, lease_seconds: float
) -> list[LocationStateOut]:
    """What each location the monitor lists last saw; a listed location
    that has not checked yet is left out."""
    monitor = await require(session, monitor_id)
    seen = (await repository.location_states(session, [monitor.id])).get(monitor.id, {})
    live = await repository.live_locations(session, _live_since(lease_seconds))
    return [
        LocationStateOut(
            location=loc,
            state=seen[loc].state,
            latency_ms=seen[loc].latency_ms,
            checked_at=seen[loc].checked_at,
            error=seen[loc].error,
            counted=loc in live,
        )
        for loc in monitor.locations or []
        if loc in seen
    ]


async def location_states_of(
    session: AsyncSession, monitor_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, str, float]]]:
    """monitor → (location, state, latency) for the status page and console."""
    listed = await repository.listed_locations(session, monitor_ids)
    if not listed:
        return {}
    seen = await repository.location_states(session, list(listed))
    return {
        mid: [
            (loc, seen[mid][loc].state, seen[mid][loc].latency_ms)
            for loc in locations
            if loc in seen.get(mid, {})
        ]
        for mid, locations in listed.items()
    }


async def probe_locations(session: AsyncSession, lease_seconds: float) -> list[ProbeLocationOut]:
    counts = await repository.live_worker_counts(session, _live_since(lease_seconds))
    rows = {row.name: row for row in await repository.probe_locations(session)}
    return [
        ProbeLocationOut(
            name=row.name, state=row.state, since=row.since, live_workers=counts.get(row.name, 0)
        )
        for row in rows.values()
    ]


async def forget_probe_location(
    session: AsyncSession, ctx: OperationContext, name: str, lease_seconds: float
) -> None:
    """A location given up for good: its alert stops, its word on monitors
    is dropped. Refused while it has live workers."""
    known = {row.name: row for row in await repository.probe_locations(session)}
    if name not in known:
        raise NotFound(f"no probe location named {name!r}")
    counts = await repository.live_worker_counts(session, _live_since(lease_seconds))
    if counts.get(name):
        raise Conflict(f"location {name!r} has {counts[name]} live worker(s): stop them first")
    await repository.forget_probe_location(session, name)
    await audit.record(
        session,
        ctx,
        audit.Change("location.forget", "location", name, {"state": known[name].state}, None),
    )

"""Hibernation: dev servers sleep on a schedule and wake on another.

Every minute a periodic job looks at each enabled schedule: when its last
stop (or start) time is newer than the last action it carried out, it
queues one job per covered server — durable, with an idempotency key per
schedule, moment and server, so two workers or a restart never act twice.
A schedule acts only on moments after it was made (creating one at night
does not stop servers at once).

Asleep, a server's lifecycle is `maintenance`, so its monitors show
`maintenance` and raise no alerts. How it sleeps is its provider account's
choice: `stop` (DigitalOcean, Linode and Vultr still bill a stopped
server's compute) or `snapshot` (snapshot, destroy, and make it again from
the snapshot on waking — it may come back with another address, and its
new host key is pinned again)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core import cron
from infrawatch.core.clock import as_utc, utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.credentials import host_keys as credential_host_keys
from infrawatch.credentials import keys as credential_keys
from infrawatch.credentials import ssh
from infrawatch.inventory import service as inventory
from infrawatch.jobs import service as jobs
from infrawatch.jobs.context import JobContext
from infrawatch.jobs.registry import JobType, Periodic, PermanentError
from infrawatch.provisioning import builds, cloud_accounts, repository
from infrawatch.provisioning import tasks as run_tasks
from infrawatch.provisioning.cloud_schemas import ScheduleCreate, ScheduleOut, ScheduleUpdate
from infrawatch.provisioning.clouds.base import NodeNotFound, NodeSpec, ProviderError
from infrawatch.provisioning.models import HibernatedServer, HibernationSchedule

Action = Literal["stop", "start"]
MAX_SERVERS = 1000
MAX_MOMENTS_PER_WEEK = 7 * 24
SNAPSHOT_TIMEOUT = 3600.0


# --- schedules ----------------------------------------------------------------------


def _check(stop: str, start: str, timezone: str) -> None:
    for field, expression in (("stop", stop), ("start", start)):
        try:
            cron.check_cron(expression)
        except ValueError as exc:
            raise InvalidInput(str(exc), loc=("body", field)) from None
    try:
        cron.check_timezone(timezone)
    except ValueError as exc:
        raise InvalidInput(str(exc), loc=("body", "timezone")) from None
    for field, expression in (("stop", stop), ("start", start)):
        # The sample is two weeks long.
        fortnight = 2 * MAX_MOMENTS_PER_WEEK
        try:
            moments = _moments(expression, timezone, fortnight + 1)
            cron.following(expression, timezone, SAMPLE_WEEK)
        except ValueError:  # croniter: no such date ever (30 February)
            raise InvalidInput(f"{expression!r} never fires", loc=("body", field)) from None
        if len(moments) > fortnight:
            raise InvalidInput(
                f"{expression!r} fires more than {MAX_MOMENTS_PER_WEEK} times a week; "
                "a hibernation schedule stops and starts servers a few times a day at most",
                loc=("body", field),
            )


async def _check_target(session: AsyncSession, server_id: uuid.UUID | None, q: str | None) -> None:
    if (server_id is None) == (q is None):
        raise InvalidInput("give server_id or q (one of them)", loc=("body", "server_id"))
    if server_id is not None:
        await inventory.get_server(session, server_id)
    else:
        assert q is not None
        await inventory.live_server_ids_matching(session, q, 1, ("body", "q"))


# A Monday, in UTC: the sample fortnight starts here (a zone's own
# midnight differs by hours at most, which the second week absorbs).
SAMPLE_WEEK = datetime(2026, 1, 5, tzinfo=UTC)


def _moments(expression: str, timezone: str, limit: int) -> list[datetime]:
    """When the expression fires in the sample fortnight, `limit` at most."""
    end = SAMPLE_WEEK + timedelta(days=14)
    found: list[datetime] = []
    moment = SAMPLE_WEEK
    while len(found) < limit:
        moment = cron.following(expression, timezone, moment)
        if moment >= end:
            break
        found.append(moment)
    return found


def asleep_hours_per_week(stop: str, start: str, timezone: str) -> float:
    """Hours a week between a stop and the next start, measured over a
    sample week (the second of two, so a sleep begun the week before counts)."""
    begin, end = SAMPLE_WEEK + timedelta(days=7), SAMPLE_WEEK + timedelta(days=14)
    events: list[tuple[datetime, Action]] = [
        *((m, "stop") for m in _moments(stop, timezone, 2 * MAX_MOMENTS_PER_WEEK)),
        *((m, "start") for m in _moments(start, timezone, 2 * MAX_MOMENTS_PER_WEEK)),
    ]
    asleep_since: datetime | None = None
    total = timedelta()
    for moment, action in sorted(events):
        if action == "stop" and asleep_since is None:
            asleep_since = moment
        elif action == "start" and asleep_since is not None:
            if moment > begin:
                total += moment - max(asleep_since, begin)
            asleep_since = None
    if asleep_since is not None:
        total += end - max(asleep_since, begin)
    return round(total.total_seconds() / 3600, 2)


async def _covered(session: AsyncSession, schedule: HibernationSchedule) -> list[uuid.UUID]:
    if schedule.server_id is not None:
        servers = await inventory.servers_by_ids(session, [schedule.server_id])
        return [s.id for s in servers if s.deleted_at is None]
    assert schedule.query is not None
    return await inventory.live_server_ids_matching(
        session, schedule.query, MAX_SERVERS, ("query", "q")
    )


async def schedule_out(session: AsyncSession, schedule: HibernationSchedule) -> ScheduleOut:
    now = utcnow()
    hours = asleep_hours_per_week(schedule.stop_cron, schedule.start_cron, schedule.timezone)
    servers = len(await _covered(session, schedule))
    return ScheduleOut(
        id=schedule.id,
        name=schedule.name,
        server_id=schedule.server_id,
        q=schedule.query,
        stop=schedule.stop_cron,
        start=schedule.start_cron,
        timezone=schedule.timezone,
        enabled=schedule.enabled,
        asleep_hours_per_week=hours,
        servers=servers,
        estimated_hours_saved_per_week=round(hours * servers, 2),
        next_stop_at=cron.following(schedule.stop_cron, schedule.timezone, now)
        if schedule.enabled
        else None,
        next_start_at=cron.following(schedule.start_cron, schedule.timezone, now)
        if schedule.enabled
        else None,
        last_action=schedule.last_action,
        last_action_at=schedule.last_action_at,
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
    )


def _fields(schedule: HibernationSchedule) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "server_id": str(schedule.server_id) if schedule.server_id else None,
        "q": schedule.query,
        "stop": schedule.stop_cron,
        "start": schedule.start_cron,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
    }


async def _name_free(session: AsyncSession, name: str, schedule_id: uuid.UUID | None) -> None:
    existing = await repository.schedule_named(session, name)
    if existing is not None and existing.id != schedule_id:
        raise Conflict(f"a hibernation schedule named {name!r} exists already")


async def create_schedule(
    session: AsyncSession, ctx: OperationContext, body: ScheduleCreate
) -> ScheduleOut:
    _check(body.stop, body.start, body.timezone)
    await _check_target(session, body.server_id, body.q)
    await _name_free(session, body.name, None)
    now = utcnow()
    schedule = HibernationSchedule(
        id=uuid.uuid4(),
        name=body.name,
        server_id=body.server_id,
        query=body.q,
        stop_cron=body.stop,
        start_cron=body.start,
        timezone=body.timezone,
        enabled=body.enabled,
        created_at=now,
        updated_at=now,
    )
    await repository.add(session, schedule)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "hibernation.create", "hibernation_schedule", schedule.id, None, _fields(schedule)
        ),
    )
    return await schedule_out(session, schedule)


async def require_schedule(
    session: AsyncSession, schedule_id: uuid.UUID, *, lock: bool = False
) -> HibernationSchedule:
    schedule = await repository.get_schedule(session, schedule_id, lock=lock)
    if schedule is None:
        raise NotFound("no such hibernation schedule")
    return schedule


async def list_schedules(session: AsyncSession) -> list[ScheduleOut]:
    return [await schedule_out(session, s) for s in await repository.schedules(session)]


async def update_schedule(
    session: AsyncSession, ctx: OperationContext, schedule_id: uuid.UUID, body: ScheduleUpdate
) -> ScheduleOut:
    schedule = await require_schedule(session, schedule_id, lock=True)
    before = _fields(schedule)
    changes = body.model_dump(exclude_unset=True)
    stop = changes.get("stop", schedule.stop_cron)
    start = changes.get("start", schedule.start_cron)
    timezone = changes.get("timezone", schedule.timezone)
    _check(stop, start, timezone)
    server_id, q = schedule.server_id, schedule.query
    if "server_id" in changes or "q" in changes:
        server_id, q = changes.get("server_id"), changes.get("q")
        await _check_target(session, server_id, q)
    if "name" in changes:
        await _name_free(session, changes["name"], schedule.id)
        schedule.name = changes["name"]
    schedule.server_id, schedule.query = server_id, q
    schedule.stop_cron, schedule.start_cron, schedule.timezone = stop, start, timezone
    if "enabled" in changes:
        schedule.enabled = changes["enabled"]
    schedule.updated_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "hibernation.update", "hibernation_schedule", schedule.id, before, _fields(schedule)
        ),
    )
    return await schedule_out(session, schedule)


async def delete_schedule(
    session: AsyncSession, ctx: OperationContext, schedule_id: uuid.UUID
) -> None:
    """Servers it put to sleep stay asleep (wake them with /wake)."""
    schedule = await require_schedule(session, schedule_id, lock=True)
    await audit.record(
        session,
        ctx,
        audit.Change(
            "hibernation.delete", "hibernation_schedule", schedule.id, _fields(schedule), None
        ),
    )
    await repository.delete_row(session, schedule)


# --- what is due --------------------------------------------------------------------


def due_action(schedule: HibernationSchedule, now: datetime) -> tuple[Action, datetime] | None:
    """The newest stop or start moment not yet carried out, if any."""
    last_stop = cron.previous(schedule.stop_cron, schedule.timezone, now)
    last_start = cron.previous(schedule.start_cron, schedule.timezone, now)
    action: Action = "stop" if last_stop >= last_start else "start"
    moment = max(last_stop, last_start)
    if moment < as_utc(schedule.created_at):
        return None
    if schedule.last_action_at is not None and as_utc(schedule.last_action_at) >= moment:
        return None
    return action, moment


async def enqueue_due(session: AsyncSession, now: datetime) -> int:
    """Queue the due stops and starts; returns how many jobs were made."""
    made = 0
    for listed in await repository.schedules(session):
        if not listed.enabled:
            continue
        schedule = await require_schedule(session, listed.id, lock=True)
        due = due_action(schedule, now)
        if due is None:
            continue
        action, moment = due
        for server_id in await _covered(session, schedule):
            _, created = await jobs.enqueue(
                session,
                None,
                HIBERNATE,
                {"schedule_id": str(schedule.id), "server_id": str(server_id), "action": action},
                idempotency_key=f"hibernate:{schedule.id}:{moment.isoformat()}:{server_id}",
                subject=("server", str(server_id)),
            )
            made += created
        schedule.last_action, schedule.last_action_at = action, moment
    await session.flush()
    return made


async def request_action(
    session: AsyncSession, ctx: OperationContext, server_id: uuid.UUID, action: Action
) -> uuid.UUID:
    """`POST /servers/{id}/hibernate|wake`, by hand."""
    await inventory.get_server(session, server_id)
    job, _ = await jobs.enqueue(
        session,
        ctx,
        HIBERNATE,
        {"server_id": str(server_id), "action": action},
        subject=("server", str(server_id)),
    )
    return job.id


# --- the jobs -----------------------------------------------------------------------


async def due_job(ctx: JobContext) -> dict[str, Any]:
    async with ctx.db.unit_of_work() as session:
        made = await enqueue_due(session, utcnow())
    return {"queued": made}


async def hibernate_job(ctx: JobContext) -> dict[str, Any]:
    server_id = uuid.UUID(ctx.arguments["server_id"])
    action: Action = ctx.arguments["action"]
    schedule_id = ctx.arguments.get("schedule_id")
    async with ctx.db.unit_of_work(write=False) as session:
        server = (await inventory.get_server(session, server_id)).value
        build = await repository.build_of_server(session, server_id)
        if build is None or build.node_id is None:
            raise PermanentError(f"server {server.name!r} was not made through a provider account")
        account = await cloud_accounts.require_account(session, build.account_id)
        asleep = (await repository.hibernated(session, [server_id])).get(server_id)
    provider = cloud_accounts.provider_of(account, ctx.services.keyring, ctx.services.settings)
    try:
        if action == "stop":
            if asleep is not None:
                # Asleep, or an attempt that crashed half way: finish what it began
                # (every step of a sleep may be done twice).
                await _sleep(ctx, provider, build, server_id, asleep.mode)
                return {"server": server.name, "result": f"asleep ({asleep.mode})"}
            if server.lifecycle != "active":
                return {"server": server.name, "result": f"left alone: it is {server.lifecycle}"}
            mode = account.hibernation if account.kind != "lab" else "stop"
            async with ctx.db.unit_of_work() as session:
                session.add(
                    HibernatedServer(
                        server_id=server_id,
                        schedule_id=uuid.UUID(schedule_id) if schedule_id else None,
                        mode=mode,
                        lifecycle_before=server.lifecycle,
                        since=utcnow(),
                    )
                )
                await builds.set_lifecycle(session, ctx, server_id, "maintenance")
                await _record(session, ctx, "server.hibernate", server_id, {"mode": mode})
            await _sleep(ctx, provider, build, server_id, mode)
            return {"server": server.name, "result": f"asleep ({mode})"}
        if asleep is None:
            return {"server": server.name, "result": "awake already"}
        await _wake(ctx, provider, build, server_id, asleep)
        return {"server": server.name, "result": "awake"}
    except ProviderError as exc:
        if exc.retryable:
            raise
        raise PermanentError(f"{server.name}: {action}: {exc}") from None
    finally:
        await provider.close()


async def _record(
    session: AsyncSession, ctx: JobContext, action: str, server_id: uuid.UUID, after: dict[str, Any]
) -> None:
    await audit.record(
        session, ctx.operation_context(), audit.Change(action, "server", server_id, None, after)
    )


async def _sleep(
    ctx: JobContext, provider: Any, build: Any, server_id: uuid.UUID, mode: str
) -> None:
    if mode == "stop":
        await provider.stop(build.node_id)
        await ctx.log(f"node {build.node_id} stopped")
        return
    async with ctx.db.unit_of_work(write=False) as session:
        asleep = (await repository.hibernated(session, [server_id]))[server_id]
    if asleep.snapshot_id is None:
        await provider.stop(build.node_id)  # a clean disk for the snapshot
        snapshot = await provider.snapshot(
            build.node_id, f"hibernate-{build.name}-{ctx.job_id.hex[:8]}"
        )
        async with ctx.db.unit_of_work() as session:
            row = (await repository.hibernated(session, [server_id]))[server_id]
            row.snapshot_id = snapshot.id
        asleep.snapshot_id = snapshot.id
    snapshot_id = asleep.snapshot_id

    async def available() -> bool | None:
        return True if (await provider.get_snapshot(snapshot_id)).state == "available" else None

    await builds.poll(f"snapshot {snapshot_id} is not ready", SNAPSHOT_TIMEOUT, available)
    with contextlib.suppress(NodeNotFound):  # gone already: an earlier attempt got this far
        await provider.destroy(build.node_id)
    await ctx.log(f"node {build.node_id} snapshotted as {snapshot_id} and destroyed")


async def _wake(
    ctx: JobContext, provider: Any, build: Any, server_id: uuid.UUID, asleep: HibernatedServer
) -> None:
    if asleep.mode == "stop":
        await provider.start(build.node_id)
        node = await builds.running_node(provider, build)
    else:
        if asleep.snapshot_id is None:
            raise PermanentError("the server sleeps in snapshot mode but no snapshot was taken")
        try:
            node = await provider.get(build.node_id)
            if node.state == "gone":
                raise NodeNotFound("gone")
        except NodeNotFound:
            async with ctx.db.unit_of_work(write=False) as session:
                key = await credential_keys.require_key(session, build.key_id)
            spec = NodeSpec(
                name=build.name,
                region=build.region,
                size=build.size,
                image=_snapshot_image(provider.kind, asleep.snapshot_id),
                public_key=key.public_key,
                # One tag per sleep, so this wake finds the node it made.
                build_tag=f"{build.id}-{asleep.snapshot_id}"[:64],
                tags=build.tags,
            )
            node = await builds.create_once(provider, spec)
            async with ctx.db.unit_of_work() as session:
                row = await builds.require_build(session, build.id)
                row.node_id = node.id
            build.node_id = node.id
        node = await builds.running_node(provider, build)
    op = ctx.operation_context()
    async with ctx.db.unit_of_work() as session:
        server = (await inventory.get_server(session, server_id)).value
        if node.id != server.attributes.get("node_id") or node.address != server.ip_address:
            attributes = {**server.attributes, "node_id": node.id}
            changes = {"ip_address": node.address or server.ip_address, "attributes": attributes}
            await inventory.update_server(session, op, server_id, changes)
        if asleep.mode == "snapshot":
            # A new machine from the image: cloud-init made new host keys.
            with contextlib.suppress(NotFound):
                await credential_host_keys.forget_host_key(session, op, server_id)
    if asleep.mode == "snapshot":
        address = node.address or ""
        target = ssh.Target(host=address, port=server.ssh_port, username=provider.login_user)
        await run_tasks.pin_host_key(ctx, server_id, target)
        try:
            await provider.delete_snapshot(asleep.snapshot_id or "")
        except ProviderError as exc:
            await ctx.log(f"snapshot {asleep.snapshot_id} kept: {exc}", kind="warning")
    async with ctx.db.unit_of_work() as session:
        resting = (await repository.hibernated(session, [server_id])).get(server_id)
        if resting is not None:
            await repository.delete_row(session, resting)
        await builds.set_lifecycle(session, ctx, server_id, asleep.lifecycle_before)
        await _record(
            session, ctx, "server.wake", server_id, {"mode": asleep.mode, "node": node.id}
        )


def _snapshot_image(kind: str, snapshot_id: str) -> str:
    """How each provider names "make it from this snapshot"."""
    return f"snapshot:{snapshot_id}" if kind == "vultr" else snapshot_id


DUE = JobType(
    name="provisioning.hibernation_due",
    handler=due_job,
    max_attempts=1,
    timeout_seconds=300,
    description="queue the due stops and starts of hibernation schedules",
)
HIBERNATE = JobType(
    name="provisioning.hibernate",
    handler=hibernate_job,
    concurrency=20,
    max_attempts=4,
    backoff_seconds=30.0,
    timeout_seconds=2 * 3600,
    description="put a server to sleep or wake it",
)
JOB_TYPES = (DUE, HIBERNATE)
PERIODIC = (Periodic("hibernation-due", DUE.name, 60),)

"""Every query of the jobs domain."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.clock import utcnow
from infrawatch.core.pagination import SortKey, after_cursor, order_by
from infrawatch.jobs.models import Job, JobEvent, JobSchedule

ACTIVE = ("queued", "running")


async def get(session: AsyncSession, job_id: uuid.UUID, *, lock: bool = False) -> Job | None:
    query = select(Job).where(Job.id == job_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def get_many(session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> list[Job]:
    if not job_ids:
        return []
    return list(await session.scalars(select(Job).where(Job.id.in_(job_ids))))


async def by_idempotency_key(session: AsyncSession, key: str) -> Job | None:
    return (await session.scalars(select(Job).where(Job.idempotency_key == key))).one_or_none()


async def add(session: AsyncSession, job: Job) -> None:
    session.add(job)
    await session.flush()


async def append_event(
    session: AsyncSession,
    job_id: uuid.UUID,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> JobEvent:
    """Numbered under the job row's lock: gapless, in commit order."""
    seq = await session.scalar(
        update(Job)
        .where(Job.id == job_id)
        .values(event_count=Job.event_count + 1)
        .returning(Job.event_count)
        .execution_options(synchronize_session=False)
    )
    event = JobEvent(job_id=job_id, seq=int(seq or 0), at=utcnow(), kind=kind, message=message)
    event.data = data
    session.add(event)
    await session.flush()
    return event


async def events_after(
    session: AsyncSession, job_id: uuid.UUID, after: int, limit: int
) -> list[JobEvent]:
    return list(
        await session.scalars(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.seq > after)
            .order_by(JobEvent.seq)
            .limit(limit)
        )
    )


# --- claiming ---------------------------------------------------------------------


async def lock_type(session: AsyncSession, job_type: str) -> None:
    """Claims of one type are serialized on PostgreSQL so the per-type
    limit holds across workers (SQLite's write lock already does this)."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"jobs:{job_type}".encode()) - 2**31
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


async def running_count(session: AsyncSession, job_type: str, now: datetime) -> int:
    value = await session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.type == job_type, Job.status == "running", Job.lease_expires_at >= now)
    )
    return int(value or 0)


def _runnable(now: datetime) -> Any:
    return or_(
        and_(Job.status == "queued", Job.run_after <= now),
        and_(Job.status == "running", Job.lease_expires_at < now),
    )


async def runnable_types(session: AsyncSession, types: Sequence[str], now: datetime) -> set[str]:
    """A read, so an idle worker polls without taking SQLite's write lock."""
    rows = await session.scalars(
        select(Job.type).where(Job.type.in_(types), _runnable(now)).distinct()
    )
    return set(rows)


async def claimable(session: AsyncSession, job_type: str, now: datetime, limit: int) -> list[Job]:
    """Queued work that is due, and running work whose worker stopped
    renewing its lease. SKIP LOCKED: workers never wait on each other."""
    query = (
        select(Job)
        .where(Job.type == job_type, _runnable(now))
        .order_by(Job.run_after, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(await session.scalars(query))


async def renew_leases(
    session: AsyncSession, owner: str, ids: Sequence[uuid.UUID], until: datetime
) -> dict[uuid.UUID, bool]:
    """Extend the leases this worker still holds -> {id: cancel_requested}.
    A job missing from the answer is no longer ours."""
    if not ids:
        return {}
    rows = await session.execute(
        update(Job)
        .where(Job.id.in_(ids), Job.lease_owner == owner, Job.status == "running")
        .values(lease_expires_at=until)
        .returning(Job.id, Job.cancel_requested)
        .execution_options(synchronize_session=False)
    )
    return {row.id: row.cancel_requested for row in rows}


async def held(session: AsyncSession, job_id: uuid.UUID, owner: str) -> Job | None:
    """The job, locked, if this worker still holds its lease."""
    job = await get(session, job_id, lock=True)
    if job is None or job.status != "running" or job.lease_owner != owner:
        return None
    return job


# --- lists ------------------------------------------------------------------------


def sortable() -> dict[str, Any]:
    return {"created_at": Job.created_at, "type": Job.type, "status": Job.status, "id": Job.id}


def _filtered(status: str | None, job_type: str | None, subject_id: str | None) -> list[Any]:
    where: list[Any] = []
    if status:
        where.append(Job.status == status)
    if job_type:
        where.append(Job.type == job_type)
    if subject_id:
        where.append(Job.subject_id == subject_id)
    return where


async def page(
    session: AsyncSession,
    filters: tuple[str | None, str | None, str | None],
    keys: Sequence[SortKey],
    after: Sequence[Any] | None,
    limit: int,
) -> list[Job]:
    query = select(Job).where(*_filtered(*filters))
    if after is not None:
        query = query.where(after_cursor(keys, after))
    return list(await session.scalars(query.order_by(*order_by(keys)).limit(limit)))


async def count(session: AsyncSession, filters: tuple[str | None, str | None, str | None]) -> int:
    value = await session.scalar(select(func.count()).select_from(Job).where(*_filtered(*filters)))
    return int(value or 0)


# --- periodic jobs ----------------------------------------------------------------


async def ensure_schedule(
    session: AsyncSession,
    name: str,
    job_type: str,
    arguments: dict[str, Any],
    period_seconds: int,
    first_run: datetime,
) -> None:
    existing = await session.get(JobSchedule, name)
    if existing is None:
        session.add(
            JobSchedule(
                name=name,
                type=job_type,
                arguments=arguments,
                period_seconds=period_seconds,
                next_run_at=first_run,
            )
        )
    elif (existing.type, existing.arguments, existing.period_seconds) != (
        job_type,
        arguments,
        period_seconds,
    ):
        existing.type, existing.arguments = job_type, arguments
        existing.period_seconds = period_seconds
    await session.flush()


async def due_schedules(session: AsyncSession, now: datetime) -> list[JobSchedule]:
    return list(await session.scalars(select(JobSchedule).where(JobSchedule.next_run_at <= now)))


async def advance_schedule(
    session: AsyncSession, name: str, seen: datetime, following: datetime
) -> bool:
    """Compare and set: only the worker that saw `seen` moves it on."""
    result = await session.execute(
        update(JobSchedule)
        .where(JobSchedule.name == name, JobSchedule.next_run_at == seen)
        .values(next_run_at=following)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def note_scheduled_job(session: AsyncSession, name: str, job_id: uuid.UUID) -> None:
    await session.execute(
        update(JobSchedule)
        .where(JobSchedule.name == name)
        .values(last_job_id=job_id)
        .execution_options(synchronize_session=False)
    )


async def wake_waiting(session: AsyncSession, job_type: str, now: datetime, mention: str) -> int:
    """Deferred jobs of this type whose reason mentions `mention` are due
    again, in the order they were queued (their wait kept no place in line)."""
    result = await session.execute(
        update(Job)
        .where(
            Job.type == job_type,
            Job.status == "queued",
            Job.run_after > now,
            Job.progress_message.like("waiting%"),
            Job.progress_message.contains(mention, autoescape=True),
        )
        .values(run_after=Job.created_at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)

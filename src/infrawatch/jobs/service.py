"""Durable jobs: enqueue inside the caller's transaction, read, cancel; and
the lease-fenced steps a worker takes (claim, progress, finish, retry)."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.db import stage_event
from infrawatch.core.errors import Conflict, NotFound
from infrawatch.core.events import Event
from infrawatch.core.pagination import Page, decode_cursor, encode_cursor, parse_sort
from infrawatch.jobs import repository
from infrawatch.jobs.models import Job, JobEvent
from infrawatch.jobs.registry import JobType
from infrawatch.jobs.schemas import JobEventOut, JobEventsOut, JobOut

FINISHED = ("succeeded", "failed", "cancelled")
QUEUED_TOPIC = "jobs.queued"
CANCEL_TOPIC = "jobs.cancel"
EVENT_TOPIC = "jobs.event"


def job_out(job: Job) -> JobOut:
    return JobOut.model_validate(job, from_attributes=True)


async def enqueue(
    session: AsyncSession,
    ctx: OperationContext | None,
    job_type: JobType,
    arguments: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    subject: tuple[str, str] | None = None,
    run_after: datetime | None = None,
) -> tuple[Job, bool]:
    """-> (job, created). The job exists if and only if the caller's
    transaction commits. A repeated idempotency key returns the first job
    (a different request under the same key is a 409)."""
    if idempotency_key is not None:
        existing = await repository.by_idempotency_key(session, idempotency_key)
        if existing is not None:
            return _same_request(existing, job_type, arguments), False
    now = utcnow()
    job = Job(
        id=uuid.uuid4(),
        type=job_type.name,
        arguments=arguments,
        status="queued",
        attempts=0,
        max_attempts=job_type.max_attempts,
        run_after=run_after or now,
        idempotency_key=idempotency_key,
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
        created_by=ctx.actor.username if ctx else "system",
        event_count=0,
        progress=0,
        cancel_requested=False,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            await repository.add(session, job)
    except IntegrityError:
        # Another request with the same key committed first.
        existing = await repository.by_idempotency_key(session, idempotency_key or "")
        if existing is None:
            raise
        return _same_request(existing, job_type, arguments), False
    await add_event(session, job.id, "status", "queued")
    if ctx is not None:
        await audit.record(
            session,
            ctx,
            audit.Change(
                "job.create", "job", job.id, after={"type": job.type, "arguments": arguments}
            ),
        )
    stage_event(session, Event(QUEUED_TOPIC, {"id": str(job.id), "type": job.type}))
    return job, True


def _same_request(existing: Job, job_type: JobType, arguments: dict[str, Any]) -> Job:
    if existing.type != job_type.name or existing.arguments != arguments:
        raise Conflict(
            "this Idempotency-Key was already used for a different request "
            f"(job {existing.id}, type {existing.type})"
        )
    return existing


async def add_event(
    session: AsyncSession,
    job_id: uuid.UUID,
    kind: str,
    message: str,
    data: dict[str, Any] | None = None,
) -> JobEvent:
    event = await repository.append_event(session, job_id, kind, message, data)
    stage_event(
        session,
        Event(
            EVENT_TOPIC,
            {
                "job_id": str(job_id),
                "seq": event.seq,
                "kind": kind,
                "message": message,
                "data": data,
            },
        ),
    )
    return event


# --- reading ----------------------------------------------------------------------


async def get_job(session: AsyncSession, job_id: uuid.UUID) -> Job:
    job = await repository.get(session, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


async def jobs_by_ids(session: AsyncSession, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, Job]:
    return {j.id: j for j in await repository.get_many(session, job_ids)}


def request_fingerprint(body: BaseModel) -> str:
    """What a request asked for, to tell a retry from a different request
    sent under the same Idempotency-Key."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def replayed(
    session: AsyncSession, key: str | None, job_type: JobType, fingerprint: str
) -> Job | None:
    """The job a first request with this Idempotency-Key made, when this is
    a retry of it (same type, same body: `fingerprint`); a 409 when the key
    was used for something else; None when the key is new."""
    if key is None:
        return None
    existing = await repository.by_idempotency_key(session, key)
    if existing is None:
        return None
    if existing.type != job_type.name or existing.arguments.get("request") != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used for a different request "
            f"(job {existing.id}, type {existing.type})"
        )
    return existing


async def list_jobs(
    session: AsyncSession,
    *,
    status: str | None,
    job_type: str | None,
    subject_id: str | None,
    sort: str | None,
    cursor: str | None,
    limit: int,
) -> Page[JobOut]:
    keys = parse_sort(sort, repository.sortable(), default="-created_at")
    after = decode_cursor(cursor, keys) if cursor else None
    filters = (status, job_type, subject_id)
    rows = await repository.page(session, filters, keys, after, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(keys, [getattr(last, k.name) for k in keys])
    return Page(
        items=[job_out(j) for j in rows[:limit]],
        total=await repository.count(session, filters),
        next_cursor=next_cursor,
    )


async def job_events(
    session: AsyncSession, job_id: uuid.UUID, after: int, limit: int
) -> JobEventsOut:
    job = await get_job(session, job_id)
    events = await repository.events_after(session, job_id, after, limit)
    return JobEventsOut(
        job_id=job.id,
        status=job.status,
        events=[JobEventOut.model_validate(e, from_attributes=True) for e in events],
        last_seq=events[-1].seq if events else after,
    )


async def cancel(session: AsyncSession, ctx: OperationContext, job_id: uuid.UUID) -> Job:
    """Queued: cancelled at once. Running: the worker holding it is told
    (bus, and its next heartbeat) and stops the handler."""
    job = await repository.get(session, job_id, lock=True)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    if job.status in FINISHED:
        raise Conflict(f"job {job_id} already ended ({job.status})")
    now = utcnow()
    if job.status == "queued":
        job.status, job.finished_at = "cancelled", now
        await add_event(session, job.id, "status", f"cancelled by {ctx.actor.username}")
    elif not job.cancel_requested:
        job.cancel_requested = True
        await add_event(session, job.id, "status", f"cancel requested by {ctx.actor.username}")
        stage_event(session, Event(CANCEL_TOPIC, {"id": str(job.id)}))
    job.updated_at = now
    await audit.record(session, ctx, audit.Change("job.cancel", "job", job.id))
    await session.flush()
    return job


# --- a worker's steps (fenced by the lease) ---------------------------------------


async def claim(
    session: AsyncSession,
    job_type: JobType,
    owner: str,
    lease_seconds: float,
    limit: int,
) -> list[Job]:
    """Up to `limit` runnable jobs of this type, within its global limit.
    A job whose lease expired with no attempts left fails here."""
    now = utcnow()
    await repository.lock_type(session, job_type.name)
    free = job_type.concurrency - await repository.running_count(session, job_type.name, now)
    if free <= 0 or limit <= 0:
        return []
    claimed = []
    for job in await repository.claimable(session, job_type.name, now, min(free, limit)):
        if job.status == "running":
            await add_event(
                session,
                job.id,
                "warning",
                f"worker {job.lease_owner} stopped renewing its lease; taking the job over",
            )
            if job.attempts >= job.max_attempts:
                _end(job, "failed", now, error="its worker was lost on every attempt")
                await add_event(session, job.id, "status", "failed: no attempts left")
                continue
        if job.cancel_requested:
            _end(job, "cancelled", now)
            await add_event(session, job.id, "status", "cancelled")
            continue
        _start_attempt(job, owner, lease_seconds, now)
        await add_event(
            session,
            job.id,
            "status",
            f"running on {owner} (attempt {job.attempts} of {job.max_attempts})",
            {"attempt": job.attempts, "resumed": job.checkpoint is not None},
        )
        claimed.append(job)
    await session.flush()
    return claimed


async def claim_job(
    session: AsyncSession, job_id: uuid.UUID, owner: str, lease_seconds: float
) -> Job | None:
    """This queued job, for the process that made it (a CLI run that uses
    the caller's own ssh-agent, which no worker can reach)."""
    job = await repository.get(session, job_id, lock=True)
    if job is None or job.status != "queued":
        return None
    _start_attempt(job, owner, lease_seconds, utcnow())
    await add_event(session, job.id, "status", f"running on {owner} (attempt {job.attempts})")
    await session.flush()
    return job


def _start_attempt(job: Job, owner: str, lease_seconds: float, now: datetime) -> None:
    job.status = "running"
    job.attempts += 1
    job.lease_owner = owner
    job.lease_expires_at = now + timedelta(seconds=lease_seconds)
    job.started_at = job.started_at or now
    job.updated_at = now


def _end(job: Job, status: str, now: datetime, *, error: str | None = None) -> None:
    job.status = status
    job.error = error
    job.finished_at = now
    job.updated_at = now
    job.lease_owner = None
    job.lease_expires_at = None


async def held(session: AsyncSession, job_id: uuid.UUID, owner: str) -> Job | None:
    return await repository.held(session, job_id, owner)


async def report_progress(
    session: AsyncSession, job: Job, percent: int, message: str | None
) -> None:
    job.progress = max(0, min(100, percent))
    job.progress_message = message[:500] if message else None
    job.updated_at = utcnow()
    await add_event(
        session, job.id, "progress", message or f"{job.progress}%", {"percent": job.progress}
    )


async def succeed(session: AsyncSession, job: Job, result: dict[str, Any] | None) -> None:
    _end(job, "succeeded", utcnow())
    job.result = result
    job.progress = 100
    await add_event(session, job.id, "status", "succeeded", {"result": result})
    await _audit_end(session, job)


async def fail_attempt(
    session: AsyncSession,
    job: Job,
    job_type: JobType | None,
    error: str,
    *,
    permanent: bool,
    result: dict[str, Any] | None = None,
) -> None:
    """Another attempt after a backoff, or the end."""
    now = utcnow()
    if permanent or job_type is None or job.attempts >= job.max_attempts:
        _end(job, "failed", now, error=error)
        job.result = result
        await add_event(session, job.id, "error", error)
        await add_event(session, job.id, "status", "failed")
        await _audit_end(session, job)
        return
    delay = job_type.retry_delay(job.attempts)
    job.status = "queued"
    job.error = error
    job.run_after = now + timedelta(seconds=delay)
    job.lease_owner = None
    job.lease_expires_at = None
    job.updated_at = now
    await add_event(session, job.id, "error", error)
    await add_event(
        session, job.id, "status", f"retrying in {delay:.0f} s", {"retry_in_seconds": delay}
    )


async def defer(session: AsyncSession, job: Job, reason: str, seconds: float) -> None:
    """Back to the queue without spending the attempt; the reason is logged
    once, not at every look."""
    now = utcnow()
    if job.progress_message != reason[:500]:
        await add_event(session, job.id, "status", f"waiting: {reason}", {"waiting": reason})
    job.status = "queued"
    job.attempts = max(job.attempts - 1, 0)
    job.progress_message = reason[:500]
    job.run_after = now + timedelta(seconds=seconds)
    job.lease_owner = None
    job.lease_expires_at = None
    job.updated_at = now


async def wake_waiting(session: AsyncSession, job_type: JobType, mention: str) -> None:
    """Deferred jobs of this type that wait for `mention` (their reason names
    it) try again now, not when their wait ends."""
    if await repository.wake_waiting(session, job_type.name, utcnow(), mention):
        stage_event(session, Event(QUEUED_TOPIC, {"type": job_type.name}))


async def mark_cancelled(session: AsyncSession, job: Job) -> None:
    _end(job, "cancelled", utcnow())
    await add_event(session, job.id, "status", "cancelled")
    await _audit_end(session, job)


async def _audit_end(session: AsyncSession, job: Job) -> None:
    """How a job someone asked for ended, and every system job that did not
    succeed; the hourly housekeeping that went fine stays in the jobs table
    only, so the audit trail is not one line an hour of nothing."""
    from infrawatch.core.context import SYSTEM_ACTOR

    if job.created_by == "system" and job.status == "succeeded":
        return
    await audit.record(
        session,
        OperationContext(actor=SYSTEM_ACTOR),
        audit.Change(
            f"job.{job.status}",
            "job",
            job.id,
            after={"type": job.type, "attempts": job.attempts, "error": job.error},
        ),
    )

"""Jobs: list, read, follow the event log, cancel. Jobs are started by the
domain that owns the work (a scan, a key rotation), never from here."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from infrawatch.accounts.security import Context, authorize
from infrawatch.core.pagination import Page
from infrawatch.core.runtime import DbSession
from infrawatch.jobs import service
from infrawatch.jobs.schemas import JobEventsOut, JobOut, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[Depends(authorize())])


@router.get("", response_model=Page[JobOut])
async def list_jobs(
    session: DbSession,
    status: JobStatus | None = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    subject_id: Annotated[str | None, Query(max_length=64)] = None,
    sort: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[JobOut]:
    return await service.list_jobs(
        session,
        status=status,
        job_type=type,
        subject_id=subject_id,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, session: DbSession) -> JobOut:
    return service.job_out(await service.get_job(session, job_id))


@router.get("/{job_id}/events", response_model=JobEventsOut)
async def job_events(
    job_id: uuid.UUID,
    session: DbSession,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JobEventsOut:
    return await service.job_events(session, job_id, after, limit)


@router.post("/{job_id}/cancel", response_model=JobOut)
async def cancel_job(job_id: uuid.UUID, ctx: Context, session: DbSession) -> JobOut:
    return service.job_out(await service.cancel(session, ctx, job_id))

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from infrawatch.core.runtime import DbSession
from infrawatch.jobs import service as jobs
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(
    viewer: ViewerDep,
    session: DbSession,
    status: Annotated[str, Query(max_length=32)] = "",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    statuses = ("queued", "running", "succeeded", "failed", "cancelled")
    status = status if status in statuses else ""
    page = await jobs.list_jobs(
        session,
        status=status or None,
        job_type=None,
        subject_id=None,
        sort=None,
        cursor=cursor,
        limit=50,
    )
    return render(
        "jobs/list.html",
        viewer=viewer,
        nav="jobs",
        title="Jobs",
        page=page,
        status=status,
        statuses=statuses,
        first_page=cursor is None,
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(job_id: uuid.UUID, viewer: ViewerDep, session: DbSession) -> Response:
    job = jobs.job_out(await jobs.get_job(session, job_id))
    events = await jobs.job_events(session, job_id, 0, 1000)
    return render(
        "jobs/detail.html", viewer=viewer, nav="jobs", title=job.type, job=job, events=events
    )

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from infrawatch.core.runtime import DbSession
from infrawatch.inventory import service as inventory
from infrawatch.jobs import service as jobs
from infrawatch.provisioning import builds, catalog, cloud_accounts, hibernation, service, stacks
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/provisioning", response_class=HTMLResponse)
async def provisioning_page(viewer: ViewerDep, session: DbSession) -> Response:
    runs = await service.list_runs(session, 50, None)
    return render(
        "provisioning/list.html",
        viewer=viewer,
        nav="provisioning",
        title="Provisioning",
        runs=runs,
        roles=list(catalog.roles().values()),
        stacks=list(stacks.STACKS.values()),
    )


@router.get("/provisioning/runs/{run_id}", response_class=HTMLResponse)
async def run_page(run_id: uuid.UUID, viewer: ViewerDep, session: DbSession) -> Response:
    run = await service.get_run(session, run_id)
    job = jobs.job_out(await jobs.get_job(session, run.job_id)) if run.job_id else None
    events = await jobs.job_events(session, run.job_id, 0, 1000) if run.job_id else None
    servers = {s.id: s.name for s in await inventory.servers_by_ids(session, run.server_ids)}
    return render(
        "provisioning/run.html",
        viewer=viewer,
        nav="provisioning",
        title="Provisioning run",
        run=run,
        job=job,
        events=events,
        servers=servers,
    )


@router.get("/provisioning/servers", response_class=HTMLResponse)
async def new_servers_page(viewer: ViewerDep, session: DbSession) -> Response:
    """Servers made through provider accounts, a row each, step by step."""
    return render(
        "provisioning/servers.html",
        viewer=viewer,
        nav="provisioning",
        title="New servers",
        builds=await builds.list_builds(session, 100, None, None),
        accounts=await cloud_accounts.account_choices(session),
        steps=builds.CREATE_STEPS,
        destroy_steps=builds.DESTROY_STEPS,
        stacks=list(stacks.STACKS.values()),
        schedules=await hibernation.list_schedules(session),
    )

"""Provisioning runs (operators start them, viewers read them) and the lab
provider's hosts (admins, and only with INFRAWATCH_LAB_ENABLED=true)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from infrawatch.accounts.security import Context, authorize
from infrawatch.core.context import Role
from infrawatch.core.runtime import DbSession, KeyringDep, SettingsDep, get_runtime
from infrawatch.provisioning import catalog, projects, service, stacks, tasks
from infrawatch.provisioning.lab import service as lab
from infrawatch.provisioning.schemas import (
    LabHostCreate,
    LabHostOut,
    ProjectCreate,
    ProjectOut,
    RoleOut,
    RunCreate,
    RunOut,
    StackOut,
)

router = APIRouter(
    prefix="/provisioning", tags=["provisioning"], dependencies=[Depends(authorize())]
)
# Projects run code on servers: admins add them, everyone may read them.
projects_router = APIRouter(
    prefix="/provisioning/projects",
    tags=["provisioning"],
    dependencies=[Depends(authorize(write=Role.admin))],
)
lab_router = APIRouter(
    prefix="/providers/lab/hosts",
    tags=["provisioning"],
    dependencies=[Depends(authorize(write=Role.admin, read=Role.admin))],
)


@router.get("/roles", response_model=list[RoleOut])
async def list_roles() -> list[RoleOut]:
    return list(catalog.roles().values())


@router.get("/stacks", response_model=list[StackOut])
async def list_stacks() -> list[StackOut]:
    return [
        StackOut(
            name=s.name, description=s.description, roles=s.roles, form=s.schema, tested=s.tested
        )
        for s in stacks.STACKS.values()
    ]


@router.get("/runs", response_model=list[RunOut])
async def list_runs(
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    server_id: uuid.UUID | None = None,
) -> list[RunOut]:
    return await service.list_runs(session, limit, server_id)


@router.post("/runs", response_model=RunOut, status_code=status.HTTP_202_ACCEPTED)
async def create_run(
    body: RunCreate,
    ctx: Context,
    session: DbSession,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunOut:
    return await service.create_run(session, ctx, body, tasks.RUN, idempotency_key)


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: uuid.UUID, session: DbSession) -> RunOut:
    return await service.get_run(session, run_id)


@router.post("/runs/{run_id}/retry", response_model=RunOut, status_code=202)
async def retry_run(run_id: uuid.UUID, ctx: Context, session: DbSession) -> RunOut:
    return await service.retry_run(session, ctx, run_id, tasks.RUN)


@router.post("/runs/{run_id}/rollback", response_model=RunOut, status_code=202)
async def rollback_run(run_id: uuid.UUID, ctx: Context, session: DbSession) -> RunOut:
    return await service.request_rollback(session, ctx, run_id, tasks.ROLLBACK)


@projects_router.get("", response_model=list[ProjectOut])
async def list_projects(session: DbSession) -> list[ProjectOut]:
    return await projects.list_projects(session)


@projects_router.post("", response_model=ProjectOut, status_code=status.HTTP_202_ACCEPTED)
async def create_project(body: ProjectCreate, ctx: Context, session: DbSession) -> ProjectOut:
    return await projects.create_project(session, ctx, body, projects.SYNC)


@projects_router.get("/{project_id}", response_model=ProjectOut)
async def get_project(project_id: uuid.UUID, session: DbSession) -> ProjectOut:
    return projects.project_out(await projects.require_project(session, project_id))


@projects_router.post("/{project_id}/sync", response_model=ProjectOut, status_code=202)
async def sync_project(project_id: uuid.UUID, ctx: Context, session: DbSession) -> ProjectOut:
    return await projects.request_sync(session, ctx, project_id, projects.SYNC)


@projects_router.delete("/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_project(project_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await projects.delete_project(session, ctx, project_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@lab_router.get("", response_model=list[LabHostOut])
async def list_lab_hosts(request: Request, settings: SettingsDep) -> list[LabHostOut]:
    return await lab.list_hosts(get_runtime(request).db, settings)


@lab_router.post("", response_model=LabHostOut, status_code=status.HTTP_201_CREATED)
async def create_lab_host(
    body: LabHostCreate, request: Request, ctx: Context, settings: SettingsDep, keyring: KeyringDep
) -> LabHostOut:
    return await lab.create_host(get_runtime(request).db, settings, keyring, ctx, body)


@lab_router.post("/{name}/{action}", response_model=LabHostOut)
async def lab_host_action(
    name: str,
    action: Literal["start", "stop", "snapshot", "restore"],
    settings: SettingsDep,
    label: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9-]{0,30}$")] = None,
) -> LabHostOut:
    return await lab.act(settings, name, action, label)


@lab_router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def destroy_lab_host(
    name: str, request: Request, ctx: Context, settings: SettingsDep
) -> Response:
    await lab.destroy_host(get_runtime(request).db, settings, ctx, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

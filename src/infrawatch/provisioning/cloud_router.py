"""Provider accounts (admins only: they hold cloud credentials), servers
made and destroyed through them (operators), and hibernation schedules."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status

from infrawatch.accounts.security import Context, authorize
from infrawatch.core.context import Role
from infrawatch.core.runtime import DbSession, KeyringDep, SettingsDep
from infrawatch.provisioning import builds, cloud_accounts, hibernation
from infrawatch.provisioning.cloud_schemas import (
    BuildOut,
    BuildsOut,
    NodeOut,
    ProviderAccountCreate,
    ProviderAccountOut,
    ProviderAccountUpdate,
    RegionOut,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    ServerCreate,
    SizeOut,
)

accounts_router = APIRouter(
    prefix="/provider-accounts",
    tags=["providers"],
    dependencies=[Depends(authorize(write=Role.admin, read=Role.admin))],
)
builds_router = APIRouter(tags=["providers"], dependencies=[Depends(authorize())])
hibernation_router = APIRouter(
    prefix="/hibernation-schedules", tags=["providers"], dependencies=[Depends(authorize())]
)


@accounts_router.get("", response_model=list[ProviderAccountOut])
async def list_accounts(session: DbSession, keyring: KeyringDep) -> list[ProviderAccountOut]:
    return await cloud_accounts.list_accounts(session, keyring)


@accounts_router.post("", response_model=ProviderAccountOut, status_code=201)
async def create_account(
    body: ProviderAccountCreate, ctx: Context, session: DbSession, keyring: KeyringDep
) -> ProviderAccountOut:
    return await cloud_accounts.create_account(session, ctx, keyring, body)


@accounts_router.get("/{account_id}", response_model=ProviderAccountOut)
async def get_account(
    account_id: uuid.UUID, session: DbSession, keyring: KeyringDep
) -> ProviderAccountOut:
    account = await cloud_accounts.require_account(session, account_id)
    return cloud_accounts.account_out(account, keyring)


@accounts_router.patch("/{account_id}", response_model=ProviderAccountOut)
async def update_account(
    account_id: uuid.UUID,
    body: ProviderAccountUpdate,
    ctx: Context,
    session: DbSession,
    keyring: KeyringDep,
) -> ProviderAccountOut:
    return await cloud_accounts.update_account(session, ctx, keyring, account_id, body)


@accounts_router.delete("/{account_id}", status_code=204)
async def delete_account(account_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await cloud_accounts.delete_account(session, ctx, account_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@accounts_router.get("/{account_id}/regions", response_model=list[RegionOut])
async def regions(
    account_id: uuid.UUID, session: DbSession, keyring: KeyringDep, settings: SettingsDep
) -> list[RegionOut]:
    """Asked of the provider now (a 502 says what it answered otherwise)."""
    async with cloud_accounts.connected(session, keyring, settings, account_id) as provider:
        return [RegionOut(id=r.id, name=r.name) for r in await provider.regions()]


@accounts_router.get("/{account_id}/sizes", response_model=list[SizeOut])
async def sizes(
    account_id: uuid.UUID, session: DbSession, keyring: KeyringDep, settings: SettingsDep
) -> list[SizeOut]:
    async with cloud_accounts.connected(session, keyring, settings, account_id) as provider:
        return [
            SizeOut(
                id=s.id,
                vcpus=s.vcpus,
                memory_mb=s.memory_mb,
                disk_gb=s.disk_gb,
                hourly_price=s.hourly_price,
                regions=list(s.regions),
            )
            for s in await provider.sizes()
        ]


@accounts_router.get("/{account_id}/nodes", response_model=list[NodeOut])
async def nodes(
    account_id: uuid.UUID, session: DbSession, keyring: KeyringDep, settings: SettingsDep
) -> list[NodeOut]:
    """Every machine the account has, ours or not: what a reconcile looks at."""
    async with cloud_accounts.connected(session, keyring, settings, account_id) as provider:
        return [cloud_accounts.node_out(n) for n in await provider.list_nodes()]


@builds_router.post("/servers/create", response_model=BuildsOut, status_code=202)
async def create_servers(
    body: ServerCreate,
    ctx: Context,
    session: DbSession,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> BuildsOut:
    items = await builds.create_servers(session, ctx, body, builds.BUILD, idempotency_key)
    return BuildsOut(items=items)


@builds_router.post("/servers/{server_id}/destroy", response_model=BuildOut, status_code=202)
async def destroy_server(server_id: uuid.UUID, ctx: Context, session: DbSession) -> BuildOut:
    return await builds.destroy_server(session, ctx, server_id, builds.BUILD)


@builds_router.get("/server-builds", response_model=BuildsOut)
async def list_builds(
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    status: Annotated[str | None, Query(pattern=r"^[a-z]{1,16}$")] = None,
    server_id: uuid.UUID | None = None,
) -> BuildsOut:
    return BuildsOut(items=await builds.list_builds(session, limit, status, server_id))


@builds_router.get("/server-builds/{build_id}", response_model=BuildOut)
async def get_build(build_id: uuid.UUID, session: DbSession) -> BuildOut:
    return await builds.get_build(session, build_id)


@builds_router.post("/server-builds/{build_id}/retry", response_model=BuildOut, status_code=202)
async def retry_build(build_id: uuid.UUID, ctx: Context, session: DbSession) -> BuildOut:
    return await builds.retry_build(session, ctx, build_id, builds.BUILD)


@builds_router.post("/servers/{server_id}/hibernate", status_code=202)
async def hibernate_server(
    server_id: uuid.UUID, ctx: Context, session: DbSession
) -> dict[str, str]:
    """Put it to sleep now, as its schedule would; the answer names the job."""
    job_id = await hibernation.request_action(session, ctx, server_id, "stop")
    return {"job_id": str(job_id)}


@builds_router.post("/servers/{server_id}/wake", status_code=202)
async def wake_server(server_id: uuid.UUID, ctx: Context, session: DbSession) -> dict[str, str]:
    job_id = await hibernation.request_action(session, ctx, server_id, "start")
    return {"job_id": str(job_id)}


@hibernation_router.get("", response_model=list[ScheduleOut])
async def list_schedules(session: DbSession) -> list[ScheduleOut]:
    return await hibernation.list_schedules(session)


@hibernation_router.post("", response_model=ScheduleOut, status_code=201)
async def create_schedule(body: ScheduleCreate, ctx: Context, session: DbSession) -> ScheduleOut:
    return await hibernation.create_schedule(session, ctx, body)


@hibernation_router.get("/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(schedule_id: uuid.UUID, session: DbSession) -> ScheduleOut:
    return await hibernation.schedule_out(
        session, await hibernation.require_schedule(session, schedule_id)
    )


@hibernation_router.patch("/{schedule_id}", response_model=ScheduleOut)
async def update_schedule(
    schedule_id: uuid.UUID, body: ScheduleUpdate, ctx: Context, session: DbSession
) -> ScheduleOut:
    return await hibernation.update_schedule(session, ctx, schedule_id, body)


@hibernation_router.delete("/{schedule_id}", status_code=204)
async def delete_schedule(schedule_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await hibernation.delete_schedule(session, ctx, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

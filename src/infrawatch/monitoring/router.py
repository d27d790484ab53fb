"""Monitor routes (operators write, viewers read) and the public push
endpoints, where the token in the path is the credential."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, status

from infrawatch.accounts.security import Context, authorize, current_actor
from infrawatch.audit.service import jsonable
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import etag
from infrawatch.core.context import Actor
from infrawatch.core.pagination import Page
from infrawatch.core.runtime import DbSession, KeyringDep, WriteSession
from infrawatch.monitoring import service, templates
from infrawatch.monitoring.checks import run_check
from infrawatch.monitoring.probes import ProbeResult
from infrawatch.monitoring.probes.http import HttpClient
from infrawatch.monitoring.push import judge_push, push_state
from infrawatch.monitoring.schemas import (
    CheckResultOut,
    MonitorCreate,
    MonitorOut,
    MonitorStatus,
    MonitorType,
    MonitorUpdate,
    StoredResultOut,
    TransitionOut,
    UptimeWindow,
)
from infrawatch.monitoring.specs import spec_from_row

router = APIRouter(tags=["monitoring"], dependencies=[Depends(authorize())])
push_router = APIRouter(tags=["monitoring"])

Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=2048)]
IfMatch = Annotated[str | None, Header(max_length=256)]
Token = Annotated[str, Path(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


def _presenter(
    request: Request, keyring: KeyringDep, actor: Annotated[Actor, Depends(current_actor)]
) -> service.Presenter:
    return service.Presenter(keyring, str(request.base_url), actor.can_write)


Presenter = Annotated[service.Presenter, Depends(_presenter)]


def _reply(response: Response, result: tuple[MonitorOut, int]) -> MonitorOut:
    response.headers["ETag"] = etag(result[1])
    return result[0]


@router.get("/monitors", response_model=Page[MonitorOut])
async def list_monitors(
    session: DbSession,
    presenter: Presenter,
    limit: Limit = 50,
    cursor: Cursor = None,
    sort: Annotated[str | None, Query(max_length=200)] = None,
    type: MonitorType | None = None,
    status: MonitorStatus | None = None,
    server_id: uuid.UUID | None = None,
    critical: bool | None = None,
    name: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")] = None,
) -> Page[MonitorOut]:
    filters = {"type": type, "status": status, "server_id": server_id, "critical": critical}
    return await service.list_monitors(
        session, presenter, filters={**filters, "name": name}, sort=sort, cursor=cursor, limit=limit
    )


@router.post("/monitors", response_model=MonitorOut, status_code=status.HTTP_201_CREATED)
async def create_monitor(
    body: MonitorCreate, ctx: Context, session: DbSession, presenter: Presenter, response: Response
) -> MonitorOut:
    monitor = _reply(response, await service.create_monitor(session, ctx, body, presenter))
    response.headers["Location"] = f"/api/v1/monitors/{monitor.id}"
    return monitor


@router.get("/monitors/{monitor_id}", response_model=MonitorOut)
async def get_monitor(
    monitor_id: uuid.UUID, session: DbSession, presenter: Presenter, response: Response
) -> MonitorOut:
    monitor = await service.require(session, monitor_id)
    return _reply(
        response, (await service.present_one(session, monitor, presenter), monitor.version)
    )


@router.patch("/monitors/{monitor_id}", response_model=MonitorOut)
async def update_monitor(
    monitor_id: uuid.UUID,
    body: MonitorUpdate,
    ctx: Context,
    session: DbSession,
    presenter: Presenter,
    response: Response,
    if_match: IfMatch = None,
) -> MonitorOut:
    result = await service.update_monitor(session, ctx, monitor_id, body, if_match, presenter)
    return _reply(response, result)


@router.delete("/monitors/{monitor_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_monitor(monitor_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await service.delete_monitor(session, ctx, monitor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/monitors/{monitor_id}/pause", response_model=MonitorOut)
async def pause_monitor(
    monitor_id: uuid.UUID,
    ctx: Context,
    session: DbSession,
    presenter: Presenter,
    response: Response,
) -> MonitorOut:
    return _reply(response, await service.set_paused(session, ctx, monitor_id, True, presenter))


@router.post("/monitors/{monitor_id}/resume", response_model=MonitorOut)
async def resume_monitor(
    monitor_id: uuid.UUID,
    ctx: Context,
    session: DbSession,
    presenter: Presenter,
    response: Response,
) -> MonitorOut:
    return _reply(response, await service.set_paused(session, ctx, monitor_id, False, presenter))


@router.post("/monitors/{monitor_id}/check", response_model=CheckResultOut)
async def check_now(
    monitor_id: uuid.UUID, session: DbSession, keyring: KeyringDep
) -> CheckResultOut:
    """Runs the check here and now and returns everything it saw. The result
    is not fed to the state machine: the schedule alone moves the state."""
    monitor = await service.require(session, monitor_id)
    spec = spec_from_row(monitor, keyring)
    state = push_state(monitor)

    async def read_push(_: uuid.UUID) -> ProbeResult | None:
        return judge_push(state, utcnow())

    async with HttpClient() as http:
        checked = await run_check(spec, http, read_push, utcnow())
    if checked is None:
        return CheckResultOut(
            monitor_id=monitor.id,
            checked_at=utcnow(),
            ok=False,
            outcome="down",
            latency_ms=0.0,
            status_code=None,
            error="no ping received yet; the period and grace have not passed",
            details=None,
        )
    result = checked.result
    return CheckResultOut(
        monitor_id=monitor.id,
        checked_at=checked.checked_at,
        ok=checked.outcome != "down",
        outcome=checked.outcome,
        latency_ms=result.latency_ms,
        status_code=result.status_code,
        error=result.error,
        details=jsonable(result.details) or None,
    )


@router.get("/monitors/{monitor_id}/results", response_model=Page[StoredResultOut])
async def monitor_results(
    monitor_id: uuid.UUID, session: DbSession, limit: Limit = 100, cursor: Cursor = None
) -> Page[StoredResultOut]:
    return await service.results(session, monitor_id, cursor, limit)


@router.get("/monitors/{monitor_id}/uptime", response_model=dict[str, UptimeWindow])
async def monitor_uptime(monitor_id: uuid.UUID, session: DbSession) -> dict[str, UptimeWindow]:
    return await service.uptime(session, monitor_id)


@router.get("/monitors/{monitor_id}/uptime/daily")
async def monitor_daily_uptime(
    monitor_id: uuid.UUID, session: DbSession, days: Annotated[int, Query(ge=1, le=400)] = 90
) -> list[dict[str, Any]]:
    await service.require(session, monitor_id)
    return await service.daily_uptime(session, monitor_id, days)


@router.get("/monitors/{monitor_id}/transitions", response_model=list[TransitionOut])
async def monitor_transitions(
    monitor_id: uuid.UUID, session: DbSession, limit: Limit = 100
) -> list[TransitionOut]:
    return await service.transitions(session, monitor_id, limit)


@router.get("/templates/{template_id}/monitors")
async def get_template_monitors(template_id: uuid.UUID, session: DbSession) -> list[dict[str, Any]]:
    """Monitors created for every server the template stamps out."""
    return await templates.get_template_monitors(session, template_id)


@router.put("/templates/{template_id}/monitors")
async def set_template_monitors(
    template_id: uuid.UUID,
    body: Annotated[list[dict[str, Any]], Body(max_length=50)],
    session: DbSession,
    keyring: KeyringDep,
) -> list[dict[str, Any]]:
    """Replace them. Names need {server}; targets may use {hostname} and {ip}.
    A password in a target is stored encrypted and shown as ***."""
    return await templates.set_template_monitors(session, template_id, body, keyring)


# --- push: the token is the credential ---------------------------------------------


async def _push(
    session: Any, token: str, kind: str, exit_code: int | None = None
) -> dict[str, str]:
    await service.record_push(session, token, kind, exit_code)
    return {"status": "ok"}


@push_router.get("/push/{token}")
@push_router.post("/push/{token}")
async def push_success(token: Token, session: WriteSession) -> dict[str, str]:
    return await _push(session, token, "success")


@push_router.get("/push/{token}/start")
@push_router.post("/push/{token}/start")
async def push_start(token: Token, session: WriteSession) -> dict[str, str]:
    return await _push(session, token, "start")


@push_router.get("/push/{token}/fail")
@push_router.post("/push/{token}/fail")
async def push_fail(token: Token, session: WriteSession) -> dict[str, str]:
    return await _push(session, token, "fail")


@push_router.get("/push/{token}/{exit_code}")
@push_router.post("/push/{token}/{exit_code}")
async def push_exit_code(
    token: Token, exit_code: Annotated[int, Path(ge=0, le=255)], session: WriteSession
) -> dict[str, str]:
    return await _push(session, token, "success" if exit_code == 0 else "fail", exit_code)

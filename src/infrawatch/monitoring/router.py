"""Monitor routes (operators write, viewers read) and the public push
endpoints, where the token in the path is the credential."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, status

from infrawatch.accounts.security import Context, authorize, current_actor
from infrawatch.audit.service import jsonable
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned
from infrawatch.core.context import Actor
from infrawatch.core.errors import InvalidInput, NotFound, Unauthorized
from infrawatch.core.pagination import Page
from infrawatch.core.runtime import (
    DbSession,
    IfMatch,
    KeyringDep,
    SettingsDep,
    WriteSession,
    with_etag,
)
from infrawatch.credentials import agent_tokens as credential_agent_tokens
from infrawatch.monitoring import agents, history, service, templates
from infrawatch.monitoring.agents import judge_received
from infrawatch.monitoring.engine.checks import run_check
from infrawatch.monitoring.engine.specs import spec_from_row
from infrawatch.monitoring.schemas import (
    AgentReportAccepted,
    AgentReportIn,
    AgentTokenOut,
    CheckResultOut,
    FleetPointOut,
    LocationStateOut,
    MonitorCreate,
    MonitorOut,
    MonitorStatus,
    MonitorType,
    MonitorUpdate,
    ProbeLocationOut,
    SeriesPointOut,
    StoredResultOut,
    TransitionOut,
    UptimeWindow,
)
from infrawatch.probes import ProbeResult
from infrawatch.probes.http import HttpClient

router = APIRouter(tags=["monitoring"], dependencies=[Depends(authorize())])
push_router = APIRouter(tags=["monitoring"])

Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=2048)]
Token = Annotated[str, Path(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


def _presenter(
    request: Request, keyring: KeyringDep, actor: Annotated[Actor, Depends(current_actor)]
) -> service.Presenter:
    return service.Presenter(keyring, str(request.base_url), actor.can_write)


Presenter = Annotated[service.Presenter, Depends(_presenter)]


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
    monitor = with_etag(response, await service.create_monitor(session, ctx, body, presenter))
    response.headers["Location"] = f"/api/v1/monitors/{monitor.id}"
    return monitor


@router.get("/monitors/{monitor_id}", response_model=MonitorOut)
async def get_monitor(
    monitor_id: uuid.UUID, session: DbSession, presenter: Presenter, response: Response
) -> MonitorOut:
    monitor = await service.require(session, monitor_id)
    return with_etag(
        response, Versioned(await service.present_one(session, monitor, presenter), monitor.version)
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
    return with_etag(response, result)


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
    return with_etag(response, await service.set_paused(session, ctx, monitor_id, True, presenter))


@router.post("/monitors/{monitor_id}/resume", response_model=MonitorOut)
async def resume_monitor(
    monitor_id: uuid.UUID,
    ctx: Context,
    session: DbSession,
    presenter: Presenter,
    response: Response,
) -> MonitorOut:
    return with_etag(response, await service.set_paused(session, ctx, monitor_id, False, presenter))


@router.post("/monitors/{monitor_id}/check", response_model=CheckResultOut)
async def check_now(
    monitor_id: uuid.UUID, session: DbSession, keyring: KeyringDep
) -> CheckResultOut:
    """Runs the check here and now and returns everything it saw. The result
    is not fed to the state machine: the schedule alone moves the state."""
    monitor = await service.require(session, monitor_id)
    spec = spec_from_row(monitor, keyring)
    received = await judge_received(session, monitor, utcnow())

    async def read_push(_: uuid.UUID) -> ProbeResult | None:
        return received

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
            error="nothing received yet (no ping or agent report); its period and grace "
            "have not passed",
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


SeriesRange = Annotated[
    Literal["1h", "24h", "7d", "30d"],
    Query(description="1h and 24h from 5-minute rollups, 7d from hourly ones, 30d from daily"),
]


@router.get("/monitors/{monitor_id}/series", response_model=list[SeriesPointOut])
async def monitor_series(
    monitor_id: uuid.UUID,
    session: DbSession,
    range: SeriesRange = "24h",
) -> list[SeriesPointOut]:
    await service.require(session, monitor_id)
    return [
        SeriesPointOut(**vars(point)) for point in await history.series(session, monitor_id, range)
    ]


@router.get("/fleet/series", response_model=list[FleetPointOut])
async def fleet_series(session: DbSession, range: SeriesRange = "24h") -> list[FleetPointOut]:
    """All monitors together per bucket: uptime, latency and state changes."""
    return [FleetPointOut(**vars(point)) for point in await history.fleet_series(session, range)]


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


@router.get("/monitors/{monitor_id}/locations", response_model=list[LocationStateOut])
async def monitor_locations(
    monitor_id: uuid.UUID, session: DbSession, settings: SettingsDep
) -> list[LocationStateOut]:
    """What each location the monitor lists saw last (counted: the location
    has a live worker, so its word is in the quorum)."""
    return await service.location_states(session, monitor_id, settings.engine_lease_seconds)


@router.get("/locations", response_model=list[ProbeLocationOut])
async def probe_locations(session: DbSession, settings: SettingsDep) -> list[ProbeLocationOut]:
    """Every location a worker checked from, and whether one is alive there."""
    return await service.probe_locations(session, settings.engine_lease_seconds)


@router.delete("/locations/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def forget_probe_location(
    name: Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")],
    ctx: Context,
    session: WriteSession,
    settings: SettingsDep,
) -> Response:
    """Forget a location given up for good (refused while it has live workers)."""
    await service.forget_probe_location(session, ctx, name, settings.engine_lease_seconds)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


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


# --- the host agent ------------------------------------------------------------------

# No bearer user token: the agent's own token (one per server) is the credential.
agent_report_router = APIRouter(tags=["agents"])
agents_router = APIRouter(tags=["agents"], dependencies=[Depends(authorize())])


@agent_report_router.post(
    "/agents/report", response_model=AgentReportAccepted, status_code=status.HTTP_202_ACCEPTED
)
async def agent_report(
    body: AgentReportIn,
    session: WriteSession,
    authorization: Annotated[str | None, Header(max_length=200)] = None,
) -> AgentReportAccepted:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("an agent reports with Authorization: Bearer <its agent token>")
    server_id = await agents.record_report(session, token.strip(), body)
    return AgentReportAccepted(
        server_id=server_id, next_report_in_seconds=agents.REPORT_EVERY_SECONDS
    )


@agents_router.post("/agents/tokens", response_model=AgentTokenOut, status_code=201)
async def create_agent_token(
    body: Annotated[dict[str, uuid.UUID], Body(examples=[{"server_id": "…"}])],
    ctx: Context,
    session: DbSession,
    keyring: KeyringDep,
) -> AgentTokenOut:
    """A new agent token for the server (its old one stops working)."""
    if set(body) != {"server_id"}:
        raise InvalidInput("give server_id only", loc=("body", "server_id"))
    token = await credential_agent_tokens.issue_agent_token(
        session, ctx, keyring, body["server_id"]
    )
    return AgentTokenOut(server_id=body["server_id"], token=token)


@agents_router.delete("/agents/tokens/{server_id}", status_code=204)
async def revoke_agent_token(server_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await credential_agent_tokens.revoke_agent_token(session, ctx, server_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@agents_router.get("/servers/{server_id}/agent")
async def latest_agent_report(server_id: uuid.UUID, session: DbSession) -> dict[str, Any]:
    """The agent's latest report, as it sent it."""
    found = await agents.latest(session, server_id)
    if found is None:
        raise NotFound("no agent report from this server yet")
    at, readings = found
    return {"server_id": str(server_id), "reported_at": at.isoformat(), "readings": readings}


@agents_router.get("/servers/{server_id}/host-metrics")
async def host_metrics(
    server_id: uuid.UUID,
    session: DbSession,
    period: Literal["5m", "1h", "1d"] = "5m",
    hours: Annotated[int, Query(ge=1, le=24 * 400)] = 24,
) -> dict[str, Any]:
    """CPU, memory, disk, load per core and network per bucket: the charts."""
    since = agents.bucket_start(utcnow() - timedelta(hours=hours), period)
    items = await agents.host_metrics(session, server_id, period, since)
    return {"server_id": str(server_id), "period": period, "items": jsonable(items)}

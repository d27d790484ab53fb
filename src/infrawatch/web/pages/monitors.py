from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from infrawatch.core.errors import InvalidInput
from infrawatch.core.runtime import DbSession, KeyringDep
from infrawatch.inventory import service as inventory
from infrawatch.monitoring import history
from infrawatch.monitoring import service as monitoring
from infrawatch.monitoring.schemas import MonitorType
from infrawatch.web.session import OperatorDep, Viewer, ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)

TYPES = ("http", "tcp", "ping", "dns", "tls", "push", "ssh")
STATUSES = ("up", "degraded", "down", "pending", "paused", "maintenance")
TARGET_HINTS = {
    "http": "https://example.internal/health",
    "tcp": "host:port",
    "ping": "host or IP",
    "dns": "name to resolve",
    "tls": "host:443",
    "push": "(none: the monitor gets a URL to call)",
    "ssh": "host:22",
}


def _presenter(request: Request, keyring: Any, viewer: Viewer) -> monitoring.Presenter:
    return monitoring.Presenter(keyring, str(request.base_url), viewer.can_write)


@router.get("/monitors", response_class=HTMLResponse)
async def monitors(
    request: Request,
    viewer: ViewerDep,
    session: DbSession,
    keyring: KeyringDep,
    # Plain strings: the filter form sends "" for "any".
    status: Annotated[str, Query(max_length=32)] = "",
    type: Annotated[str, Query(max_length=32)] = "",
    name: Annotated[str, Query(max_length=128)] = "",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    status = status if status in STATUSES else ""
    type = type if type in TYPES else ""
    filters = {
        "status": status or None,
        "type": type or None,
        "name": f"*{name}*" if name else None,
    }
    error = None
    try:
        page = await monitoring.list_monitors(
            session,
            _presenter(request, keyring, viewer),
            filters=filters,
            sort="name",
            cursor=cursor,
            limit=100,
        )
    except InvalidInput as exc:
        error, page = exc.message, None
    items = page.items if page else []
    found = await history.histories(session, [m.id for m in items], 1)
    lease = request.app.state.runtime.settings.engine_lease_seconds
    locations = await monitoring.probe_locations(session, lease)
    return render(
        "monitors/list.html",
        # Shown once there is more than one place to check from, or one went away.
        locations=locations
        if len(locations) > 1 or any(p.state == "gone" for p in locations)
        else [],
        viewer=viewer,
        nav="monitors",
        title="Monitors",
        page=page,
        items=items,
        histories=found,
        error=error,
        params={"status": status, "type": type, "name": name},
        types=TYPES,
        statuses=STATUSES,
        first_page=cursor is None,
    )


@router.get("/monitors/new", response_class=HTMLResponse)
async def new_monitor(
    viewer: OperatorDep,
    session: DbSession,
    server_id: uuid.UUID | None = None,
    type: MonitorType = "http",
) -> Response:
    server = (await inventory.get_server(session, server_id)).value if server_id else None
    return render(
        "monitors/new.html",
        viewer=viewer,
        nav="monitors",
        title="New monitor",
        monitor=None,
        server=server,
        chosen_type=type,
        types=TYPES,
        hints=TARGET_HINTS,
    )


@router.get("/monitors/{monitor_id}", response_class=HTMLResponse)
async def monitor_page(
    request: Request,
    monitor_id: uuid.UUID,
    viewer: ViewerDep,
    session: DbSession,
    keyring: KeyringDep,
) -> Response:
    found = await monitoring.require(session, monitor_id)
    monitor = await monitoring.present_one(session, found, _presenter(request, keyring, viewer))
    server = None
    if monitor.server_id is not None:
        server = (await inventory.get_server(session, monitor.server_id)).value
    histories = await history.histories(session, [monitor.id], 90)
    lease = request.app.state.runtime.settings.engine_lease_seconds
    locations = {}
    if monitor.locations:
        locations = {
            seen.location: seen
            for seen in await monitoring.location_states(session, monitor.id, lease)
        }
    return render(
        "monitors/detail.html",
        locations=locations,
        live_locations={
            p.name for p in await monitoring.probe_locations(session, lease) if p.live_workers
        }
        if monitor.locations
        else set(),
        viewer=viewer,
        nav="monitors",
        title=monitor.name,
        monitor=monitor,
        version=found.version,
        server=server,
        history=histories.get(monitor.id),
        uptime=await monitoring.uptime(session, monitor.id),
        # The last result until a live one arrives: never "last: —" for a
        # monitor that has been checked.
        last=next(iter((await monitoring.results(session, monitor.id, None, 1)).items), None),
        transitions=await monitoring.transitions(session, monitor.id, 30),
        chosen_type=monitor.type,
        types=TYPES,
        hints=TARGET_HINTS,
    )

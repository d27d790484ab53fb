from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from infrawatch.core.runtime import DbSession
from infrawatch.discovery import service as discovery
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/tools", response_class=HTMLResponse)
async def tools(viewer: ViewerDep, session: DbSession) -> Response:
    return render(
        "tools/index.html",
        viewer=viewer,
        nav="tools",
        title="Tools",
        scans=await discovery.list_scans(session, 20),
    )


@router.get("/tools/scans/{scan_id}", response_class=HTMLResponse)
async def scan_page(scan_id: uuid.UUID, viewer: ViewerDep, session: DbSession) -> Response:
    scan = await discovery.get_scan(session, scan_id)
    hosts = await discovery.scan_hosts(session, scan_id)
    return render(
        "tools/scan.html", viewer=viewer, nav="tools", title="Scan", scan=scan, hosts=hosts
    )

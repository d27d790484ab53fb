from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from infrawatch.alerting import incidents as alerting_incidents
from infrawatch.core.runtime import DbSession
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/incidents", response_class=HTMLResponse)
async def incidents(
    viewer: ViewerDep,
    session: DbSession,
    status: Literal["open", "resolved", ""] = "",
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    page = await alerting_incidents.list_incidents(session, status or None, cursor, 50)
    return render(
        "incidents/list.html",
        viewer=viewer,
        nav="incidents",
        title="Incidents",
        page=page,
        status=status,
        first_page=cursor is None,
    )


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
async def incident(incident_id: uuid.UUID, viewer: ViewerDep, session: DbSession) -> Response:
    found = await alerting_incidents.get_incident(session, incident_id)
    return render(
        "incidents/detail.html", viewer=viewer, nav="incidents", title=found.title, incident=found
    )

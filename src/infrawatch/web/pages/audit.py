from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from infrawatch.audit import service as audit
from infrawatch.core.errors import InvalidInput
from infrawatch.core.runtime import DbSession
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Query(max_length=128, pattern=r"^[^\x00]*$")]


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    viewer: ViewerDep,
    session: DbSession,
    actor: Text = "",
    action: Text = "",
    object_type: Text = "",
    object_id: Text = "",
    since: datetime | None = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
) -> Response:
    error = None
    try:
        page = await audit.list_records(
            session,
            limit=50,
            cursor=cursor,
            actor=actor or None,
            action=action or None,
            object_type=object_type or None,
            object_id=object_id or None,
            since=since,
        )
    except InvalidInput as exc:
        error, page = exc.message, None
    params = {
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "since": since.isoformat() if since else "",
    }
    return render(
        "audit.html",
        viewer=viewer,
        nav="audit",
        title="Audit log",
        page=page,
        params=params,
        error=error,
        first_page=cursor is None,
    )

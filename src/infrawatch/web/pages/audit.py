from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from infrawatch.audit import service as audit
from infrawatch.core.errors import InvalidInput
from infrawatch.core.runtime import DbSession
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Query(max_length=128, pattern=r"^[^\x00]*$")]

# Where each kind of object is shown in the console ({id} is its id).
OBJECT_PAGES = {
    "server": "/servers/{id}",
    "monitor": "/monitors/{id}",
    "incident": "/incidents/{id}",
    "job": "/jobs/{id}",
    "ssh_key": "/credentials/keys/{id}",
    "secret": "/credentials",
    "status_page": "/status-pages/{id}",
    "provisioning_run": "/provisioning/runs/{id}",
    "notification_channel": "/alerting",
    "alert_rule": "/alerting",
    "maintenance_window": "/alerting",
    "user": "/admin",
    "token": "/admin",
    "provider_account": "/provisioning/servers",
    "group": "/servers?q=group:{name}",
}
SHOWN_CHANGES = 4


@dataclass(frozen=True)
class Line:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class Row:
    record: Any
    href: str | None
    lines: list[Line]
    more: int


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items()) or "{}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "[]"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def changed_fields(changes: dict[str, Any]) -> list[Line]:
    """`field: before → after`; the record holds only what changed
    (audit.service.diff), a create no before, a delete no after."""
    before = changes.get("before") or {}
    after = changes.get("after") or {}
    return [
        Line(
            field,
            _value(before.get(field)) if field in before else "",
            _value(after.get(field)) if field in after else "",
        )
        for field in sorted(set(before) | set(after))
    ]


def _href(record: Any) -> str | None:
    pattern = OBJECT_PAGES.get(record.object_type)
    if pattern is None or not record.object_id:
        return None
    if "{name}" in pattern:
        name = (record.changes.get("after") or record.changes.get("before") or {}).get("name")
        return pattern.format(name=quote(str(name))) if name else None
    return pattern.format(id=quote(record.object_id))


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
    rows = []
    for record in page.items if page else []:
        lines = changed_fields(record.changes)
        rows.append(
            Row(record, _href(record), lines[:SHOWN_CHANGES], max(0, len(lines) - SHOWN_CHANGES))
        )
    return render(
        "audit.html",
        rows=rows,
        viewer=viewer,
        nav="audit",
        title="Audit log",
        page=page,
        params=params,
        error=error,
        first_page=cursor is None,
    )

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from infrawatch.audit.schemas import AuditRecordOut
from infrawatch.core.errors import InvalidInput, NotFound
from infrawatch.core.pagination import Page
from infrawatch.core.runtime import Counts, DbSession, KeyringDep
from infrawatch.inventory import dependencies, search
from infrawatch.inventory import service as inventory
from infrawatch.inventory.lifecycle import ALLOWED_TRANSITIONS, Health, Lifecycle
from infrawatch.inventory.schemas import ServerOut
from infrawatch.monitoring import agents, history
from infrawatch.monitoring import service as monitoring
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (25, 50, 100, 200)
SORTABLE = ("name", "hostname", "ip_address", "lifecycle", "health", "environment", "updated_at")
SEARCH_HINTS = (
    "web-*",
    "lifecycle:active",
    "health:!healthy",
    "tag:env=prod",
    "region:eu-*",
    "group:edge",
    "created:>2026-01-01",
    '"free text"',
)


@router.get("/servers", response_class=HTMLResponse)
async def servers(
    viewer: ViewerDep,
    session: DbSession,
    counts: Counts,
    q: Annotated[str, Query(max_length=2000)] = "",
    # Plain strings: the filter form sends "" for "any".
    lifecycle: Annotated[str, Query(max_length=32)] = "",
    health: Annotated[str, Query(max_length=32)] = "",
    environment: Annotated[str, Query(max_length=64)] = "",
    sort: Annotated[str, Query(max_length=40)] = "name",
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    limit: int = 50,
    deleted: bool = False,
) -> Response:
    terms: list[search.Term] = []
    lifecycle = lifecycle if lifecycle in {x.value for x in Lifecycle} else ""
    health = health if health in {x.value for x in Health} else ""
    if lifecycle:
        terms.append(search.TextMatch("lifecycle", lifecycle))
    if health:
        terms.append(search.TextMatch("health", health))
    if environment:
        terms.append(search.TextMatch("environment", environment))
    filters = inventory.ServerFilters(q=q or None, include_deleted=deleted, terms=terms)
    error = None
    page: Page[ServerOut] = Page(items=[], total=0, next_cursor=None)
    try:
        page = await inventory.list_servers(
            session,
            filters,
            sort=sort if sort.lstrip("-") in SORTABLE else "name",
            cursor=cursor,
            limit=limit if limit in PAGE_SIZES else 50,
            counts=counts,
        )
    except InvalidInput as exc:
        error = exc.message  # a bad query is shown by the box, not as an error page
    params = {
        "q": q,
        "lifecycle": lifecycle,
        "health": health,
        "environment": environment,
        "sort": sort,
        "limit": str(limit),
        "deleted": "true" if deleted else "",
    }
    return render(
        "servers/list.html",
        viewer=viewer,
        nav="servers",
        title="Servers",
        page=page,
        params=params,
        error=error,
        first_page=cursor is None,
        lifecycles=[x.value for x in Lifecycle],
        healths=[x.value for x in Health],
        sortable=SORTABLE,
        page_sizes=PAGE_SIZES,
        hints=SEARCH_HINTS,
    )


@router.get("/servers/by-name/{name:path}", response_class=HTMLResponse)
async def server_by_name(name: str, viewer: ViewerDep, session: DbSession) -> Response:
    """The host map's cells carry names, not ids: names are unique among
    live servers, so one opens the server's page from here."""
    found = (await inventory.live_ids_by_name(session, [name])).get(name)
    if found is None:
        raise NotFound(f"no live server is named {name!r}")
    return RedirectResponse(f"/servers/{found}", status_code=303)


@router.get("/servers/{server_id}", response_class=HTMLResponse)
async def server_page(
    request: Request,
    server_id: uuid.UUID,
    viewer: ViewerDep,
    session: DbSession,
    keyring: KeyringDep,
) -> Response:
    found = await inventory.get_server(session, server_id)
    server = found.value
    presenter = monitoring.Presenter(keyring, str(request.base_url), viewer.can_write)
    monitors = (
        await monitoring.list_monitors(
            session,
            presenter,
            filters={"server_id": server.id},
            sort="name",
            cursor=None,
            limit=100,
        )
    ).items
    histories = await history.histories(session, [m.id for m in monitors], 90)
    audit: Page[AuditRecordOut] = await inventory.history(session, server.id, limit=20, cursor=None)
    return render(
        "servers/detail.html",
        viewer=viewer,
        nav="servers",
        title=server.name,
        server=server,
        version=found.version,
        transitions=sorted(t.value for t in ALLOWED_TRANSITIONS[Lifecycle(server.lifecycle)]),
        health_history=await inventory.health_history(session, server.id, 30),
        monitors=monitors,
        histories=histories,
        upstream=await dependencies.upstream(session, server.id),
        downstream=await dependencies.dependents(session, server.id, 5),
        audit=audit.items,
        agent=await agents.latest(session, server.id),
    )

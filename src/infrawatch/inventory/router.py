"""Inventory routes: thin. Parse, authorize (router level), call the service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from infrawatch.accounts.security import Context, authorize
from infrawatch.audit.schemas import AuditRecordOut
from infrawatch.core.errors import InvalidInput
from infrawatch.core.pagination import Page
from infrawatch.core.runtime import Counts, DbSession, IfMatch, SettingsDep, with_etag
from infrawatch.inventory import (
    bulk,
    dependencies,
    groups,
    hostmap,
    search,
    service,
    templates,
    transfer,
)
from infrawatch.inventory.lifecycle import Health, Lifecycle
from infrawatch.inventory.schemas import (
    TAG_KEY_PATTERN,
    BulkRequest,
    BulkResult,
    DependencyCreate,
    DependencyOut,
    GroupCreate,
    GroupOut,
    GroupUpdate,
    HealthTransitionOut,
    HostMapOut,
    ImportReport,
    InstantiateRequest,
    ServerCreate,
    ServerOut,
    ServerReplace,
    ServerUpdate,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
)

router = APIRouter(tags=["inventory"], dependencies=[Depends(authorize())])

Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]
Cursor = Annotated[
    str | None, Query(max_length=2048, description="next_cursor of the previous page")
]
Sort = Annotated[str | None, Query(max_length=200, description="e.g. -created_at,name")]
Q = Annotated[str | None, Query(max_length=2000, description="search language, see docs")]
FieldFilter = Annotated[
    str | None, Query(max_length=255, pattern=r"^[^\x00]*$", description="exact, * globs")
]
MAX_IMPORT_BYTES = 64 * 1024 * 1024  # a file import's body limit (others: max_body_bytes)


def _filters(
    q: Q = None,
    include_deleted: bool = False,
    name: FieldFilter = None,
    hostname: FieldFilter = None,
    ip_address: FieldFilter = None,
    provider: FieldFilter = None,
    region: FieldFilter = None,
    os: FieldFilter = None,
    environment: FieldFilter = None,
    owner: FieldFilter = None,
    description: FieldFilter = None,
    ssh_port: Annotated[int | None, Query(ge=1, le=65535)] = None,
    lifecycle: Lifecycle | None = None,
    health: Health | None = None,
    tag: Annotated[
        list[str] | None, Query(max_length=20, description="key or key=value; repeatable")
    ] = None,
    group: FieldFilter = None,
) -> service.ServerFilters:
    terms: list[search.Term] = []
    text_filters = {
        "name": name,
        "hostname": hostname,
        "ip_address": ip_address,
        "provider": provider,
        "region": region,
        "os": os,
        "environment": environment,
        "owner": owner,
        "description": description,
        "lifecycle": lifecycle.value if lifecycle else None,
        "health": health.value if health else None,
    }
    terms.extend(search.TextMatch(k, v) for k, v in text_filters.items() if v is not None)
    if ssh_port is not None:
        terms.append(search.Comparison("ssh_port", "=", ssh_port))
    for raw in tag or []:
        key, has_value, value = raw.partition("=")
        if not search.TAG_KEY.match(key) or "\x00" in value:
            raise InvalidInput(
                f"invalid tag filter {raw!r}; use key or key=value", loc=("query", "tag")
            )
        terms.append(search.TagMatch(key, value if has_value else None))
    if group is not None:
        terms.append(search.GroupMatch(group))
    return service.ServerFilters(q=q, include_deleted=include_deleted, terms=terms)


Filters = Annotated[service.ServerFilters, Depends(_filters)]


# --- servers ------------------------------------------------------------------


@router.get("/servers", response_model=Page[ServerOut])
async def list_servers(
    session: DbSession,
    counts: Counts,
    filters: Filters,
    limit: Limit = 50,
    cursor: Cursor = None,
    sort: Sort = None,
) -> Page[ServerOut]:
    return await service.list_servers(
        session, filters, sort=sort, cursor=cursor, limit=limit, counts=counts
    )


@router.post("/servers", response_model=ServerOut, status_code=status.HTTP_201_CREATED)
async def create_server(
    body: ServerCreate, ctx: Context, session: DbSession, response: Response
) -> ServerOut:
    server = with_etag(response, await service.create_server(session, ctx, body.model_dump()))
    response.headers["Location"] = f"/api/v1/servers/{server.id}"
    return server


@router.get(
    "/servers/map",
    response_model=HostMapOut,
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
async def server_map(
    request: Request,
    session: DbSession,
    counts: Counts,
    tag: Annotated[
        str | None,
        Query(max_length=63, pattern=TAG_KEY_PATTERN, description="group by this tag's value"),
    ] = None,
    if_none_match: Annotated[str | None, Header(max_length=256)] = None,
) -> Response:
    """Every live server as one cell (the console's host map), columnar and
    gzip'd when the client takes it; a 304 while the inventory is unchanged."""
    found = await hostmap.host_map(session, counts, tag)
    headers = {"ETag": found.etag, "Vary": "Accept-Encoding", "Cache-Control": "no-cache"}
    if if_none_match == found.etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(found.gzipped, media_type="application/json", headers=headers)
    return Response(found.body, media_type="application/json", headers=headers)


@router.get(
    "/servers/export",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}, "application/yaml": {}, "application/json": {}}}},
)
async def export_servers(
    session: DbSession,
    filters: Filters,
    format: Annotated[transfer.Format, Query(description="csv, yaml or json")] = "csv",
) -> Response:
    text = await transfer.export_servers(session, filters, format)
    media = {"csv": "text/csv", "yaml": "application/yaml", "json": "application/json"}[format]
    return Response(
        text,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="servers.{format}"'},
    )


@router.post(
    "/servers/import",
    response_model=ImportReport,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_servers(
    request: Request,
    ctx: Context,
    session: DbSession,
    settings: SettingsDep,
    format: Annotated[transfer.Format, Query(description="csv, yaml or json")] = "csv",
    dry_run: bool = False,
    create_groups: Annotated[
        bool, Query(description="make the static groups rows name that do not exist yet")
    ] = False,
) -> ImportReport:
    body = await request.body()  # at most MAX_IMPORT_BYTES: the app's BodySizeLimit
    return await transfer.import_servers(
        session,
        ctx,
        body,
        format,
        dry_run=dry_run,
        max_rows=settings.import_max_rows,
        create_groups=create_groups,
    )


@router.post("/servers/bulk", response_model=BulkResult)
async def bulk_action(
    body: BulkRequest, ctx: Context, session: DbSession, settings: SettingsDep
) -> BulkResult:
    return await bulk.run_bulk(session, ctx, body, settings.bulk_max_servers)


@router.get("/servers/{server_id}", response_model=ServerOut)
async def get_server(server_id: uuid.UUID, session: DbSession, response: Response) -> ServerOut:
    result = await service.get_server(session, server_id)
    return with_etag(response, result)


@router.patch("/servers/{server_id}", response_model=ServerOut)
async def update_server(
    server_id: uuid.UUID,
    body: ServerUpdate,
    ctx: Context,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> ServerOut:
    result = await service.update_server(
        session, ctx, server_id, body.model_dump(exclude_unset=True), if_match
    )
    return with_etag(response, result)


@router.put("/servers/{server_id}", response_model=ServerOut)
async def replace_server(
    server_id: uuid.UUID,
    body: ServerReplace,
    ctx: Context,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> ServerOut:
    result = await service.update_server(session, ctx, server_id, body.model_dump(), if_match)
    return with_etag(response, result)


@router.delete("/servers/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_server(
    server_id: uuid.UUID,
    ctx: Context,
    session: DbSession,
    if_match: IfMatch = None,
    purge: Annotated[bool, Query(description="remove for good (admin only)")] = False,
) -> None:
    await service.delete_server(session, ctx, server_id, purge=purge, if_match=if_match)


@router.post("/servers/{server_id}/restore", response_model=ServerOut)
async def restore_server(
    server_id: uuid.UUID, ctx: Context, session: DbSession, response: Response
) -> ServerOut:
    result = await service.restore_server(session, ctx, server_id)
    return with_etag(response, result)


@router.get("/servers/{server_id}/history", response_model=Page[AuditRecordOut])
async def server_history(
    server_id: uuid.UUID, session: DbSession, limit: Limit = 50, cursor: Cursor = None
) -> Page[Any]:
    return await service.history(session, server_id, limit=limit, cursor=cursor)


@router.get("/servers/{server_id}/health-history", response_model=list[HealthTransitionOut])
async def server_health_history(
    server_id: uuid.UUID, session: DbSession, limit: Limit = 100
) -> list[Any]:
    return await service.health_history(session, server_id, limit)


@router.get("/servers/{server_id}/dependencies", response_model=list[DependencyOut])
async def list_dependencies(server_id: uuid.UUID, session: DbSession) -> list[DependencyOut]:
    return await dependencies.upstream(session, server_id)


@router.post(
    "/servers/{server_id}/dependencies",
    response_model=DependencyOut,
    status_code=status.HTTP_201_CREATED,
)
async def add_dependency(
    server_id: uuid.UUID, body: DependencyCreate, ctx: Context, session: DbSession
) -> DependencyOut:
    return await dependencies.add_dependency(session, ctx, server_id, body)


@router.delete(
    "/servers/{server_id}/dependencies/{upstream_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def remove_dependency(
    server_id: uuid.UUID, upstream_id: uuid.UUID, ctx: Context, session: DbSession
) -> None:
    await dependencies.remove_dependency(session, ctx, server_id, upstream_id)


@router.get("/servers/{server_id}/dependents", response_model=list[DependencyOut])
async def list_dependents(
    server_id: uuid.UUID,
    session: DbSession,
    depth: Annotated[int, Query(ge=1, le=dependencies.MAX_DEPTH)] = dependencies.MAX_DEPTH,
) -> list[DependencyOut]:
    return await dependencies.dependents(session, server_id, depth)


# --- groups -------------------------------------------------------------------


@router.get("/groups", response_model=list[GroupOut])
async def list_groups(session: DbSession) -> list[GroupOut]:
    return await groups.list_groups(session)


@router.post("/groups", response_model=GroupOut, status_code=status.HTTP_201_CREATED)
async def create_group(
    body: GroupCreate, ctx: Context, session: DbSession, response: Response
) -> GroupOut:
    return with_etag(response, await groups.create_group(session, ctx, body))


@router.get("/groups/{group_id}", response_model=GroupOut)
async def get_group(group_id: uuid.UUID, session: DbSession, response: Response) -> GroupOut:
    return with_etag(response, await groups.get_group(session, group_id))


@router.patch("/groups/{group_id}", response_model=GroupOut)
async def update_group(
    group_id: uuid.UUID,
    body: GroupUpdate,
    ctx: Context,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> GroupOut:
    return with_etag(response, await groups.update_group(session, ctx, group_id, body, if_match))


@router.delete("/groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_group(group_id: uuid.UUID, ctx: Context, session: DbSession) -> None:
    await groups.delete_group(session, ctx, group_id)


@router.get("/groups/{group_id}/servers", response_model=Page[ServerOut])
async def group_members(
    group_id: uuid.UUID,
    session: DbSession,
    counts: Counts,
    limit: Limit = 50,
    cursor: Cursor = None,
    sort: Sort = None,
) -> Page[ServerOut]:
    return await groups.members(
        session, group_id, sort=sort, cursor=cursor, limit=limit, counts=counts
    )


# --- templates ----------------------------------------------------------------


@router.get("/templates", response_model=list[TemplateOut])
async def list_templates(session: DbSession) -> list[TemplateOut]:
    return await templates.list_templates(session)


@router.post("/templates", response_model=TemplateOut, status_code=status.HTTP_201_CREATED)
async def create_template(
    body: TemplateCreate, ctx: Context, session: DbSession, response: Response
) -> TemplateOut:
    return with_etag(response, await templates.create_template(session, ctx, body))


@router.get("/templates/{template_id}", response_model=TemplateOut)
async def get_template(
    template_id: uuid.UUID, session: DbSession, response: Response
) -> TemplateOut:
    return with_etag(response, await templates.get_template(session, template_id))


@router.patch("/templates/{template_id}", response_model=TemplateOut)
async def update_template(
    template_id: uuid.UUID,
    body: TemplateUpdate,
    ctx: Context,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> TemplateOut:
    return with_etag(
        response, await templates.update_template(session, ctx, template_id, body, if_match)
    )


@router.delete("/templates/{template_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_template(template_id: uuid.UUID, ctx: Context, session: DbSession) -> None:
    await templates.delete_template(session, ctx, template_id)


@router.post(
    "/templates/{template_id}/instantiate",
    response_model=list[ServerOut],
    status_code=status.HTTP_201_CREATED,
)
async def instantiate_template(
    template_id: uuid.UUID, body: InstantiateRequest, ctx: Context, session: DbSession
) -> list[ServerOut]:
    return await templates.instantiate(session, ctx, template_id, body)

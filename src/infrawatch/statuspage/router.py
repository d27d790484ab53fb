"""Managing status pages (/api/v1/status-pages): operators write, viewers
read. The public pages themselves are served by the web layer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response, status

from infrawatch.accounts.security import Context, authorize
from infrawatch.core.concurrency import Versioned
from infrawatch.core.runtime import DbSession, IfMatch, with_etag
from infrawatch.statuspage import announcements as status_announcements
from infrawatch.statuspage import pages as status_pages
from infrawatch.statuspage.schemas import (
    IncidentCreate,
    IncidentPatch,
    IncidentUpdateCreate,
    PageCreate,
    PageOut,
    PageUpdate,
    StatusIncidentOut,
)

router = APIRouter(
    prefix="/status-pages", tags=["status pages"], dependencies=[Depends(authorize())]
)
NO_CONTENT = status.HTTP_204_NO_CONTENT


@router.get("", response_model=list[PageOut])
async def list_pages(session: DbSession) -> list[PageOut]:
    return await status_pages.list_pages(session)


@router.post("", response_model=PageOut, status_code=status.HTTP_201_CREATED)
async def create_page(body: PageCreate, ctx: Context, session: DbSession) -> PageOut:
    return await status_pages.create_page(session, ctx, body)


@router.get("/{page_id}", response_model=PageOut)
async def get_page(page_id: uuid.UUID, session: DbSession, response: Response) -> PageOut:
    page = await status_pages.get_page(session, page_id)
    return with_etag(response, Versioned(status_pages.page_out(page), page.version))


@router.patch("/{page_id}", response_model=PageOut)
async def update_page(
    page_id: uuid.UUID,
    body: PageUpdate,
    ctx: Context,
    session: DbSession,
    response: Response,
    if_match: IfMatch = None,
) -> PageOut:
    return with_etag(
        response, await status_pages.update_page(session, ctx, page_id, body, if_match)
    )


@router.delete("/{page_id}", status_code=NO_CONTENT)
async def delete_page(page_id: uuid.UUID, ctx: Context, session: DbSession) -> Response:
    await status_pages.delete_page(session, ctx, page_id)
    return Response(status_code=NO_CONTENT)


@router.get("/{page_id}/incidents", response_model=list[StatusIncidentOut])
async def list_incidents(page_id: uuid.UUID, session: DbSession) -> list[StatusIncidentOut]:
    return await status_announcements.list_incidents(session, page_id)


@router.post(
    "/{page_id}/incidents",
    response_model=StatusIncidentOut,
    status_code=status.HTTP_201_CREATED,
)
async def create_incident(
    page_id: uuid.UUID, body: IncidentCreate, ctx: Context, session: DbSession
) -> StatusIncidentOut:
    return await status_announcements.create_incident(session, ctx, page_id, body)


@router.get("/{page_id}/incidents/{incident_id}", response_model=StatusIncidentOut)
async def get_incident(
    page_id: uuid.UUID, incident_id: uuid.UUID, session: DbSession
) -> StatusIncidentOut:
    return await status_announcements.get_incident(session, page_id, incident_id)


@router.patch("/{page_id}/incidents/{incident_id}", response_model=StatusIncidentOut)
async def patch_incident(
    page_id: uuid.UUID,
    incident_id: uuid.UUID,
    body: IncidentPatch,
    ctx: Context,
    session: DbSession,
) -> StatusIncidentOut:
    return await status_announcements.patch_incident(session, ctx, page_id, incident_id, body)


@router.post(
    "/{page_id}/incidents/{incident_id}/updates",
    response_model=StatusIncidentOut,
    status_code=status.HTTP_201_CREATED,
)
async def add_update(
    page_id: uuid.UUID,
    incident_id: uuid.UUID,
    body: IncidentUpdateCreate,
    ctx: Context,
    session: DbSession,
) -> StatusIncidentOut:
    return await status_announcements.add_update(session, ctx, page_id, incident_id, body)


@router.delete("/{page_id}/incidents/{incident_id}", status_code=NO_CONTENT)
async def delete_incident(
    page_id: uuid.UUID, incident_id: uuid.UUID, ctx: Context, session: DbSession
) -> Response:
    await status_announcements.delete_incident(session, ctx, page_id, incident_id)
    return Response(status_code=NO_CONTENT)

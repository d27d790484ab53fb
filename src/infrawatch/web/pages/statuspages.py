from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from infrawatch.core.runtime import DbSession
from infrawatch.monitoring import history
from infrawatch.statuspage import announcements as status_announcements
from infrawatch.statuspage import pages as page_service
from infrawatch.web.session import ViewerDep
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/status-pages", response_class=HTMLResponse)
async def status_pages(viewer: ViewerDep, session: DbSession) -> Response:
    return render(
        "statuspages/list.html",
        viewer=viewer,
        nav="status-pages",
        title="Status pages",
        pages=await page_service.list_pages(session),
    )


@router.get("/status-pages/{page_id}", response_class=HTMLResponse)
async def edit_status_page(page_id: uuid.UUID, viewer: ViewerDep, session: DbSession) -> Response:
    page = page_service.page_out(await page_service.get_page(session, page_id))
    monitors = await history.monitor_choices(session)
    return render(
        "statuspages/edit.html",
        viewer=viewer,
        nav="status-pages",
        title=page.title,
        page=page,
        sections=[s.model_dump(mode="json") for s in page.sections],
        choices=[{"id": str(m.id), "name": m.name, "type": m.type} for m in monitors],
        incidents=await status_announcements.list_incidents(session, page_id),
    )

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from infrawatch.alerting import service as alerting
from infrawatch.core.errors import NotFound
from infrawatch.core.runtime import Counts, DbSession
from infrawatch.inventory import service as inventory
from infrawatch.monitoring import history
from infrawatch.statuspage import service as statuspage
from infrawatch.web.session import require_viewer, viewer_from_cookie
from infrawatch.web.status import render_page
from infrawatch.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, session: DbSession, counts: Counts) -> Response:
    host = request.headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower()
    if _could_be_domain(host):
        try:  # a status page served on its own domain
            page = await statuspage.published_page(session, domain=host)
        except NotFound:
            pass
        else:
            return render_page(await statuspage.public_view(session, page))
    viewer = await require_viewer(request)
    return render(
        "overview.html",
        viewer=viewer,
        nav="overview",
        title="Overview",
        fleet=await inventory.fleet_counts(session, counts),
        monitors=await history.status_counts(session),
        incidents=(await alerting.list_incidents(session, "open", None, 8)).items,
        open_incidents=(await alerting.list_incidents(session, "open", None, 1)).total,
        slowest=await history.slowest(session, request.app.state.page_memo),
        changes=await history.latest_changes(session),
    )


def _could_be_domain(host: str) -> bool:
    """Worth looking up as a status page's domain: a dotted name, not an IP."""
    if "." not in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


@router.get("/login", response_class=HTMLResponse)
async def login(request: Request, next: str = "/") -> Response:
    # Only a path on this site: never an open redirect.
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    if await viewer_from_cookie(request) is not None:
        return RedirectResponse(target, status_code=303)
    return render("login.html", viewer=None, next=target)

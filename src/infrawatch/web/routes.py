"""Everything a person reaches with a browser, put on the app in one call."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from infrawatch.web import status, ws
from infrawatch.web.pages import (
    account,
    admin,
    alerting,
    audit,
    credentials,
    incidents,
    jobs,
    monitors,
    overview,
    provisioning,
    servers,
    sso,
    statuspages,
    tools,
)
from infrawatch.web.session import (
    EnrolmentRequired,
    LoginRequired,
    enrolment_redirect,
    login_redirect,
    viewer_from_cookie,
)
from infrawatch.web.templating import STATIC_DIR, render

PAGES = (
    alerting,
    incidents,
    monitors,
    overview,
    servers,
    statuspages,
    credentials,
    tools,
    provisioning,
    jobs,
    audit,
    admin,
    account,
    sso,
)


def install_console(app: FastAPI) -> None:
    app.state.page_memo = {}  # figures pages keep for a few seconds (per app)
    app.include_router(status.router)
    app.include_router(ws.router)
    for page in PAGES:
        app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/favicon.ico", include_in_schema=False)
    async def _favicon() -> Response:
        # Browsers ask for it whatever the page's <link rel="icon"> says.
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        return login_redirect(request, exc)

    @app.exception_handler(EnrolmentRequired)
    async def _enrol(request: Request, exc: EnrolmentRequired) -> Response:
        return enrolment_redirect(request)


async def html_error(request: Request, status_code: int, message: str) -> Response | None:
    """An error page for a browser asking for a page, with the console's
    navigation for someone signed in; None (JSON) for the API, badges,
    feeds and scripts."""
    path = request.url.path
    if path.startswith(("/api/", "/badge/", "/static/")) or path.endswith((".json", ".atom")):
        return None
    if "text/html" not in request.headers.get("accept", ""):
        return None
    try:
        viewer = await viewer_from_cookie(request)
    except Exception:  # the database is why we are here, perhaps: a page without the menu
        viewer = None
    return render(
        "error.html", status_code=status_code, code=status_code, viewer=viewer, message=message
    )

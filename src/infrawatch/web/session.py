"""Who is looking at a console page: the session cookie the login set. A
page without one redirects to /login; htmx requests get HX-Redirect so the
whole page moves, not a fragment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from infrawatch.accounts import service as accounts
from infrawatch.accounts.security import SESSION_COOKIE
from infrawatch.core.context import Actor, Role
from infrawatch.core.errors import Forbidden, Unauthorized
from infrawatch.core.runtime import get_runtime


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class EnrolmentRequired(Exception):
    """A session that may only enrol two-factor asked for another page."""


ENROLMENT_PAGE = "/account/two-factor"


def local_path(next_path: str) -> str:
    """Where to go after a login: only a path on this site, never an open
    redirect."""
    return next_path if next_path.startswith("/") and not next_path.startswith("//") else "/"


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, and what the page may offer them."""

    actor: Actor
    csrf_token: str
    must_enrol: bool = False  # the role requires two-factor and it is not on yet

    @property
    def can_write(self) -> bool:
        return self.actor.can_write

    @property
    def is_admin(self) -> bool:
        return not self.actor.read_only and self.actor.role.allows(Role.admin)


async def viewer_from_cookie(request: Request) -> Viewer | None:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    runtime = get_runtime(request)
    try:
        async with runtime.db.unit_of_work(write=False) as session:
            # Marked below: such a viewer is sent to the enrolment page.
            auth = await accounts.authenticate(session, secret, enrolling=True)
    except Unauthorized:
        return None
    if auth.needs_touch:
        async with runtime.db.unit_of_work() as session:
            await accounts.touch_token(session, auth.token_id)
    session_secret = runtime.settings.session_secret
    csrf = accounts.csrf_token_for(
        session_secret.get_secret_value() if session_secret else "", auth.token_hash
    )
    return Viewer(auth.actor, csrf, must_enrol=auth.kind == "enrol")


async def require_viewer(request: Request) -> Viewer:
    viewer = await viewer_from_cookie(request)
    if viewer is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    if viewer.must_enrol and request.url.path != ENROLMENT_PAGE:
        raise EnrolmentRequired()
    return viewer


async def require_operator(viewer: Annotated[Viewer, Depends(require_viewer)]) -> Viewer:
    if not viewer.can_write:
        raise Forbidden("this page needs the operator role")
    return viewer


async def require_admin(viewer: Annotated[Viewer, Depends(require_viewer)]) -> Viewer:
    if not viewer.is_admin:
        raise Forbidden("this page needs the admin role")
    return viewer


def enrolment_redirect(request: Request) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": ENROLMENT_PAGE})
    return RedirectResponse(ENROLMENT_PAGE, status_code=303)


def login_redirect(request: Request, exc: LoginRequired) -> Response:
    target = "/login?next=" + quote(exc.next_path, safe="/")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


ViewerDep = Annotated[Viewer, Depends(require_viewer)]
OperatorDep = Annotated[Viewer, Depends(require_operator)]
AdminDep = Annotated[Viewer, Depends(require_admin)]

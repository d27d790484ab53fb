"""Single sign-on in the browser: off to the identity provider, and back
with a code that becomes a console session (accounts.oidc does the
protocol). Not under /api/v1: these are pages a browser is sent through."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from infrawatch.accounts import oidc
from infrawatch.accounts import service as accounts
from infrawatch.accounts.router import session_response
from infrawatch.core.context import Actor, OperationContext, Role
from infrawatch.core.errors import AppError, NotFound
from infrawatch.core.runtime import get_runtime, request_id, source_ip
from infrawatch.web.session import local_path

router = APIRouter(include_in_schema=False)
STATE_COOKIE = "infrawatch_oidc"
COOKIE_PATH = "/auth/oidc"


def _callback_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + f"{COOKIE_PATH}/callback"


@router.get(f"{COOKIE_PATH}/login")
async def sso_start(request: Request, next: str = "/") -> Response:
    runtime = get_runtime(request)
    if not oidc.enabled(runtime.settings):
        raise NotFound("single sign-on is not set up here (INFRAWATCH_OIDC_ISSUER)")
    url, state = await oidc.begin(
        runtime.settings, runtime.keyring, _callback_url(request), local_path(next)
    )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=oidc.STATE_TTL_SECONDS,
        httponly=True,
        samesite="lax",  # sent on the provider's redirect back, a top-level GET
        secure=request.url.scheme == "https",
        path=COOKIE_PATH,
    )
    return response


@router.get(f"{COOKIE_PATH}/callback")
async def sso_callback(request: Request) -> Response:
    runtime = get_runtime(request)
    settings = runtime.settings
    if not oidc.enabled(settings):
        raise NotFound("single sign-on is not set up here (INFRAWATCH_OIDC_ISSUER)")
    ctx = OperationContext(Actor(None, "sso", Role.viewer), request_id(request), source_ip(request))
    try:
        identity, next_path = await oidc.finish(
            settings,
            runtime.keyring,
            request.cookies.get(STATE_COOKIE),
            dict(request.query_params),
            _callback_url(request),
        )
        ctx = ctx.with_actor(Actor(None, identity.username, Role.viewer))
        role = oidc.role_for(settings, identity.groups)
        async with runtime.db.unit_of_work() as session:
            outcome = await accounts.sso_login(session, ctx, settings, identity, role)
    except AppError as exc:
        async with runtime.db.unit_of_work() as session:
            await accounts.sso_failed(session, ctx, exc.message)
        raise
    response = RedirectResponse(local_path(next_path), status_code=303)
    session_response(request, response, outcome)
    response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)
    return response

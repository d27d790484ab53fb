"""Authentication and authorization as FastAPI dependencies.

Every /api/v1 router declares `authorize(...)` at router level, so a new
route is protected by default; the RBAC test walks the OpenAPI document to
prove it. Dependencies run before the body is validated, so an anonymous
caller gets 401 and a viewer 403 whatever they send."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from infrawatch.accounts import service
from infrawatch.accounts.service import Authenticated
from infrawatch.core.context import Actor, OperationContext, Role
from infrawatch.core.errors import Forbidden, Unauthorized
from infrawatch.core.runtime import SAFE_METHODS, get_runtime, request_id, source_ip

SESSION_COOKIE = "infrawatch_session"
CSRF_COOKIE = "infrawatch_csrf"
CSRF_HEADER = "x-csrf-token"
# What a session that must enrol two-factor first may reach.
ENROLMENT_PATHS = frozenset(f"/api/v1/auth/{p}" for p in ("totp", "totp/confirm", "me", "logout"))


def _credentials(request: Request) -> tuple[str, bool] | None:
    """(secret, from_cookie) or None."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("expected 'Authorization: Bearer <token>'")
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else None


async def authentication(request: Request) -> Authenticated:
    found = _credentials(request)
    if found is None:
        raise Unauthorized()
    secret, from_cookie = found
    runtime = get_runtime(request)
    async with runtime.db.unit_of_work(write=False) as session:
        enrolling = request.url.path in ENROLMENT_PATHS
        auth = await service.authenticate(session, secret, enrolling=enrolling)
    if from_cookie and request.method not in SAFE_METHODS:
        # A cookie rides along on cross-site requests; a header the page had
        # to read from our own origin does not (double-submit CSRF check).
        session_secret = runtime.settings.session_secret
        expected = service.csrf_token_for(
            session_secret.get_secret_value() if session_secret else "", auth.token_hash
        )
        if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), expected):
            raise Forbidden("missing or wrong CSRF token (send the X-CSRF-Token header)")
    if auth.needs_touch:
        async with runtime.db.unit_of_work() as session:
            await service.touch_token(session, auth.token_id)
    return auth


AuthDep = Annotated[Authenticated, Depends(authentication)]


async def current_actor(auth: AuthDep) -> Actor:
    return auth.actor


def operation_context(
    request: Request, actor: Annotated[Actor, Depends(current_actor)]
) -> OperationContext:
    return OperationContext(
        actor=actor, request_id=request_id(request), source_ip=source_ip(request)
    )


Context = Annotated[OperationContext, Depends(operation_context)]


def authorize(
    write: Role = Role.operator, read: Role = Role.viewer
) -> Callable[[Request, Actor], Awaitable[None]]:
    """Router-level policy: `read` role for safe methods, `write` for the rest."""

    async def check(request: Request, actor: Annotated[Actor, Depends(current_actor)]) -> None:
        if request.method in SAFE_METHODS:
            if not actor.role.allows(read):
                raise Forbidden(f"this needs the {read.value} role or higher")
            return
        if actor.read_only:
            raise Forbidden("this token is read-only")
        if not actor.role.allows(write):
            raise Forbidden(f"this needs the {write.value} role or higher")

    return check

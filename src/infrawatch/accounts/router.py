from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Request, Response, status

from infrawatch.accounts import service, two_factor
from infrawatch.accounts.schemas import (
    LoginRequest,
    LoginResponse,
    RecoveryCodes,
    TokenCreate,
    TokenCreated,
    TokenOut,
    TotpCode,
    TotpEnrolment,
    UnlockOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from infrawatch.accounts.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    AuthDep,
    Context,
    authorize,
)
from infrawatch.core.context import Actor, OperationContext, Role
from infrawatch.core.crypto import hash_token
from infrawatch.core.runtime import DbSession, get_runtime, request_id, source_ip

auth_router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(
    prefix="/auth", tags=["auth"], dependencies=[Depends(authorize(write=Role.viewer))]
)
admin_router = APIRouter(
    tags=["accounts"], dependencies=[Depends(authorize(write=Role.admin, read=Role.admin))]
)


@auth_router.post("/login", response_model=LoginResponse)
async def login(body: LoginRequest, request: Request, response: Response) -> LoginResponse:
    runtime = get_runtime(request)
    anonymous = Actor(None, body.username[:64], Role.viewer)
    ctx = OperationContext(anonymous, request_id(request), source_ip(request))
    # Our own unit of work: a failed attempt must be committed before the 401.
    async with runtime.db.unit_of_work() as session:
        outcome = await service.login(
            session,
            ctx,
            runtime.settings,
            runtime.keyring,
            body.username,
            body.password,
            body.otp,
        )
    if outcome.error is not None:
        raise outcome.error
    return session_response(request, response, outcome)


def session_response(
    request: Request, response: Response, outcome: service.LoginOutcome
) -> LoginResponse:
    """The session cookie, its CSRF companion and the login's answer (a
    password login and a single sign-on end the same way)."""
    runtime = get_runtime(request)
    assert outcome.token and outcome.expires_at and outcome.user
    secret = runtime.settings.session_secret
    csrf = service.csrf_token_for(
        secret.get_secret_value() if secret else "", hash_token(outcome.token)
    )
    secure = request.url.scheme == "https"
    max_age = runtime.settings.session_ttl_seconds
    response.set_cookie(
        SESSION_COOKIE, outcome.token, max_age=max_age, httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="strict", secure=secure
    )
    return LoginResponse(
        token=outcome.token,
        csrf_token=csrf,
        expires_at=outcome.expires_at,
        user=outcome.user,
        must_enrol_totp=outcome.must_enrol,
    )


@me_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(auth: AuthDep, ctx: Context, session: DbSession) -> Response:
    await service.logout(session, ctx, auth)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@me_router.get("/me", response_model=UserOut)
async def me(ctx: Context, session: DbSession) -> UserOut:
    assert ctx.actor.user_id is not None
    return await service.get_user(session, ctx.actor.user_id)


@me_router.post("/totp", response_model=TotpEnrolment)
async def start_totp(ctx: Context, session: DbSession, request: Request) -> TotpEnrolment:
    """Start two-factor enrolment: a new secret as an otpauth URI and a QR
    code for an authenticator app. Nothing changes until /confirm."""
    assert ctx.actor.user_id is not None
    enrolment = await two_factor.start_enrolment(
        session, ctx, get_runtime(request).keyring, ctx.actor.user_id
    )
    return TotpEnrolment(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@me_router.post("/totp/confirm", response_model=RecoveryCodes)
async def confirm_totp(
    body: TotpCode, auth: AuthDep, ctx: Context, session: DbSession, request: Request
) -> RecoveryCodes:
    """Turn two-factor on with a code from the new secret; the answer holds
    the recovery codes, shown this once."""
    assert ctx.actor.user_id is not None
    codes = await two_factor.confirm_enrolment(
        session,
        ctx,
        get_runtime(request).keyring,
        ctx.actor.user_id,
        body.code,
        auth.token_id if auth.kind == "enrol" else None,
    )
    return RecoveryCodes(recovery_codes=codes)


@me_router.post("/totp/disable", status_code=status.HTTP_204_NO_CONTENT)
async def disable_totp(
    body: TotpCode, ctx: Context, session: DbSession, request: Request
) -> Response:
    """Turn one's own two-factor off, with a current or recovery code (not
    where one's role requires it)."""
    assert ctx.actor.user_id is not None
    runtime = get_runtime(request)
    await two_factor.disable(
        session, ctx, runtime.keyring, runtime.settings, ctx.actor.user_id, body.code
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin_router.post("/users/{user_id}/totp/reset", response_model=UserOut)
async def reset_totp(user_id: uuid.UUID, ctx: Context, session: DbSession) -> UserOut:
    """For a user who lost their authenticator and recovery codes: their
    password alone logs them in again (and they enrol anew where their role
    requires two-factor)."""
    return UserOut.model_validate(await two_factor.reset(session, ctx, user_id))


@admin_router.get("/users", response_model=list[UserOut])
async def list_users(session: DbSession) -> list[UserOut]:
    return await service.list_users(session)


@admin_router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreate, ctx: Context, session: DbSession) -> UserOut:
    return await service.create_user(session, ctx, body)


@admin_router.get("/users/{user_id}", response_model=UserOut)
async def get_user(user_id: uuid.UUID, session: DbSession) -> UserOut:
    return await service.get_user(session, user_id)


@admin_router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, ctx: Context, session: DbSession
) -> UserOut:
    return await service.update_user(session, ctx, user_id, body)


@admin_router.post("/users/{user_id}/unlock", response_model=UnlockOut)
async def unlock_user(user_id: uuid.UUID, ctx: Context, session: DbSession) -> UnlockOut:
    """Forget the user's recent failed logins, so a rate limit no longer
    applies to them (see docs/reliability.md for the limits)."""
    user = await service.get_user(session, user_id)
    return UnlockOut(forgotten=await service.unlock_user(session, ctx, user.username))


@admin_router.delete("/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: uuid.UUID, ctx: Context, session: DbSession) -> None:
    await service.delete_user(session, ctx, user_id)


@admin_router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(session: DbSession) -> list[TokenOut]:
    return await service.list_tokens(session)


@admin_router.post("/tokens", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenCreate, ctx: Context, session: DbSession) -> TokenCreated:
    return await service.create_token(session, ctx, body)


@admin_router.delete("/tokens/{token_id}", response_model=TokenOut)
async def revoke_token(token_id: uuid.UUID, ctx: Context, session: DbSession) -> TokenOut:
    return await service.revoke_token(session, ctx, token_id)

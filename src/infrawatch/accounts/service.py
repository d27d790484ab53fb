"""Users, API tokens, console sessions and login."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.accounts import repository, two_factor
from infrawatch.accounts.models import ApiToken, LoginFailure, User
from infrawatch.accounts.oidc import Identity
from infrawatch.accounts.passwords import hash_password, verify_password
from infrawatch.accounts.schemas import (
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
    UserUpdate,
)
from infrawatch.audit import service as audit
from infrawatch.core.clock import as_utc, utcnow
from infrawatch.core.config import Settings
from infrawatch.core.context import Actor, OperationContext, Role
from infrawatch.core.crypto import Keyring, hash_token
from infrawatch.core.errors import (
    AppError,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)

TOKEN_PREFIX = "iw_"  # noqa: S105 (a marker, not a secret)
# last_used_at is advisory; writing it on every request would turn every read
# into a write. Once a minute is precise enough to spot unused tokens.
TOUCH_INTERVAL = timedelta(seconds=60)


def _new_token_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def csrf_token_for(session_secret: str, token_hash: str) -> str:
    return hmac.new(session_secret.encode(), token_hash.encode(), hashlib.sha256).hexdigest()


def _user_fields(user: User) -> dict[str, object]:
    return {"username": user.username, "role": user.role, "is_active": user.is_active}


# --- users ------------------------------------------------------------------


async def create_user(session: AsyncSession, ctx: OperationContext, data: UserCreate) -> UserOut:
    if await repository.get_user_by_name(session, data.username) is not None:
        raise Conflict(f"a user named {data.username!r} already exists")
    user = User(
        id=uuid.uuid4(),
        username=data.username,
        role=data.role.value,
        password_hash=await hash_password(data.password),
        is_active=True,
        created_at=utcnow(),
    )
    repository.add(session, user)
    await session.flush()
    await audit.record(
        session, ctx, audit.Change("user.create", "user", user.id, None, _user_fields(user))
    )
    return UserOut.model_validate(user)


async def list_users(session: AsyncSession) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in await repository.list_users(session)]


async def count_users(session: AsyncSession) -> int:
    return await repository.count_users(session)


async def _require_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await repository.get_user(session, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> UserOut:
    return UserOut.model_validate(await _require_user(session, user_id))


async def _ensure_an_admin_remains(session: AsyncSession, user: User) -> None:
    if (
        user.role == Role.admin
        and user.is_active
        and await repository.count_active_admins(session) <= 1
    ):
        raise Conflict("this is the last active admin; make another admin first")


async def update_user(
    session: AsyncSession, ctx: OperationContext, user_id: uuid.UUID, data: UserUpdate
) -> UserOut:
    user = await _require_user(session, user_id)
    before = _user_fields(user)
    demoted = data.role is not None and data.role != Role.admin
    if (demoted or data.is_active is False) and user.role == Role.admin:
        await _ensure_an_admin_remains(session, user)
    if data.role is not None:
        user.role = data.role.value
    if data.is_active is not None:
        user.is_active = data.is_active
    after = _user_fields(user)
    if data.password is not None:
        user.password_hash = await hash_password(data.password)
        after["password"] = "changed"  # noqa: S105 (audited as a fact, never the value)
    await audit.record(session, ctx, audit.Change("user.update", "user", user.id, before, after))
    return UserOut.model_validate(user)


async def delete_user(session: AsyncSession, ctx: OperationContext, user_id: uuid.UUID) -> None:
    user = await _require_user(session, user_id)
    await _ensure_an_admin_remains(session, user)
    await audit.record(
        session, ctx, audit.Change("user.delete", "user", user.id, _user_fields(user), None)
    )
    await repository.delete_user(session, user)


# --- tokens -----------------------------------------------------------------


def _token_out(token: ApiToken, user: User) -> TokenOut:
    return TokenOut(
        id=token.id,
        user_id=user.id,
        username=user.username,
        name=token.name,
        prefix=token.prefix,
        read_only=token.read_only,
        created_at=token.created_at,
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


async def create_token(
    session: AsyncSession, ctx: OperationContext, data: TokenCreate
) -> TokenCreated:
    user = await repository.get_user_by_name(session, data.username)
    if user is None:
        raise NotFound(f"no user named {data.username!r}")
    secret = _new_token_secret()
    now = utcnow()
    token = ApiToken(
        id=uuid.uuid4(),
        user_id=user.id,
        kind="api",
        name=data.name,
        token_hash=hash_token(secret),
        prefix=secret[:10],
        read_only=data.read_only,
        created_at=now,
        expires_at=now + timedelta(days=data.expires_in_days) if data.expires_in_days else None,
    )
    repository.add(session, token)
    await session.flush()
    fields = {
        "user": user.username,
        "name": token.name,
        "read_only": token.read_only,
        "expires_at": token.expires_at,
    }
    await audit.record(session, ctx, audit.Change("token.create", "token", token.id, None, fields))
    return TokenCreated(**_token_out(token, user).model_dump(), token=secret)


async def list_tokens(session: AsyncSession) -> list[TokenOut]:
    return [_token_out(t, u) for t, u in await repository.list_api_tokens(session)]


async def revoke_token(
    session: AsyncSession, ctx: OperationContext, token_id: uuid.UUID
) -> TokenOut:
    found = await repository.get_token(session, token_id)
    if found is None or found[0].kind != "api":
        raise NotFound("no such token")
    token, user = found
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        await audit.record(
            session,
            ctx,
            audit.Change(
                "token.revoke",
                "token",
                token.id,
                {"revoked_at": None},
                {"revoked_at": token.revoked_at, "name": token.name, "user": user.username},
            ),
        )
    return _token_out(token, user)


# --- authentication ---------------------------------------------------------


@dataclass(frozen=True)
class Authenticated:
    actor: Actor
    token_id: uuid.UUID
    token_hash: str
    kind: str
    needs_touch: bool = False


async def authenticate(
    session: AsyncSession, secret: str, *, enrolling: bool = False
) -> Authenticated:
    """Resolve a bearer token or session cookie to the acting user. A session
    that must enrol two-factor first is refused unless `enrolling` (the
    caller is one of the few places such a session may go)."""
    token_hash = hash_token(secret)
    found = await repository.token_with_user_by_hash(session, token_hash)
    if found is None:
        raise Unauthorized("invalid token")
    token, user = found
    now = utcnow()
    if token.revoked_at is not None:
        raise Unauthorized("this token was revoked")
    if token.expires_at is not None and as_utc(token.expires_at) <= now:
        raise Unauthorized("this token has expired")
    if not user.is_active:
        raise Unauthorized("this user is deactivated")
    if token.kind == "enrol" and not enrolling:
        raise Forbidden(
            "two-factor is required for your role: enrol first "
            "(POST /api/v1/auth/totp, then /api/v1/auth/totp/confirm)"
        )
    actor = Actor(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        token_name=token.name if token.kind == "api" else None,
        read_only=token.read_only,
    )
    stale = token.last_used_at is None or now - as_utc(token.last_used_at) > TOUCH_INTERVAL
    return Authenticated(actor, token.id, token_hash, token.kind, needs_touch=stale)


async def touch_token(session: AsyncSession, token_id: uuid.UUID) -> None:
    await repository.touch_token(session, token_id, utcnow())


@dataclass(frozen=True)
class LoginOutcome:
    token: str | None = None
    expires_at: datetime | None = None
    user: UserOut | None = None
    error: AppError | None = None
    must_enrol: bool = False


async def _check_rate_limit(
    session: AsyncSession, settings: Settings, username: str, source_ip: str
) -> None:
    """Brute force is slowed where it comes from, so it cannot be used to
    lock someone else out:

    - one address guessing one user: `login_max_failures_per_user_ip` free
      tries, then a wait that doubles with each further failure (1 s, 2 s,
      4 s … up to the window);
    - one address guessing many users: `login_max_failures_per_ip`;
    - many addresses guessing one user: past `login_max_failures_per_user`,
      only addresses that have not failed for this user may still try.
    A client that has not failed itself logs in with the right password
    whatever strangers did (the rule that let 5 anonymous failures lock the
    admin out for 15 minutes)."""
    now = utcnow()
    window = timedelta(seconds=settings.login_failure_window_seconds)
    since = now - window
    pair = await repository.count_failures(
        session, since=since, username=username, source_ip=source_ip
    )
    free = settings.login_max_failures_per_user_ip
    if pair.count >= free and pair.latest is not None:
        wait = min(2.0 ** (pair.count - free), window.total_seconds())
        ready_at = as_utc(pair.latest) + timedelta(seconds=wait)
        if ready_at > now:
            _refuse("this user from this address", ready_at - now)
    per_ip = await repository.count_failures(session, since=since, source_ip=source_ip)
    if per_ip.count >= settings.login_max_failures_per_ip and per_ip.oldest is not None:
        _refuse("this address", as_utc(per_ip.oldest) + window - now)
    if pair.count > 0:
        per_user = await repository.count_failures(session, since=since, username=username)
        if per_user.count >= settings.login_max_failures_per_user and per_user.oldest is not None:
            _refuse("this user", as_utc(per_user.oldest) + window - now)


def _refuse(who: str, retry: timedelta) -> None:
    seconds = max(math.ceil(retry.total_seconds()), 1)
    raise TooManyRequests(
        f"too many failed logins for {who}; try again in {seconds} seconds", seconds
    )


async def user_named(session: AsyncSession, username: str) -> UserOut:
    user = await repository.get_user_by_name(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return UserOut.model_validate(user)


async def unlock_user(session: AsyncSession, ctx: OperationContext, username: str) -> int:
    """Forget the user's recent failed logins (an admin's way out of a rate
    limit); -> how many were forgotten."""
    user = await repository.get_user_by_name(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    forgotten = await repository.clear_failures(session, username, older_than=utcnow())
    await audit.record(
        session, ctx, audit.Change("user.unlock", "user", user.id, None, {"forgotten": forgotten})
    )
    return forgotten


async def login(
    session: AsyncSession,
    ctx: OperationContext,
    settings: Settings,
    keyring: Keyring,
    username: str,
    password: str,
    otp: str | None = None,
) -> LoginOutcome:
    """Never raises for bad credentials: the failure must be committed (it
    feeds the rate limit and the audit trail) before the caller answers 401.
    Where two-factor is on, the password alone gets a 401 that asks for the
    code (not counted as a failure: the password was right); a wrong code
    counts like a wrong password."""
    source_ip = ctx.source_ip or "unknown"
    try:
        await _check_rate_limit(session, settings, username, source_ip)
    except TooManyRequests as exc:
        return LoginOutcome(error=exc)
    user = await repository.get_user_by_name(session, username)
    valid = await verify_password(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        reason = "inactive user" if user is not None and valid else "bad credentials"
        await _record_failure(session, ctx, username, source_ip, user, reason)
        return LoginOutcome(error=Unauthorized("invalid username or password"))
    kind = "session"
    if user.totp_secret_encrypted is not None:
        if not otp:
            return LoginOutcome(
                error=Unauthorized("two-factor is on for this user: send the code as otp")
            )
        used = await two_factor.check_code(session, keyring, user, otp)
        if used is None:
            await _record_failure(session, ctx, username, source_ip, user, "bad two-factor code")
            return LoginOutcome(error=Unauthorized("invalid two-factor code"))
        if used == "recovery":
            await audit.record(
                session,
                ctx.with_actor(Actor(user.id, user.username, Role(user.role))),
                audit.Change("auth.recovery_code_used", "user", user.id),
            )
    elif two_factor.required_for(settings, user.role):
        kind = "enrol"
    return await _open_session(session, ctx, settings, user, kind)


async def _record_failure(
    session: AsyncSession,
    ctx: OperationContext,
    username: str,
    source_ip: str,
    user: User | None,
    reason: str,
) -> None:
    repository.add(session, LoginFailure(username=username, source_ip=source_ip, at=utcnow()))
    failed_ctx = ctx.with_actor(Actor(None, username[:64], Role.viewer))
    await audit.record(
        session,
        failed_ctx,
        audit.Change(
            "auth.login_failed", "user", user.id if user else None, None, {"reason": reason}
        ),
    )


async def _open_session(
    session: AsyncSession,
    ctx: OperationContext,
    settings: Settings,
    user: User,
    kind: str,
    action: str = "auth.login",
    details: dict[str, object] | None = None,
) -> LoginOutcome:
    source_ip = ctx.source_ip or "unknown"
    now = utcnow()
    secret = _new_token_secret()
    expires_at = now + timedelta(seconds=settings.session_ttl_seconds)
    repository.add(
        session,
        ApiToken(
            id=uuid.uuid4(),
            user_id=user.id,
            kind=kind,
            name="console session",
            token_hash=hash_token(secret),
            prefix=secret[:10],
            read_only=False,
            created_at=now,
            expires_at=expires_at,
            last_used_at=now,
        ),
    )
    user.last_login_at = now
    # Only this address's failures: the owner logging in must not reset the
    # count of someone guessing from elsewhere.
    await repository.clear_failures(
        session, user.username, older_than=now - timedelta(days=1), source_ip=source_ip
    )
    actor = Actor(user.id, user.username, Role(user.role))
    await audit.record(
        session, ctx.with_actor(actor), audit.Change(action, "user", user.id, None, details)
    )
    return LoginOutcome(
        token=secret,
        expires_at=expires_at,
        user=UserOut.model_validate(user),
        must_enrol=kind == "enrol",
    )


async def logout(session: AsyncSession, ctx: OperationContext, auth: Authenticated) -> None:
    found = await repository.get_token(session, auth.token_id)
    if found is not None and found[0].kind == "session":
        found[0].revoked_at = utcnow()
    await audit.record(session, ctx, audit.Change("auth.logout", "user", ctx.actor.user_id))


# --- single sign-on ---------------------------------------------------------


async def sso_login(
    session: AsyncSession,
    ctx: OperationContext,
    settings: Settings,
    identity: Identity,
    role: Role,
) -> LoginOutcome:
    """A session for whom the identity provider vouched. The user is made on
    their first sign-on (no password: only the provider logs them in) and
    takes the role their groups give at every sign-on. A local user of the
    same name is never taken over: that would let whoever controls a name
    at the provider become them here. Two-factor is the provider's part."""
    user = await repository.get_user_by_subject(session, identity.subject)
    if user is None:
        if await repository.get_user_by_name(session, identity.username) is not None:
            raise Conflict(
                f"a user named {identity.username!r} exists here already and was not made by "
                "single sign-on; an admin must rename or remove it first"
            )
        user = User(
            id=uuid.uuid4(),
            username=identity.username,
            role=role.value,
            password_hash=None,
            is_active=True,
            created_at=utcnow(),
            oidc_subject=identity.subject,
        )
        repository.add(session, user)
        await session.flush()
        await audit.record(
            session,
            ctx.with_actor(Actor(user.id, user.username, role)),
            audit.Change("user.create", "user", user.id, None, {**_user_fields(user), "sso": True}),
        )
    elif not user.is_active:
        raise Unauthorized("this user is deactivated")
    elif user.role != role.value:
        before = _user_fields(user)
        user.role = role.value
        await audit.record(
            session,
            ctx.with_actor(Actor(user.id, user.username, role)),
            audit.Change("user.update", "user", user.id, before, _user_fields(user)),
        )
    return await _open_session(
        session,
        ctx,
        settings,
        user,
        "session",
        action="auth.sso_login",
        details={"issuer": identity.issuer, "groups": identity.groups[:20], "role": role.value},
    )


async def sso_failed(session: AsyncSession, ctx: OperationContext, reason: str) -> None:
    await audit.record(
        session, ctx, audit.Change("auth.sso_failed", "user", None, None, {"reason": reason[:300]})
    )

"""Two-factor logins with TOTP (RFC 6238, through pyotp): enrolment with a
QR code, one-time recovery codes, a setting that makes it required per
role, and an admin's reset for a user who lost their authenticator."""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import pyotp
import segno
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.accounts import repository
from infrawatch.accounts.models import User
from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.config import Settings
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef, hash_token
from infrawatch.core.errors import Conflict, InvalidInput, NotFound

ISSUER = "InfraWatch"
RECOVERY_CODES = 10
STEP_SECONDS = 30
# One step either side: a phone's clock a little off, or a code typed just
# as it changed, still counts.
DRIFT_STEPS = 1


def required_for(settings: Settings, role: str) -> bool:
    roles = {r.strip() for r in settings.totp_required_roles.split(",") if r.strip()}
    return role in roles


def _ref(user: User, column: str) -> SecretRef:
    return SecretRef("users", column, str(user.id))


def _normal(code: str) -> str:
    return code.replace(" ", "").replace("-", "").strip().lower()


def _is_totp_code(code: str) -> bool:
    return len(code) == 6 and code.isascii() and code.isdigit()


def _matching_step(secret: str, code: str, now: float) -> int | None:
    if not _is_totp_code(code):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


async def _user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await repository.get_user(session, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


async def start_enrolment(
    session: AsyncSession, ctx: OperationContext, keyring: Keyring, user_id: uuid.UUID
) -> Enrolment:
    """A new secret, kept aside until a code from it is confirmed (starting
    again replaces it)."""
    user = await _user(session, user_id)
    if user.totp_secret_encrypted is not None:
        raise Conflict("two-factor is on already; turn it off first to enrol again")
    secret = pyotp.random_base32()
    user.totp_pending_encrypted = keyring.encrypt(secret, _ref(user, "totp_pending_encrypted"))
    await audit.record(session, ctx, audit.Change("auth.totp_enrolment_started", "user", user.id))
    return _enrolment(user, secret)


def _enrolment(user: User, secret: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return Enrolment(
        secret, uri, segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")
    )


async def pending_enrolment(
    session: AsyncSession, keyring: Keyring, user_id: uuid.UUID
) -> Enrolment | None:
    """The enrolment started and not yet confirmed (the console shows its QR
    code again on reload)."""
    user = await _user(session, user_id)
    if user.totp_pending_encrypted is None:
        return None
    secret = keyring.decrypt(user.totp_pending_encrypted, _ref(user, "totp_pending_encrypted"))
    return _enrolment(user, secret)


def _new_recovery_codes() -> list[str]:
    # 80 random bits each, written as four groups of five for reading aloud.
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(10)
        codes.append("-".join(raw[i : i + 5] for i in range(0, 20, 5)))
    return codes


async def _issue_recovery_codes(session: AsyncSession, user: User) -> list[str]:
    codes = _new_recovery_codes()
    hashes = [hash_token(_normal(c)) for c in codes]
    await repository.replace_recovery_codes(session, user.id, hashes, utcnow())
    return codes


async def confirm_enrolment(
    session: AsyncSession,
    ctx: OperationContext,
    keyring: Keyring,
    user_id: uuid.UUID,
    code: str,
    token_id: uuid.UUID | None,
) -> list[str]:
    """Turns two-factor on with the pending secret if `code` comes from it;
    returns the recovery codes, shown this once. An enrolment-only session
    becomes a full one."""
    user = await _user(session, user_id)
    if user.totp_pending_encrypted is None:
        raise Conflict("start enrolment first (POST /api/v1/auth/totp)")
    secret = keyring.decrypt(user.totp_pending_encrypted, _ref(user, "totp_pending_encrypted"))
    step = _matching_step(secret, _normal(code), time.time())
    if step is None:
        raise InvalidInput(
            "code: not the current code of the new secret (check the phone's clock)",
            loc=("body", "code"),
        )
    user.totp_secret_encrypted = keyring.encrypt(secret, _ref(user, "totp_secret_encrypted"))
    user.totp_pending_encrypted = None
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    codes = await _issue_recovery_codes(session, user)
    if token_id is not None:
        await repository.set_token_kind(session, token_id, "session")
    await audit.record(session, ctx, audit.Change("auth.totp_enrolled", "user", user.id))
    return codes


async def check_code(session: AsyncSession, keyring: Keyring, user: User, code: str) -> str | None:
    """ "totp" or "recovery" if `code` is a current TOTP code not used before
    or an unused recovery code of this user (which it uses up); else None."""
    normal = _normal(code)
    if user.totp_secret_encrypted is None or not normal:
        return None
    if _is_totp_code(normal):
        secret = keyring.decrypt(user.totp_secret_encrypted, _ref(user, "totp_secret_encrypted"))
        step = _matching_step(secret, normal, time.time())
        if step is not None and await repository.advance_totp_step(session, user.id, step):
            return "totp"
        return None
    if await repository.use_recovery_code(session, user.id, hash_token(normal), utcnow()):
        return "recovery"
    return None


async def _clear(session: AsyncSession, user: User) -> None:
    """Two-factor off: secrets, the last step and the recovery codes gone."""
    await repository.replace_recovery_codes(session, user.id, [], utcnow())
    user.totp_secret_encrypted = None
    user.totp_pending_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None


async def disable(
    session: AsyncSession,
    ctx: OperationContext,
    keyring: Keyring,
    settings: Settings,
    user_id: uuid.UUID,
    code: str,
) -> None:
    """The user's own: with a current code, and not where their role needs it."""
    user = await _user(session, user_id)
    if user.totp_secret_encrypted is None:
        raise Conflict("two-factor is not on")
    if required_for(settings, user.role):
        raise Conflict(f"two-factor is required for the {user.role} role")
    if await check_code(session, keyring, user, code) is None:
        raise InvalidInput("code: not a current or recovery code", loc=("body", "code"))
    await _clear(session, user)
    await audit.record(session, ctx, audit.Change("auth.totp_disabled", "user", user.id))


async def reset(session: AsyncSession, ctx: OperationContext, user_id: uuid.UUID) -> User:
    """An admin's: the user logs in with their password alone next time (and
    enrols again if their role requires it)."""
    user = await _user(session, user_id)
    had = user.totp_secret_encrypted is not None
    await _clear(session, user)
    await audit.record(
        session, ctx, audit.Change("user.totp_reset", "user", user.id, {"enabled": had}, None)
    )
    return user


async def recovery_codes_left(session: AsyncSession, user_id: uuid.UUID) -> int:
    return await repository.count_unused_recovery_codes(session, user_id)

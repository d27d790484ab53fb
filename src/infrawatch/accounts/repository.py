from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.accounts.models import ApiToken, LoginFailure, RecoveryCode, User


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_name(session: AsyncSession, username: str) -> User | None:
    result = await session.scalars(select(User).where(User.username == username))
    return result.first()


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.username)))


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def count_active_admins(session: AsyncSession) -> int:
    query = select(func.count()).select_from(User).where(User.role == "admin", User.is_active)
    return int(await session.scalar(query) or 0)


def add(session: AsyncSession, row: User | ApiToken | LoginFailure | RecoveryCode) -> None:
    session.add(row)


async def delete_user(session: AsyncSession, user: User) -> None:
    await session.delete(user)


async def token_with_user_by_hash(
    session: AsyncSession, token_hash: str
) -> tuple[ApiToken, User] | None:
    query = select(ApiToken, User).join(User, User.id == ApiToken.user_id)
    row = (await session.execute(query.where(ApiToken.token_hash == token_hash))).first()
    return None if row is None else (row[0], row[1])


async def get_token(session: AsyncSession, token_id: uuid.UUID) -> tuple[ApiToken, User] | None:
    query = select(ApiToken, User).join(User, User.id == ApiToken.user_id)
    row = (await session.execute(query.where(ApiToken.id == token_id))).first()
    return None if row is None else (row[0], row[1])


async def list_api_tokens(session: AsyncSession) -> list[tuple[ApiToken, User]]:
    query = (
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.kind == "api")
        .order_by(User.username, ApiToken.created_at)
    )
    return [(t, u) for t, u in (await session.execute(query)).all()]


async def touch_token(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> None:
    await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


@dataclass(frozen=True)
class FailureCount:
    count: int
    oldest: datetime | None
    latest: datetime | None


async def count_failures(
    session: AsyncSession,
    *,
    username: str | None = None,
    source_ip: str | None = None,
    since: datetime,
) -> FailureCount:
    query = select(func.count(), func.min(LoginFailure.at), func.max(LoginFailure.at)).where(
        LoginFailure.at >= since
    )
    if username is not None:
        query = query.where(LoginFailure.username == username)
    if source_ip is not None:
        query = query.where(LoginFailure.source_ip == source_ip)
    count, oldest, latest = (await session.execute(query)).one()
    return FailureCount(int(count), oldest, latest)


async def clear_failures(
    session: AsyncSession, username: str, older_than: datetime, source_ip: str | None = None
) -> int:
    """Forget this user's failures (from `source_ip` only, when given), and
    everyone's older than `older_than`; -> how many of this user's went."""
    mine = delete(LoginFailure).where(LoginFailure.username == username)
    if source_ip is not None:
        mine = mine.where(LoginFailure.source_ip == source_ip)
    result = await session.execute(mine)
    await session.execute(delete(LoginFailure).where(LoginFailure.at < older_than))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def get_user_by_subject(session: AsyncSession, subject: str) -> User | None:
    result = await session.scalars(select(User).where(User.oidc_subject == subject))
    return result.first()


async def replace_recovery_codes(
    session: AsyncSession, user_id: uuid.UUID, hashes: list[str], now: datetime
) -> None:
    await session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    session.add_all(
        RecoveryCode(user_id=user_id, code_hash=code_hash, created_at=now) for code_hash in hashes
    )


async def use_recovery_code(
    session: AsyncSession, user_id: uuid.UUID, code_hash: str, now: datetime
) -> bool:
    """Marks the code used; False if it is not this user's or was used."""
    result = await session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == code_hash,
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def count_unused_recovery_codes(session: AsyncSession, user_id: uuid.UUID) -> int:
    query = select(func.count()).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
    )
    return int(await session.scalar(query) or 0)


async def set_token_kind(session: AsyncSession, token_id: uuid.UUID, kind: str) -> None:
    await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(kind=kind))


async def advance_totp_step(session: AsyncSession, user_id: uuid.UUID, step: int) -> bool:
    """Records `step` as the last one used, only if it is later than the last:
    two logins racing with one code cannot both get through."""
    result = await session.execute(
        update(User)
        .where(
            User.id == user_id,
            (User.totp_last_step.is_(None)) | (User.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool(getattr(result, "rowcount", 0))

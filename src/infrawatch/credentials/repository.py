"""Every query of the credentials domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.credentials.models import (
    AgentToken,
    KnownHostKey,
    Secret,
    SshKey,
    SshKeyAssignment,
)


async def get_key(session: AsyncSession, key_id: uuid.UUID, *, lock: bool = False) -> SshKey | None:
    query = select(SshKey).where(SshKey.id == key_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def active_key_named(session: AsyncSession, name: str) -> SshKey | None:
    query = select(SshKey).where(SshKey.name == name, SshKey.status == "active")
    return (await session.scalars(query)).one_or_none()


async def list_keys(session: AsyncSession, include_retired: bool) -> list[SshKey]:
    query = select(SshKey).order_by(SshKey.name, SshKey.created_at)
    if not include_retired:
        query = query.where(SshKey.status != "retired")
    return list(await session.scalars(query))


async def assignment_counts(
    session: AsyncSession, key_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    if not key_ids:
        return {}
    rows = await session.execute(
        select(SshKeyAssignment.key_id, func.count())
        .where(SshKeyAssignment.key_id.in_(key_ids))
        .group_by(SshKeyAssignment.key_id)
    )
    return {key_id: int(n) for key_id, n in rows.all()}


async def add(session: AsyncSession, row: object) -> None:
    session.add(row)
    await session.flush()


async def add_unique(session: AsyncSession, row: object) -> bool:
    """False (and nothing written) if a unique constraint refuses the row:
    the check-then-insert race two requests can run."""
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def delete_row(session: AsyncSession, row: object) -> None:
    await session.delete(row)
    await session.flush()


async def assignments_of_key(session: AsyncSession, key_id: uuid.UUID) -> list[SshKeyAssignment]:
    query = (
        select(SshKeyAssignment)
        .where(SshKeyAssignment.key_id == key_id)
        .order_by(SshKeyAssignment.created_at, SshKeyAssignment.server_id)
    )
    return list(await session.scalars(query))


async def assignments_signed_by(session: AsyncSession, ca_id: uuid.UUID) -> list[SshKeyAssignment]:
    query = select(SshKeyAssignment).where(SshKeyAssignment.ca_id == ca_id)
    return list(await session.scalars(query))


async def assignment_of_server(
    session: AsyncSession, server_id: uuid.UUID
) -> SshKeyAssignment | None:
    return await session.get(SshKeyAssignment, server_id)


async def keys_due_for_rotation(session: AsyncSession, now: datetime) -> list[SshKey]:
    query = select(SshKey).where(
        SshKey.status == "active",
        SshKey.next_rotation_at.is_not(None),
        SshKey.next_rotation_at <= now,
    )
    return list(await session.scalars(query))


async def known_host(session: AsyncSession, server_id: uuid.UUID, port: int) -> KnownHostKey | None:
    return await session.get(KnownHostKey, (server_id, port))


async def known_hosts(
    session: AsyncSession, server_ids: Sequence[uuid.UUID] | None
) -> list[KnownHostKey]:
    query = select(KnownHostKey).order_by(KnownHostKey.server_id, KnownHostKey.port)
    if server_ids is not None:
        query = query.where(KnownHostKey.server_id.in_(server_ids))
    return list(await session.scalars(query))


async def forget_host(session: AsyncSession, server_id: uuid.UUID) -> int:
    result = await session.execute(delete(KnownHostKey).where(KnownHostKey.server_id == server_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def get_secret(session: AsyncSession, secret_id: uuid.UUID) -> Secret | None:
    return await session.get(Secret, secret_id)


async def secret_named(session: AsyncSession, name: str) -> Secret | None:
    return (await session.scalars(select(Secret).where(Secret.name == name))).one_or_none()


async def list_secrets(session: AsyncSession) -> list[Secret]:
    return list(await session.scalars(select(Secret).order_by(Secret.name)))


async def assignments_of_servers(
    session: AsyncSession, server_ids: Sequence[uuid.UUID]
) -> list[SshKeyAssignment]:
    if not server_ids:
        return []
    query = select(SshKeyAssignment).where(SshKeyAssignment.server_id.in_(server_ids))
    return list(await session.scalars(query))


async def agent_token(session: AsyncSession, server_id: uuid.UUID) -> AgentToken | None:
    return await session.get(AgentToken, server_id)


async def agent_token_by_hash(session: AsyncSession, token_hash: str) -> AgentToken | None:
    query = select(AgentToken).where(AgentToken.token_hash == token_hash)
    return (await session.scalars(query)).one_or_none()

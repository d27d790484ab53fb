"""The host agent's tokens: one per server, stored hashed."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef, hash_token
from infrawatch.core.errors import NotFound
from infrawatch.credentials import repository
from infrawatch.credentials.models import (
    AgentToken,
)
from infrawatch.inventory import service as inventory

# A marker, so a leaked agent token is recognised for what it is.
AGENT_TOKEN_PREFIX = "iwa_"  # noqa: S105


def agent_token_ref(server_id: uuid.UUID) -> SecretRef:
    return SecretRef("agent_tokens", "token_encrypted", str(server_id))


async def issue_agent_token(
    session: AsyncSession, ctx: OperationContext, keyring: Keyring, server_id: uuid.UUID
) -> str:
    """A new token for the server (the old one stops working); shown once."""
    server = (await inventory.get_server(session, server_id)).value
    token = AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)
    sealed = keyring.encrypt(token, agent_token_ref(server_id))
    existing = await repository.agent_token(session, server_id)
    if existing is None:
        session.add(
            AgentToken(
                server_id=server_id,
                token_hash=hash_token(token),
                token_encrypted=sealed,
                prefix=token[:12],
                created_by=ctx.actor.username,
                created_at=utcnow(),
            )
        )
    else:
        existing.token_hash, existing.token_encrypted = hash_token(token), sealed
        existing.prefix, existing.created_by = token[:12], ctx.actor.username
        existing.created_at = utcnow()
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "agent.token", "server", server_id, None, {"server": server.name, "prefix": token[:12]}
        ),
    )
    return token


async def agent_token_for(
    session: AsyncSession, ctx: OperationContext, keyring: Keyring, server_id: uuid.UUID
) -> str:
    """The server's agent token, made if it has none: what the `agent` role
    installs (the same each run, so a second run changes nothing)."""
    existing = await repository.agent_token(session, server_id)
    if existing is None:
        return await issue_agent_token(session, ctx, keyring, server_id)
    return keyring.decrypt(existing.token_encrypted, agent_token_ref(server_id))


async def revoke_agent_token(
    session: AsyncSession, ctx: OperationContext, server_id: uuid.UUID
) -> None:
    existing = await repository.agent_token(session, server_id)
    if existing is None:
        raise NotFound("this server has no agent token")
    await session.delete(existing)
    await session.flush()
    await audit.record(session, ctx, audit.Change("agent.revoke", "server", server_id))


async def agent_token_owner(session: AsyncSession, token: str) -> uuid.UUID | None:
    """The server whose agent token this is."""
    owner = await repository.agent_token_by_hash(session, hash_token(token))
    return owner.server_id if owner else None

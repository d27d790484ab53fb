"""Host keys pinned per server and port (trust on first use, or given)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import NotFound
from infrawatch.credentials import repository, ssh
from infrawatch.credentials.models import (
    KnownHostKey,
)
from infrawatch.credentials.schemas import (
    KnownHostOut,
)


async def trust_host_key(
    session: AsyncSession, server_id: uuid.UUID, port: int, seen: ssh.HostKeySeen
) -> str:
    """-> "first use" or "verified"; raises StepFailed on a changed key."""
    known = await repository.known_host(session, server_id, port)
    ssh.check_host_key(seen, known.fingerprint if known else None)
    now = utcnow()
    if known is None:
        await repository.add(
            session,
            KnownHostKey(
                server_id=server_id,
                port=port,
                algorithm=seen.algorithm,
                fingerprint=seen.fingerprint,
                public_key=seen.public_openssh,
                first_seen_at=now,
                last_verified_at=now,
            ),
        )
        return "first use"
    known.last_verified_at = now
    return "verified"


async def trusted_fingerprint(session: AsyncSession, server_id: uuid.UUID, port: int) -> str | None:
    known = await repository.known_host(session, server_id, port)
    return known.fingerprint if known else None


async def list_known_hosts(
    session: AsyncSession, server_id: uuid.UUID | None
) -> list[KnownHostOut]:
    return [
        KnownHostOut.model_validate(k, from_attributes=True)
        for k in await repository.known_hosts(session, None if server_id is None else [server_id])
    ]


async def forget_host_key(
    session: AsyncSession, ctx: OperationContext, server_id: uuid.UUID
) -> None:
    if not await repository.forget_host(session, server_id):
        raise NotFound("no host key is recorded for this server")
    await audit.record(session, ctx, audit.Change("ssh_host_key.forget", "server", server_id))

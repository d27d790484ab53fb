"""What a provisioning job needs to log in to each server."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.crypto import Keyring
from infrawatch.credentials import repository, ssh
from infrawatch.credentials.assignments import target_of
from infrawatch.credentials.keys import private_key_of


@dataclass(frozen=True)
class ServerLogin:
    """What a provisioning run needs to log in to one server. Holds the
    private key in clear: for the job that uses it, never for a response."""

    server_id: uuid.UUID
    key_id: uuid.UUID
    key_name: str
    public_key: str
    private_key: str = field(repr=False)
    target: ssh.Target
    # The pinned host key ("ssh-ed25519 AAAA…"), None until first use.
    host_key: str | None


async def servers_without_login(
    session: AsyncSession, server_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    assigned = {a.server_id for a in await repository.assignments_of_servers(session, server_ids)}
    return set(server_ids) - assigned


async def logins_for(
    session: AsyncSession, keyring: Keyring, server_ids: list[uuid.UUID]
) -> dict[uuid.UUID, ServerLogin]:
    """Servers with an assigned, active key; the others are left out (the
    caller says which are missing)."""
    logins = {}
    for assignment in await repository.assignments_of_servers(session, server_ids):
        key = await repository.get_key(session, assignment.key_id)
        if key is None or key.status == "retired":
            continue
        try:
            target = await target_of(session, assignment)
        except ssh.StepFailed:
            continue
        known = await repository.known_host(session, assignment.server_id, target.port)
        logins[assignment.server_id] = ServerLogin(
            server_id=assignment.server_id,
            key_id=key.id,
            key_name=key.name,
            public_key=key.public_key,
            private_key=private_key_of(key, keyring),
            target=target,
            host_key=known.public_key if known else None,
        )
    return logins


async def secret_names(session: AsyncSession) -> set[str]:
    return {s.name for s in await repository.list_secrets(session)}


async def known_host_key(session: AsyncSession, server_id: uuid.UUID, port: int) -> str | None:
    """The pinned host key ("ssh-ed25519 AAAA…"), for a login with no vault key."""
    known = await repository.known_host(session, server_id, port)
    return known.public_key if known else None

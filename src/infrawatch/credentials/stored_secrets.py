"""Secrets for playbooks and templates: stored encrypted, revealed only inside jobs."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef
from infrawatch.core.errors import Conflict, NotFound
from infrawatch.credentials import repository
from infrawatch.credentials.models import (
    Secret,
)
from infrawatch.credentials.schemas import (
    SecretCreate,
    SecretOut,
    SecretUpdate,
)


def secret_ref(secret_id: uuid.UUID) -> SecretRef:
    return SecretRef("secrets", "value_encrypted", str(secret_id))


def secret_out(secret: Secret) -> SecretOut:
    return SecretOut.model_validate(secret, from_attributes=True)


async def list_secrets(session: AsyncSession) -> list[SecretOut]:
    return [secret_out(s) for s in await repository.list_secrets(session)]


async def create_secret(
    session: AsyncSession, ctx: OperationContext, body: SecretCreate, keyring: Keyring
) -> SecretOut:
    if await repository.secret_named(session, body.name) is not None:
        raise Conflict(f"a secret named {body.name!r} exists already")
    now = utcnow()
    secret_id = uuid.uuid4()
    secret = Secret(
        id=secret_id,
        name=body.name,
        description=body.description,
        value_encrypted=keyring.encrypt(body.value, secret_ref(secret_id)),
        value_length=len(body.value),
        version=1,
        created_at=now,
        updated_at=now,
    )
    if not await repository.add_unique(session, secret):
        raise Conflict(f"a secret named {body.name!r} exists already")
    await audit.record(
        session, ctx, audit.Change("secret.create", "secret", secret.id, after={"name": body.name})
    )
    return secret_out(secret)


async def require_secret(session: AsyncSession, secret_id: uuid.UUID) -> Secret:
    secret = await repository.get_secret(session, secret_id)
    if secret is None:
        raise NotFound(f"secret {secret_id} not found")
    return secret


async def update_secret(
    session: AsyncSession,
    ctx: OperationContext,
    secret_id: uuid.UUID,
    body: SecretUpdate,
    keyring: Keyring,
    if_match: str | None = None,
) -> Versioned[SecretOut]:
    secret = await require_secret(session, secret_id)
    check_if_match(if_match, secret.version)
    changed: dict[str, Any] = {}
    if body.value is not None:
        secret.value_encrypted = keyring.encrypt(body.value, secret_ref(secret.id))
        secret.value_length = len(body.value)
        changed["value"] = "(changed)"
    if "description" in body.model_fields_set:
        secret.description = body.description
        changed["description"] = body.description
    bump_version(secret)
    await session.flush()
    await audit.record(
        session, ctx, audit.Change("secret.update", "secret", secret.id, after=changed)
    )
    return Versioned(secret_out(secret), secret.version)


async def delete_secret(session: AsyncSession, ctx: OperationContext, secret_id: uuid.UUID) -> None:
    secret = await require_secret(session, secret_id)
    await audit.record(
        session, ctx, audit.Change("secret.delete", "secret", secret.id, {"name": secret.name})
    )
    await repository.delete_row(session, secret)


async def put_secret(
    session: AsyncSession,
    ctx: OperationContext,
    keyring: Keyring,
    name: str,
    value: str,
    description: str | None = None,
) -> str:
    """Make the secret `name` hold `value`, for importers that run again:
    "created", "updated" or "unchanged" (no audit record, no new version)."""
    secret = await repository.secret_named(session, name)
    if secret is None:
        await create_secret(
            session, ctx, SecretCreate(name=name, value=value, description=description), keyring
        )
        return "created"
    if keyring.decrypt(secret.value_encrypted, secret_ref(secret.id)) == value:
        return "unchanged"
    await update_secret(session, ctx, secret.id, SecretUpdate(value=value), keyring)
    return "updated"


async def reveal_secret(session: AsyncSession, keyring: Keyring, name: str) -> str:
    """For provisioning jobs, by name. Never reachable from the API."""
    secret = await repository.secret_named(session, name)
    if secret is None:
        raise NotFound(f"no secret named {name!r}")
    return keyring.decrypt(secret.value_encrypted, secret_ref(secret.id))

"""SSH keys in the vault: generated or imported, encrypted, rotated; never returned."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.credentials import repository, ssh
from infrawatch.credentials.models import (
    SshKey,
)
from infrawatch.credentials.schemas import (
    SshKeyCreate,
    SshKeyOut,
    SshKeyUpdate,
)

TYPE_NAMES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}


def key_ref(key_id: uuid.UUID) -> SecretRef:
    return SecretRef("ssh_keys", "private_key_encrypted", str(key_id))


def _public(key: SshKey) -> dict[str, Any]:
    """What the audit trail may hold about a key: never the private part."""
    return {
        "name": key.name,
        "algorithm": key.algorithm,
        "fingerprint": key.fingerprint,
        "status": key.status,
        "purpose": key.purpose,
        "rotation_interval_days": key.rotation_interval_days,
    }


def key_out(key: SshKey, assigned: int) -> SshKeyOut:
    return SshKeyOut(
        id=key.id,
        name=key.name,
        type=TYPE_NAMES.get(key.algorithm, key.algorithm),
        algorithm=key.algorithm,
        bits=key.bits,
        fingerprint=key.fingerprint,
        public_key=key.public_key,
        origin=key.origin,
        purpose=key.purpose,
        status=key.status,
        replaced_by_id=key.replaced_by_id,
        rotation_interval_days=key.rotation_interval_days,
        next_rotation_at=key.next_rotation_at,
        last_rotated_at=key.last_rotated_at,
        last_used_at=key.last_used_at,
        retired_at=key.retired_at,
        assigned_servers=assigned,
        created_at=key.created_at,
        updated_at=key.updated_at,
    )


async def _present(session: AsyncSession, key: SshKey) -> SshKeyOut:
    counts = await repository.assignment_counts(session, [key.id])
    return key_out(key, counts.get(key.id, 0))


async def require_key(session: AsyncSession, key_id: uuid.UUID, *, lock: bool = False) -> SshKey:
    key = await repository.get_key(session, key_id, lock=lock)
    if key is None:
        raise NotFound(f"SSH key {key_id} not found")
    return key


async def _ensure_name_free(session: AsyncSession, name: str, key_id: uuid.UUID | None) -> None:
    other = await repository.active_key_named(session, name)
    if other is not None and other.id != key_id:
        raise Conflict(f"an active SSH key named {name!r} exists already")


def _material_for(body: SshKeyCreate) -> tuple[ssh.KeyMaterial, str]:
    comment = f"infrawatch:{body.name}"
    if body.private_key is None:
        if body.passphrase is not None:
            raise InvalidInput(
                "a passphrase goes with an imported private_key", loc=("body", "passphrase")
            )
        return ssh.generate(body.type or "ed25519", comment), "generated"
    try:
        material = ssh.import_private(body.private_key, body.passphrase, comment)
    except ssh.KeyError_ as exc:
        raise InvalidInput(str(exc), loc=("body", exc.field)) from None
    declared = body.type
    if declared is not None and TYPE_NAMES.get(material.algorithm) != declared:
        raise InvalidInput(f"the key is {material.algorithm}, not {declared}", loc=("body", "type"))
    return material, "imported"


async def create_key(
    session: AsyncSession, ctx: OperationContext, body: SshKeyCreate, keyring: Keyring
) -> SshKeyOut:
    await _ensure_name_free(session, body.name, None)
    # RSA generation takes a CPU second: keep it off the event loop.
    material, origin = await asyncio.to_thread(_material_for, body)
    key = await store_key(session, keyring, body.name, material, origin)
    key.purpose = body.purpose
    if body.rotation_interval_days:
        key.rotation_interval_days = body.rotation_interval_days
        key.next_rotation_at = key.created_at + timedelta(days=body.rotation_interval_days)
    await audit.record(
        session, ctx, audit.Change("ssh_key.create", "ssh_key", key.id, after=_public(key))
    )
    return await _present(session, key)


async def store_key(
    session: AsyncSession,
    keyring: Keyring,
    name: str,
    material: ssh.KeyMaterial,
    origin: str,
    *,
    status: str = "active",
) -> SshKey:
    now = utcnow()
    key_id = uuid.uuid4()
    key = SshKey(
        id=key_id,
        name=name,
        algorithm=material.algorithm,
        bits=material.bits,
        fingerprint=material.fingerprint,
        public_key=material.public_openssh,
        private_key_encrypted=keyring.encrypt(material.private_openssh, key_ref(key_id)),
        origin=origin,
        purpose="login",
        status=status,
        version=1,
        created_at=now,
        updated_at=now,
    )
    if not await repository.add_unique(session, key):
        raise Conflict(f"an active SSH key named {name!r} exists already")
    return key


def private_key_of(key: SshKey, keyring: Keyring) -> str:
    return keyring.decrypt(key.private_key_encrypted, key_ref(key.id))


async def list_keys(session: AsyncSession, include_retired: bool) -> list[SshKeyOut]:
    keys = await repository.list_keys(session, include_retired)
    counts = await repository.assignment_counts(session, [k.id for k in keys])
    return [key_out(k, counts.get(k.id, 0)) for k in keys]


async def get_key(session: AsyncSession, key_id: uuid.UUID) -> Versioned[SshKeyOut]:
    key = await require_key(session, key_id)
    return Versioned(await _present(session, key), key.version)


async def update_key(
    session: AsyncSession,
    ctx: OperationContext,
    key_id: uuid.UUID,
    body: SshKeyUpdate,
    if_match: str | None = None,
) -> Versioned[SshKeyOut]:
    key = await require_key(session, key_id, lock=True)
    check_if_match(if_match, key.version)
    before = _public(key)
    fields = body.model_fields_set
    if "name" in fields and body.name is not None and body.name != key.name:
        if key.status == "active":
            await _ensure_name_free(session, body.name, key.id)
        key.name = body.name
    if "rotation_interval_days" in fields:
        key.rotation_interval_days = body.rotation_interval_days
        since = key.last_rotated_at or key.created_at
        key.next_rotation_at = (
            since + timedelta(days=body.rotation_interval_days)
            if body.rotation_interval_days and key.status == "active"
            else None
        )
    bump_version(key)
    await session.flush()
    await audit.record(
        session, ctx, audit.Change("ssh_key.update", "ssh_key", key.id, before, _public(key))
    )
    return Versioned(await _present(session, key), key.version)


async def delete_key(session: AsyncSession, ctx: OperationContext, key_id: uuid.UUID) -> None:
    key = await require_key(session, key_id, lock=True)
    assigned = await repository.assignments_of_key(session, key.id)
    if assigned:
        raise Conflict(
            f"this key is assigned to {len(assigned)} server(s); unassign it or rotate it first"
        )
    signing = await repository.assignments_signed_by(session, key.id)
    if signing:
        raise Conflict(f"this CA signs the logins of {len(signing)} server(s); reassign them first")
    await audit.record(
        session, ctx, audit.Change("ssh_key.delete", "ssh_key", key.id, _public(key))
    )
    await repository.delete_row(session, key)

"""The vault's operations. Private keys and secret values are decrypted
only inside jobs that use them; nothing here returns them."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.concurrency import Versioned, bump_version, check_if_match
from infrawatch.core.context import OperationContext
from infrawatch.core.crypto import Keyring, SecretRef, hash_token
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.credentials import repository, ssh
from infrawatch.credentials.models import (
    AgentToken,
    KnownHostKey,
    Secret,
    SshKey,
    SshKeyAssignment,
)
from infrawatch.credentials.schemas import (
    AssignmentCreate,
    AssignmentOut,
    CertificateOut,
    CertificateRequest,
    KnownHostOut,
    SecretCreate,
    SecretOut,
    SecretUpdate,
    SshKeyCreate,
    SshKeyOut,
    SshKeyUpdate,
)
from infrawatch.inventory import service as inventory

TYPE_NAMES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}


def key_ref(key_id: uuid.UUID) -> SecretRef:
    return SecretRef("ssh_keys", "private_key_encrypted", str(key_id))


def secret_ref(secret_id: uuid.UUID) -> SecretRef:
    return SecretRef("secrets", "value_encrypted", str(secret_id))


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


# --- assignments ----------------------------------------------------------------------


async def assign(
    session: AsyncSession, ctx: OperationContext, key_id: uuid.UUID, body: AssignmentCreate
) -> AssignmentOut:
    key = await require_key(session, key_id)
    if key.status != "active":
        raise Conflict(f"this key is {key.status}; assign its successor instead")
    if key.purpose != "login":
        raise Conflict("a CA key signs certificates; assign a login key and name this CA as ca_id")
    if body.ca_id is not None:
        ca = await repository.get_key(session, body.ca_id)
        if ca is None or ca.purpose != "ca" or ca.status != "active":
            raise InvalidInput("not an active CA key", loc=("body", "ca_id"))
    server = await inventory.require_server(session, body.server_id, live=True)
    existing = await repository.assignment_of_server(session, server.id)
    before = None
    if existing is not None:
        before = {"key_id": str(existing.key_id), "username": existing.username}
        existing.key_id, existing.username, existing.port = key.id, body.username, body.port
        existing.ca_id = body.ca_id
        existing.last_test_at = existing.last_test_ok = None
        existing.last_test_error = existing.last_test_latency_ms = None
        assignment = existing
    else:
        assignment = SshKeyAssignment(
            server_id=server.id,
            key_id=key.id,
            username=body.username,
            port=body.port,
            ca_id=body.ca_id,
            created_at=utcnow(),
        )
        await repository.add(session, assignment)
    await session.flush()
    await audit.record(
        session,
        ctx,
        audit.Change(
            "ssh_key.assign",
            "server",
            server.id,
            before,
            {"key_id": str(key.id), "key": key.name, "username": body.username, "port": body.port},
        ),
    )
    return (await assignments_out(session, [assignment]))[0]


async def unassign(
    session: AsyncSession, ctx: OperationContext, key_id: uuid.UUID, server_id: uuid.UUID
) -> None:
    assignment = await repository.assignment_of_server(session, server_id)
    if assignment is None or assignment.key_id != key_id:
        raise NotFound("this key is not assigned to that server")
    await repository.delete_row(session, assignment)
    await audit.record(
        session,
        ctx,
        audit.Change("ssh_key.unassign", "server", server_id, {"key_id": str(key_id)}, None),
    )


async def require_assignment(
    session: AsyncSession, key_id: uuid.UUID, server_id: uuid.UUID
) -> SshKeyAssignment:
    await require_key(session, key_id)
    assignment = await repository.assignment_of_server(session, server_id)
    if assignment is None or assignment.key_id != key_id:
        raise NotFound("this key is not assigned to that server; assign it first")
    return assignment


async def list_assignments(session: AsyncSession, key_id: uuid.UUID) -> list[AssignmentOut]:
    await require_key(session, key_id)
    return await assignments_out(session, await repository.assignments_of_key(session, key_id))


async def assignments_out(
    session: AsyncSession, rows: list[SshKeyAssignment]
) -> list[AssignmentOut]:
    server_ids = [r.server_id for r in rows]
    servers = {s.id: s for s in await inventory.servers_by_ids(session, server_ids)}
    host_keys = {
        (k.server_id, k.port): k for k in await repository.known_hosts(session, server_ids)
    }
    out = []
    for row in rows:
        server = servers.get(row.server_id)
        port = row.port or (server.ssh_port if server and server.ssh_port else 22)
        known = host_keys.get((row.server_id, port))
        out.append(
            AssignmentOut(
                server_id=row.server_id,
                server_name=server.name if server else "?",
                key_id=row.key_id,
                username=row.username,
                port=port,
                ca_id=row.ca_id,
                address=(server.ip_address or server.hostname) if server else None,
                host_key_fingerprint=known.fingerprint if known else None,
                last_test_at=row.last_test_at,
                last_test_ok=row.last_test_ok,
                last_test_error=row.last_test_error,
                last_test_latency_ms=row.last_test_latency_ms,
            )
        )
    return out


async def target_of(session: AsyncSession, assignment: SshKeyAssignment) -> ssh.Target:
    found = await inventory.servers_by_ids(session, [assignment.server_id])
    server = found[0] if found else None
    if server is None or server.deleted_at is not None:
        raise ssh.StepFailed("target", "the server was deleted")
    address = server.ip_address or server.hostname
    if not address:
        raise ssh.StepFailed(
            "target", f"server {server.name!r} has neither an IP address nor a hostname"
        )
    return ssh.Target(address, assignment.port or server.ssh_port or 22, assignment.username)


# --- the certificate authority ----------------------------------------------------


async def sign_certificate(
    session: AsyncSession,
    ctx: OperationContext,
    ca_id: uuid.UUID,
    body: CertificateRequest,
    keyring: Keyring,
) -> CertificateOut:
    ca = await require_key(session, ca_id)
    if ca.purpose != "ca" or ca.status != "active":
        raise Conflict("this key is not an active certificate authority (purpose: ca)")
    if (body.key_id is None) == (body.public_key is None):
        raise InvalidInput("give either key_id or public_key", loc=("body", "key_id"))
    if body.key_id is not None:
        subject = await require_key(session, body.key_id)
        public, label = subject.public_key, f"infrawatch:{subject.name}"
    else:
        public, label = str(body.public_key), f"infrawatch:{ctx.actor.username}"
    try:
        cert = ssh.sign_user_key(
            private_key_of(ca, keyring),
            public,
            label,
            list(body.principals),
            body.valid_seconds,
            secrets.randbits(63),
        )
    except ssh.KeyError_ as exc:
        raise InvalidInput(str(exc), loc=("body", exc.field)) from None
    ca.last_used_at = utcnow()
    out = CertificateOut(
        ca_id=ca.id,
        certificate=cert.openssh,
        serial=cert.serial,
        principals=list(body.principals),
        valid_after=datetime.fromtimestamp(cert.valid_after, UTC),
        valid_before=datetime.fromtimestamp(cert.valid_before, UTC),
    )
    await audit.record(
        session,
        ctx,
        audit.Change(
            "ssh_ca.sign",
            "ssh_key",
            ca.id,
            after={
                "serial": cert.serial,
                "principals": out.principals,
                "key": label,
                "valid_before": out.valid_before.isoformat(),
            },
        ),
    )
    return out


def login_certificate(ca: SshKey, key: SshKey, username: str, keyring: Keyring) -> str:
    """A five-minute certificate for one connection of a job."""
    return ssh.sign_user_key(
        private_key_of(ca, keyring),
        key.public_key,
        f"infrawatch:{key.name}",
        [username],
        300,
        secrets.randbits(63),
    ).openssh


# --- host keys --------------------------------------------------------------------


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


# --- secrets ----------------------------------------------------------------------


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


async def reveal_secret(session: AsyncSession, keyring: Keyring, name: str) -> str:
    """For provisioning jobs, by name. Never reachable from the API."""
    secret = await repository.secret_named(session, name)
    if secret is None:
        raise NotFound(f"no secret named {name!r}")
    return keyring.decrypt(secret.value_encrypted, secret_ref(secret.id))


# --- logins for provisioning ------------------------------------------------------


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


# --- host agent tokens ------------------------------------------------------------

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

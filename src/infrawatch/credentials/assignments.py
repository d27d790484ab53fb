"""Which key logs in to which server as which user."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.credentials import repository, ssh
from infrawatch.credentials.keys import require_key
from infrawatch.credentials.models import (
    SshKeyAssignment,
)
from infrawatch.credentials.schemas import (
    AssignmentCreate,
    AssignmentOut,
)
from infrawatch.inventory import service as inventory


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

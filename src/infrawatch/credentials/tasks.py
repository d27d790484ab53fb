"""Jobs of the vault: the SSH connection test and key rotation, and the
periodic job that starts rotations that are due.

Rotation never locks anyone out: for each server the new key is added,
then a login with it is verified, and only then is the old key removed.
A server that fails at any step keeps its old key (and its assignment)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.credentials import assignments as credential_assignments
from infrawatch.credentials import authority as credential_authority
from infrawatch.credentials import host_keys as credential_host_keys
from infrawatch.credentials import keys as credential_keys
from infrawatch.credentials import repository, ssh
from infrawatch.credentials.models import SshKey, SshKeyAssignment
from infrawatch.credentials.schemas import rotation_result
from infrawatch.inventory import service as inventory
from infrawatch.jobs import service as jobs
from infrawatch.jobs.context import JobContext
from infrawatch.jobs.registry import JobType, Periodic, PermanentError

SSH_TIMEOUT = 15.0


# --- connection test --------------------------------------------------------------


async def connection_test(ctx: JobContext) -> dict[str, Any]:
    key_id = uuid.UUID(ctx.arguments["key_id"])
    server_id = uuid.UUID(ctx.arguments["server_id"])
    keyring = ctx.services.keyring
    async with ctx.db.unit_of_work(write=False) as session:
        key = await credential_keys.require_key(session, key_id)
        assignment = await repository.assignment_of_server(session, server_id)
        if assignment is None or assignment.key_id != key_id:
            raise PermanentError("this key is not assigned to that server")
        try:
            target = await credential_assignments.target_of(session, assignment)
        except ssh.StepFailed as exc:
            raise PermanentError(str(exc)) from None
        trusted = await credential_host_keys.trusted_fingerprint(session, server_id, target.port)
        private = credential_keys.private_key_of(key, keyring)
        certificate = await _certificate(session, assignment, key, keyring)
    await ctx.progress(10, f"connecting to {target.host}:{target.port} as {target.username}")
    report: dict[str, Any] = {"server_id": str(server_id), "key_id": str(key_id)}
    try:
        seen, timings = await ssh.fetch_host_key(target, SSH_TIMEOUT)
        ssh.check_host_key(seen, trusted)
        await ctx.progress(50, f"host key {seen.fingerprint}; logging in")
        _, login = await ssh.run(target, private, seen, "true", SSH_TIMEOUT, certificate)
        timings.update(login)
    except ssh.StepFailed as exc:
        await _record_test(ctx, key_id, assignment.server_id, None, None, str(exc))
        raise PermanentError(
            str(exc),
            result={**report, "ok": False, "stage": exc.stage, "error": exc.message, **exc.facts},
        ) from None
    latency = round(sum(timings.values()), 3)
    trust = await _record_test(ctx, key_id, server_id, (target.port, seen), latency, None)
    return {
        **report,
        "ok": True,
        "latency_ms": latency,
        "timings_ms": timings,
        "host_key": {"algorithm": seen.algorithm, "fingerprint": seen.fingerprint, "trust": trust},
    }


async def _record_test(
    ctx: JobContext,
    key_id: uuid.UUID,
    server_id: uuid.UUID,
    host: tuple[int, ssh.HostKeySeen] | None,
    latency: float | None,
    error: str | None,
) -> str | None:
    trust = None
    async with ctx.db.unit_of_work() as session:
        if host is not None:
            trust = await credential_host_keys.trust_host_key(session, server_id, host[0], host[1])
        assignment = await repository.assignment_of_server(session, server_id)
        now = utcnow()
        if assignment is not None and assignment.key_id == key_id:
            assignment.last_test_at = now
            assignment.last_test_ok = error is None
            assignment.last_test_error = error
            assignment.last_test_latency_ms = latency
        await _note_use(session, ctx, key_id, server_id, "connection test", error)
    return trust


async def _certificate(
    session: Any, assignment: SshKeyAssignment, key: SshKey, keyring: Any
) -> str | None:
    """For an assignment that logs in through a CA: a fresh certificate."""
    if assignment.ca_id is None:
        return None
    ca = await credential_keys.require_key(session, assignment.ca_id)
    return credential_authority.login_certificate(ca, key, assignment.username, keyring)


# --- rotation ---------------------------------------------------------------------


async def rotate(ctx: JobContext) -> dict[str, Any]:
    old_id = uuid.UUID(ctx.arguments["key_id"])
    keyring = ctx.services.keyring
    state: dict[str, Any] = dict(ctx.checkpoint or {"servers": {}})
    new_id = await _successor(ctx, old_id, state)
    async with ctx.db.unit_of_work(write=False) as session:
        old = await credential_keys.require_key(session, old_id)
        new = await credential_keys.require_key(session, new_id)
        old_private = credential_keys.private_key_of(old, keyring)
        new_private = credential_keys.private_key_of(new, keyring)
        assignments = await repository.assignments_of_key(session, old_id)
    done: dict[str, Any] = state["servers"]
    # Servers an earlier attempt moved are no longer the old key's.
    moved_before = len(done.keys() - {str(a.server_id) for a in assignments})
    total = moved_before + len(assignments)
    for index, assignment in enumerate(assignments):
        await ctx.progress(
            100 * (moved_before + index) / max(total, 1),
            f"server {moved_before + index + 1} of {total}",
            force=True,
        )
        outcome = await _rotate_on(ctx, assignment, old, old_private, new, new_private)
        done[str(assignment.server_id)] = outcome
        await ctx.save_checkpoint(
            state,
            f"{outcome['server']}: "
            + ("rotated" if outcome["ok"] else f"kept the old key ({outcome['error']})"),
        )
    result = rotation_result(list(done.values()))
    await _finish_rotation(ctx, old_id, new_id, result)
    if result["failed"]:
        raise PermanentError(
            f"{result['failed']} of {len(done)} server(s) kept the old key; "
            "fix them and rotate again (the same new key is used)",
            result=result,
        )
    return result


async def _successor(ctx: JobContext, old_id: uuid.UUID, state: dict[str, Any]) -> uuid.UUID:
    """The key rotating in: the one an earlier attempt or rotation made,
    else a new one of the same type (stored at once, status "pending")."""
    if state.get("new_key_id"):
        return uuid.UUID(state["new_key_id"])
    async with ctx.db.unit_of_work() as session:
        old = await credential_keys.require_key(session, old_id, lock=True)
        if old.status == "retired":
            raise PermanentError("this key is retired; nothing to rotate")
        if old.replaced_by_id is not None:
            new_id = old.replaced_by_id
        else:
            kind = "rsa" if old.algorithm == "ssh-rsa" else "ed25519"
            material = await asyncio.to_thread(ssh.generate, kind, f"infrawatch:{old.name}")
            new = await credential_keys.store_key(
                session, ctx.services.keyring, old.name, material, "generated", status="pending"
            )
            new.rotation_interval_days = old.rotation_interval_days
            old.replaced_by_id = new.id
            new_id = new.id
    state["new_key_id"] = str(new_id)
    await ctx.save_checkpoint(state, "new key generated")
    return new_id


async def _rotate_on(
    ctx: JobContext,
    assignment: SshKeyAssignment,
    old: SshKey,
    old_private: str,
    new: SshKey,
    new_private: str,
) -> dict[str, Any]:
    outcome: dict[str, Any] = {"server_id": str(assignment.server_id), "ok": False}
    step = _Step("target")
    try:
        async with ctx.db.unit_of_work(write=False) as session:
            target = await credential_assignments.target_of(session, assignment)
            trusted = await credential_host_keys.trusted_fingerprint(
                session, assignment.server_id, target.port
            )
            server = (await inventory.servers_by_ids(session, [assignment.server_id]))[0]
            certificate = await _certificate(session, assignment, new, ctx.services.keyring)
        outcome["server"] = server.name
        step.name = "host_key"
        seen, _ = await ssh.fetch_host_key(target, SSH_TIMEOUT)
        ssh.check_host_key(seen, trusted)
        if certificate is not None:
            # The server trusts the CA, not keys: nothing to add or remove,
            # only prove that the new key logs in with a certificate.
            step.name = "verify_new_key"
            await ssh.run(target, new_private, seen, "true", SSH_TIMEOUT, certificate)
        else:
            await _swap_authorized_key(step, target, seen, old, old_private, new, new_private)
    except ssh.StepFailed as exc:
        outcome.setdefault("server", str(assignment.server_id))
        outcome.update(stage=step.name, error=exc.message, **step.notes)
        await _record_use(ctx, old.id, assignment.server_id, "rotation", exc.message)
        return outcome
    async with ctx.db.unit_of_work() as session:
        await credential_host_keys.trust_host_key(session, assignment.server_id, target.port, seen)
        current = await repository.assignment_of_server(session, assignment.server_id)
        if current is not None and current.key_id == old.id:
            current.key_id = new.id
            current.last_test_at = utcnow()
            current.last_test_ok, current.last_test_error = True, None
    await _record_use(ctx, new.id, assignment.server_id, "rotation", None)
    outcome.update(ok=True, stage="done", fingerprint=new.fingerprint)
    return outcome


class _Step:
    """Which step of a server's rotation is running, for the report."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.notes: dict[str, str] = {}


async def _swap_authorized_key(
    step: _Step,
    target: ssh.Target,
    seen: ssh.HostKeySeen,
    old: SshKey,
    old_private: str,
    new: SshKey,
    new_private: str,
) -> None:
    """Add the new key (as the old), log in with it, then remove the old
    (as the new). If the new key was added but cannot log in, it is taken
    out again (best effort) so the server is as it was."""
    step.name = "add_new_key"
    await ssh.run(target, old_private, seen, ssh.append_key_command(new.public_key), SSH_TIMEOUT)
    step.name = "verify_new_key"
    try:
        await ssh.run(target, new_private, seen, "true", SSH_TIMEOUT)
    except ssh.StepFailed:
        try:
            await ssh.run(
                target, old_private, seen, ssh.remove_key_command(new.public_key), SSH_TIMEOUT
            )
        except ssh.StepFailed as cleanup:
            step.notes["cleanup_error"] = cleanup.message
        raise
    step.name = "remove_old_key"
    await ssh.run(target, new_private, seen, ssh.remove_key_command(old.public_key), SSH_TIMEOUT)


async def _record_use(
    ctx: JobContext, key_id: uuid.UUID, server_id: uuid.UUID, purpose: str, error: str | None
) -> None:
    async with ctx.db.unit_of_work() as session:
        await _note_use(session, ctx, key_id, server_id, purpose, error)


async def _note_use(
    session: Any,
    ctx: JobContext,
    key_id: uuid.UUID,
    server_id: uuid.UUID,
    purpose: str,
    error: str | None,
) -> None:
    """Every use of a key is an audit record (and its last_used_at)."""
    key = await repository.get_key(session, key_id)
    if key is not None:
        key.last_used_at = utcnow()
    await audit.record(
        session,
        ctx.operation_context(),
        audit.Change(
            "ssh_key.use",
            "ssh_key",
            key_id,
            after={
                "purpose": purpose,
                "server_id": str(server_id),
                "ok": error is None,
                "error": error,
            },
        ),
    )


async def _finish_rotation(
    ctx: JobContext, old_id: uuid.UUID, new_id: uuid.UUID, result: dict[str, Any]
) -> None:
    """Every server moved: the old key is retired. Some did: the new key is
    active and the old one "replaced" (still in use where rotation failed).
    None did: nothing changes but the pending successor, kept for the next
    attempt."""
    async with ctx.db.unit_of_work() as session:
        old = await credential_keys.require_key(session, old_id, lock=True)
        new = await credential_keys.require_key(session, new_id, lock=True)
        before = {"old": old.status, "new": new.status}
        still_used = await repository.assignments_of_key(session, old.id)
        if result["rotated"] or not still_used:
            now = utcnow()
            old.status = "replaced" if still_used else "retired"
            old.retired_at = None if still_used else now
            old.next_rotation_at = None
            old.updated_at = now
            await session.flush()  # the active name is free before the new key takes it
            if new.status == "pending":
                new.status = "active"
            new.last_rotated_at = now
            if new.rotation_interval_days:
                new.next_rotation_at = now + timedelta(days=new.rotation_interval_days)
            new.updated_at = now
        after = {"old": old.status, "new": new.status, "new_key_id": str(new.id)}
        await audit.record(
            session,
            ctx.operation_context(),
            audit.Change(
                "ssh_key.rotate",
                "ssh_key",
                old.id,
                before,
                {**after, "rotated": result["rotated"], "failed": result["failed"]},
            ),
        )


async def rotations_due(ctx: JobContext) -> dict[str, Any]:
    """Hourly: start the rotation of every key whose interval ran out."""
    started = []
    async with ctx.db.unit_of_work() as session:
        for key in await repository.keys_due_for_rotation(session, utcnow()):
            assert key.next_rotation_at is not None
            job, created = await jobs.enqueue(
                session,
                None,
                ROTATE,
                {"key_id": str(key.id)},
                idempotency_key=f"rotation:{key.id}:{key.next_rotation_at.isoformat()}",
                subject=("ssh_key", str(key.id)),
            )
            if created:
                started.append({"key_id": str(key.id), "job_id": str(job.id)})
    return {"started": started}


CONNECTION_TEST = JobType(
    "ssh.connection_test", connection_test, concurrency=16, max_attempts=1, timeout_seconds=120
)
ROTATE = JobType(
    "ssh.rotate", rotate, concurrency=2, max_attempts=3, backoff_seconds=30, timeout_seconds=3600
)
ROTATIONS_DUE = JobType("ssh.rotations_due", rotations_due, concurrency=1, max_attempts=1)
JOB_TYPES = (CONNECTION_TEST, ROTATE, ROTATIONS_DUE)
PERIODIC = (Periodic("ssh-rotations-due", ROTATIONS_DUE.name, 3600),)

"""Provisioning runs: checked and queued inside the request's transaction
(nothing is queued when any part of the request is wrong), read back with
their job's progress, retried from where they failed, rolled back."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.credentials import logins as credential_logins
from infrawatch.inventory import service as inventory
from infrawatch.jobs import service as jobs
from infrawatch.jobs.registry import JobType
from infrawatch.provisioning import catalog, projects, repository, stacks
from infrawatch.provisioning.models import ProvisioningRun
from infrawatch.provisioning.schemas import HostState, RunCreate, RunOut

MAX_TARGETS = 1000
ACTIVE = ("queued", "running")


async def _targets(session: AsyncSession, body: RunCreate) -> list[uuid.UUID]:
    if (body.servers is None) == (body.q is None):
        raise InvalidInput("give either `servers` (ids) or `q` (a search)", loc=("body", "servers"))
    if body.q is not None:
        ids = await inventory.live_server_ids_matching(
            session, body.q, MAX_TARGETS + 1, ("body", "q")
        )
        if not ids:
            raise InvalidInput("this search matches no live server", loc=("body", "q"))
        if len(ids) > MAX_TARGETS:
            raise InvalidInput(f"more than {MAX_TARGETS} servers match", loc=("body", "q"))
        return ids
    assert body.servers is not None
    if not body.servers:
        raise InvalidInput("name at least one server", loc=("body", "servers"))
    wanted = list(dict.fromkeys(body.servers))
    found = {s.id for s in await inventory.servers_by_ids(session, wanted) if s.deleted_at is None}
    for index, server_id in enumerate(body.servers):
        if server_id not in found:
            raise InvalidInput(
                f"no live server {server_id}", loc=("body", "servers", index), error_type="missing"
            )
    return wanted


async def _limited(
    session: AsyncSession, body: RunCreate, server_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    if body.limit_hosts is None:
        return server_ids
    names = {s.name: s.id for s in await inventory.servers_by_ids(session, server_ids)}
    for index, name in enumerate(body.limit_hosts):
        if name not in names:
            raise InvalidInput(
                f"{name!r} is not one of this run's servers", loc=("body", "limit_hosts", index)
            )
    if not body.limit_hosts:
        raise InvalidInput("name at least one server", loc=("body", "limit_hosts"))
    kept = {names[n] for n in body.limit_hosts}
    return [s for s in server_ids if s in kept]


def _roles_and_vars(body: RunCreate) -> tuple[list[str], dict[str, Any]]:
    """What to run: the roles given, or a stack's, with its form checked."""
    given = [body.roles is not None, body.stack is not None, body.playbook is not None]
    if sum(given) != 1:
        raise InvalidInput("give one of `roles`, `stack` or `playbook`", loc=("body", "roles"))
    if body.playbook is not None:
        return [], dict(body.vars)
    if body.stack is not None:
        stack = stacks.STACKS.get(body.stack)
        if stack is None:
            known = ", ".join(stacks.STACKS)
            raise InvalidInput(f"no stack {body.stack!r}; known: {known}", loc=("body", "stack"))
        return list(stack.roles), stacks.check_vars(stack, dict(body.vars))
    assert body.roles is not None
    return list(body.roles), dict(body.vars)


async def _check(
    session: AsyncSession,
    body: RunCreate,
    roles: list[str],
    server_ids: list[uuid.UUID],
    *,
    needs_vault_key: bool,
) -> None:
    known = catalog.roles()
    for index, role in enumerate(roles):
        if role not in known:
            raise InvalidInput(
                f"no role {role!r}; known: {', '.join(known)}", loc=("body", "roles", index)
            )
    without = (
        await credential_logins.servers_without_login(session, server_ids)
        if needs_vault_key
        else set()
    )
    if without:
        names = sorted(s.name for s in await inventory.servers_by_ids(session, list(without)))
        raise InvalidInput(
            f"no SSH key is assigned to {', '.join(names[:10])}; assign a vault key first",
            loc=("body", "q" if body.q is not None else "servers"),
        )
    stored = await credential_logins.secret_names(session)
    for index, name in enumerate(body.secrets):
        if name not in stored:
            raise InvalidInput(f"no secret named {name!r}", loc=("body", "secrets", index))
    clash = sorted(set(body.secrets) & set(body.vars))
    if clash:
        raise InvalidInput(f"{clash[0]!r} is both a variable and a secret", loc=("body", "vars"))


async def create_run(
    session: AsyncSession,
    ctx: OperationContext,
    body: RunCreate,
    job_type: JobType,
    idempotency_key: str | None,
    *,
    agent_user: str | None = None,
    job_arguments: dict[str, Any] | None = None,
) -> RunOut:
    """`agent_user`: the CLI's own runs, logging in as that user with the
    caller's ssh-agent (named in `job_arguments`), not with a vault key."""
    request = jobs.request_fingerprint(body)
    existing = await jobs.replayed(session, idempotency_key, job_type, request)
    if existing is not None:
        return await get_run(session, uuid.UUID(existing.arguments["run_id"]))
    roles, variables = _roles_and_vars(body)
    project = None
    revision = None
    if body.playbook is not None:
        project, revision = await projects.playbook_of(session, body.project, body.playbook)
    elif body.project is not None:
        raise InvalidInput("a project goes with a playbook", loc=("body", "playbook"))
    server_ids = await _limited(session, body, await _targets(session, body))
    await _check(session, body, roles, server_ids, needs_vault_key=agent_user is None)
    snapshot = body.snapshot if body.snapshot is not None else bool(catalog.HARDENING & set(roles))
    if body.on_failure == "rollback" and not snapshot:
        raise InvalidInput("a rollback needs a snapshot: set snapshot", loc=("body", "on_failure"))
    run = await _new_run(
        session,
        ctx,
        kind="playbook" if project else "stack" if body.stack else "roles",
        stack=body.stack,
        project_id=project.id if project else None,
        playbook=body.playbook,
        project_revision=revision or None,
        roles=roles,
        server_ids=server_ids,
        variables=variables,
        secret_names=list(body.secrets),
        check_mode=body.check,
        snapshot=snapshot,
        on_failure=body.on_failure,
        agent_user=agent_user,
    )
    await _enqueue(session, ctx, run, job_type, idempotency_key, request, job_arguments)
    return await present(session, run)


async def _new_run(session: AsyncSession, ctx: OperationContext, **fields: Any) -> ProvisioningRun:
    run = ProvisioningRun(
        id=uuid.uuid4(),
        status="queued",
        hosts={},
        snapshots={},
        created_by=ctx.actor.username,
        created_at=utcnow(),
        **{**fields, "server_ids": [str(s) for s in fields["server_ids"]]},
    )
    await repository.add(session, run)
    return run


async def _enqueue(
    session: AsyncSession,
    ctx: OperationContext,
    run: ProvisioningRun,
    job_type: JobType,
    idempotency_key: str | None,
    request: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    job, _ = await jobs.enqueue(
        session,
        ctx,
        job_type,
        {"run_id": str(run.id), **({"request": request} if request else {}), **(extra or {})},
        idempotency_key=idempotency_key,
        subject=("provisioning_run", str(run.id)),
    )
    run.job_id = job.id
    servers = await inventory.servers_by_ids(session, [uuid.UUID(s) for s in run.server_ids])
    await audit.record(
        session,
        ctx,
        audit.Change(
            "provisioning.run",
            "provisioning_run",
            run.id,
            after={
                "stack": run.stack,
                "playbook": run.playbook,
                "revision": run.project_revision,
                "roles": run.roles,
                "servers": sorted(s.name for s in servers),
                "secrets": run.secret_names,
                "check": run.check_mode,
                "retry_of": str(run.retry_of) if run.retry_of else None,
                "login": f"{run.agent_user} with the caller's ssh-agent"
                if run.agent_user
                else "vault keys",
            },
        ),
    )
    await session.flush()


async def server_ids_named(session: AsyncSession, names: list[str]) -> dict[str, uuid.UUID]:
    found = await inventory.live_ids_by_name(session, names)
    for index, name in enumerate(names):
        if name not in found:
            raise InvalidInput(f"no live server named {name!r}", loc=("server", index))
    return found


# --- reading ----------------------------------------------------------------------


async def require_run(
    session: AsyncSession, run_id: uuid.UUID, *, lock: bool = False
) -> ProvisioningRun:
    run = await repository.get_run(session, run_id, lock=lock)
    if run is None:
        raise NotFound(f"provisioning run {run_id} not found")
    return run


async def present(
    session: AsyncSession, run: ProvisioningRun, job_of: dict[uuid.UUID, Any] | None = None
) -> RunOut:
    """`job_of`: the runs' jobs already read (a list reads them in one query)."""
    if job_of is None:
        job_of = await jobs.jobs_by_ids(session, [run.job_id] if run.job_id else [])
    job = job_of.get(run.job_id) if run.job_id else None
    hosts = run.hosts
    waiting = None
    if job is not None and job.status in ACTIVE:
        # While it runs, the job's checkpoint is the fresher copy.
        hosts = (job.checkpoint or {}).get("hosts", hosts)
        if job.status == "queued":
            waiting = job.progress_message or "waiting for capacity"
    status = run.status
    # The job is the fresher word while the run has not recorded its end
    # (a run cancelled while queued never ran to record it).
    if status in ACTIVE and job is not None and job.status in ("running", "cancelled", "failed"):
        status = job.status
    return RunOut(
        id=run.id,
        job_id=run.job_id,
        status=status,
        waiting_reason=waiting,
        stack=run.stack,
        project_id=run.project_id,
        playbook=run.playbook,
        project_revision=run.project_revision,
        roles=run.roles,
        server_ids=[uuid.UUID(s) for s in run.server_ids],
        vars=run.variables,
        secrets=run.secret_names,
        check=run.check_mode,
        snapshot=run.snapshot,
        on_failure=run.on_failure,
        progress=job.progress if job else 0,
        hosts=[HostState(server_id=uuid.UUID(k), **v) for k, v in sorted(hosts.items())],
        retry_of=run.retry_of,
        error=run.error,
        created_by=run.created_by,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


async def get_run(session: AsyncSession, run_id: uuid.UUID) -> RunOut:
    return await present(session, await require_run(session, run_id))


async def list_runs(session: AsyncSession, limit: int, server_id: uuid.UUID | None) -> list[RunOut]:
    rows = await repository.runs(session, limit, str(server_id) if server_id else None)
    job_of = await jobs.jobs_by_ids(session, [r.job_id for r in rows if r.job_id])
    return [await present(session, r, job_of) for r in rows]


# --- retry and rollback -----------------------------------------------------------


async def retry_run(
    session: AsyncSession, ctx: OperationContext, run_id: uuid.UUID, job_type: JobType
) -> RunOut:
    """A new run over the hosts that failed or were unreachable, each from
    the role it failed in (the roles before it are done and not run again)."""
    run = await require_run(session, run_id, lock=True)
    if run.status not in ("failed", "rolled_back"):
        raise Conflict(f"only a failed run can be retried; this one is {run.status}")
    again = {k: v for k, v in run.hosts.items() if v.get("status") in ("failed", "unreachable")}
    if not again:
        raise Conflict("no host of this run failed")
    if run.agent_user:
        raise Conflict("this run used the caller's ssh-agent: retry it from the CLI")
    retry = await _new_run(
        session,
        ctx,
        kind=run.kind,
        stack=run.stack,
        project_id=run.project_id,
        playbook=run.playbook,
        project_revision=run.project_revision,
        roles=run.roles,
        server_ids=[uuid.UUID(k) for k in again],
        variables=run.variables,
        secret_names=run.secret_names,
        check_mode=run.check_mode,
        snapshot=run.snapshot,
        on_failure=run.on_failure,
        retry_of=run.id,
    )
    # A rolled-back host starts again from scratch: its snapshot undid the roles.
    # A playbook's host starts at the task it failed at.
    fresh = run.status == "rolled_back"
    retry.hosts = {
        k: {
            "host": v["host"],
            "status": "pending",
            "done_roles": [] if fresh else v.get("done_roles", []),
            **({"start_at": v.get("failed_task")} if run.kind == "playbook" and not fresh else {}),
        }
        for k, v in again.items()
    }
    await _enqueue(session, ctx, retry, job_type, None)
    return await present(session, retry)


async def request_rollback(
    session: AsyncSession, ctx: OperationContext, run_id: uuid.UUID, job_type: JobType
) -> RunOut:
    run = await require_run(session, run_id, lock=True)
    if run.status in ACTIVE:
        raise Conflict("this run has not ended; cancel it first")
    if not run.snapshots:
        raise Conflict("this run took no snapshot, so there is nothing to roll back to")
    if run.status == "rolled_back":
        raise Conflict("this run was rolled back already")
    await jobs.enqueue(
        session,
        ctx,
        job_type,
        {"run_id": str(run.id)},
        subject=("provisioning_run", str(run.id)),
    )
    await audit.record(
        session, ctx, audit.Change("provisioning.rollback", "provisioning_run", run.id)
    )
    return await present(session, run)

"""The create-server flow, one durable job per server:

    node → running → inventory → ssh → configure → active

Each step is done once: its result is on the build row (the node's id,
the server's id, the provisioning run's id) before the next starts, so a
job killed anywhere starts again at the step it was on, and a failed
build's retry starts at the step that failed. The node is made with the
build's id as its tag (EC2: also as ClientToken) and looked up by it
first, so a create never makes a second server.

Destroying runs the other way: decommissioning → destroy → decommissioned."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput, NotFound
from infrawatch.credentials import assignments as credential_assignments
from infrawatch.credentials import keys as credential_keys
from infrawatch.credentials import logins as credential_logins
from infrawatch.credentials import ssh
from infrawatch.credentials.schemas import AssignmentCreate
from infrawatch.inventory import service as inventory
from infrawatch.inventory import templates
from infrawatch.jobs import service as jobs
from infrawatch.jobs.context import JobContext
from infrawatch.jobs.registry import Deferred, JobType, PermanentError
from infrawatch.provisioning import cloud_accounts, repository, stacks
from infrawatch.provisioning import service as runs
from infrawatch.provisioning import tasks as run_tasks
from infrawatch.provisioning.cloud_schemas import BuildOut, ServerCreate
from infrawatch.provisioning.clouds.base import (
    Node,
    NodeNotFound,
    NodeSpec,
    Provider,
    ProviderError,
)
from infrawatch.provisioning.models import ProviderAccount, ServerBuild
from infrawatch.provisioning.schemas import RunCreate

HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
CREATE_STEPS = ("node", "running", "inventory", "ssh", "configure", "active")
DESTROY_STEPS = ("decommissioning", "destroy", "decommissioned")
HARDENING_ROLES = ("ssh_hardening", "firewall", "fail2ban", "auto_updates")
# How long a node may take to run, and SSH to answer, before the step fails.
RUNNING_TIMEOUT = 900.0
SSH_TIMEOUT = 300.0
# Polls start quick (a lab host or a fake is up in seconds) and slow down.
FIRST_POLL = 0.5
MAX_POLL = 10.0
CREATE_ATTEMPTS = 5


class StepFailed(Exception):
    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


# --- requests -----------------------------------------------------------------------


def _names(body: ServerCreate) -> list[str]:
    if body.name is not None and body.name_pattern is not None:
        raise InvalidInput("name or name_pattern, not both", loc=("body", "name_pattern"))
    if body.name is not None:
        if body.count != 1:
            raise InvalidInput("count goes with name_pattern", loc=("body", "count"))
        return [body.name]
    if body.name_pattern is None:
        raise InvalidInput("name or name_pattern is needed", loc=("body", "name"))
    if "{n" not in body.name_pattern and body.count > 1:
        raise InvalidInput("the pattern needs {n} for count > 1", loc=("body", "name_pattern"))
    names = [templates.render_name(body.name_pattern, body.start + i) for i in range(body.count)]
    for name in names:
        if not HOST_NAME.match(name):
            raise InvalidInput(
                f"generated name {name!r} is no host name (a-z, 0-9 and '-', 63 at most)",
                loc=("body", "name_pattern"),
            )
    return names


async def _login_key(session: AsyncSession, key_id: uuid.UUID | None) -> Any:
    if key_id is not None:
        key = await credential_keys.require_key(session, key_id)
        if key.status != "active" or key.purpose != "login":
            raise InvalidInput("not an active login key", loc=("body", "key_id"))
        return key
    keys = [k for k in await credential_keys.list_keys(session, False) if k.purpose == "login"]
    active = [k for k in keys if k.status == "active"]
    if not active:
        raise InvalidInput("the vault has no active login key; add one", loc=("body", "key_id"))
    return await credential_keys.require_key(session, max(active, key=lambda k: k.created_at).id)


def _run_request(body: ServerCreate) -> dict[str, Any]:
    """The provisioning run of the configure step, checked now: a stack
    (its roles start with the base and hardening roles), or the base role
    and the hardening roles as asked, or nothing."""
    if body.stack is not None:
        stack = stacks.STACKS.get(body.stack)
        if stack is None:
            known = ", ".join(stacks.STACKS)
            raise InvalidInput(f"no stack {body.stack!r}; known: {known}", loc=("body", "stack"))
        return {"stack": body.stack, "vars": stacks.check_vars(stack, dict(body.vars))}
    if body.vars:
        raise InvalidInput("variables go with a stack", loc=("body", "vars"))
    roles = (["base"] if body.base else []) + (list(HARDENING_ROLES) if body.harden else [])
    return {"roles": roles} if roles else {}


async def create_servers(
    session: AsyncSession,
    ctx: OperationContext,
    body: ServerCreate,
    job_type: JobType,
    idempotency_key: str | None,
) -> list[BuildOut]:
    """All of the builds (and their jobs) or none: any wrong part of the
    request is an error before anything is queued."""
    request = jobs.request_fingerprint(body)
    existing = await jobs.replayed(session, idempotency_key, job_type, request)
    if existing is not None:
        return [
            await _present(session, await require_build(session, uuid.UUID(b)))
            for b in existing.arguments["builds"]
        ]
    account = await cloud_accounts.require_account(session, body.provider_account)
    region = body.region or account.region
    if region is None:
        raise InvalidInput("the account has no default region; name one", loc=("body", "region"))
    names = _names(body)
    taken = await inventory.live_names_taken(session, names) | await repository.building_names(
        session, names
    )
    if taken:
        raise Conflict(f"a server named {sorted(taken)[0]!r} exists or is being made")
    run_request = _run_request(body)
    template = await templates.template_by_ref(session, body.template) if body.template else None
    key = await _login_key(session, body.key_id)
    now = utcnow()
    builds = []
    for name in names:
        build = ServerBuild(
            id=uuid.uuid4(),
            account_id=account.id,
            action="create",
            name=name,
            region=region,
            size=body.size,
            image=body.image,
            key_id=key.id,
            template_id=template.id if template else None,
            stack=body.stack,
            variables={"run": run_request, "ssh_port": body.ssh_port},
            harden=body.harden,
            tags=dict(body.tags),
            status="queued",
            step=CREATE_STEPS[0],
            steps_done={},
            created_by=ctx.actor.username,
            created_at=now,
            updated_at=now,
        )
        await repository.add(session, build)
        builds.append(build)
    for index, build in enumerate(builds):
        # One idempotency key for the request: it lands on the first job,
        # whose arguments list every build, so a replay returns them all.
        extra = {"builds": [str(b.id) for b in builds], "request": request} if index == 0 else {}
        job, _ = await jobs.enqueue(
            session,
            ctx,
            job_type,
            {"build_id": str(build.id), **extra},
            idempotency_key=idempotency_key if index == 0 else None,
            subject=("server_build", str(build.id)),
        )
        build.job_id = job.id
        await audit.record(
            session,
            ctx,
            audit.Change(
                "server.build",
                "server_build",
                build.id,
                None,
                {
                    "name": build.name,
                    "account": account.name,
                    "region": build.region,
                    "size": build.size,
                    "image": build.image,
                    "run": run_request,
                    "template": template.name if template else None,
                },
            ),
        )
    await session.flush()
    return [await _present(session, b, account) for b in builds]


async def require_build(
    session: AsyncSession, build_id: uuid.UUID, *, lock: bool = False
) -> ServerBuild:
    build = await repository.get_build(session, build_id, lock=lock)
    if build is None:
        raise NotFound("no such server build")
    return build


async def _present(
    session: AsyncSession, build: ServerBuild, account: ProviderAccount | None = None
) -> BuildOut:
    account = account or await repository.get_account(session, build.account_id)
    status, error = await _effective_status(session, build)
    return BuildOut(
        id=build.id,
        action=build.action,
        name=build.name,
        provider_account=account.name if account else str(build.account_id),
        region=build.region,
        size=build.size,
        image=build.image,
        status=status,
        step=build.step,
        steps=list(CREATE_STEPS if build.action == "create" else DESTROY_STEPS),
        steps_done=dict(build.steps_done),
        error=error,
        node_id=build.node_id,
        server_id=build.server_id,
        run_id=build.run_id,
        job_id=build.job_id,
        created_by=build.created_by,
        created_at=build.created_at,
        updated_at=build.updated_at,
    )


async def _effective_status(session: AsyncSession, build: ServerBuild) -> tuple[str, str | None]:
    """A build whose job ended without settling it (attempts spent on a
    crash, or cancelled) has failed, whatever its row last said."""
    if build.status in ("queued", "running", "retrying") and build.job_id is not None:
        job = (await jobs.jobs_by_ids(session, [build.job_id])).get(build.job_id)
        if job is not None and job.status in ("failed", "cancelled"):
            return "failed", build.error or job.error or f"its job was {job.status}"
    return build.status, build.error


async def get_build(session: AsyncSession, build_id: uuid.UUID) -> BuildOut:
    return await _present(session, await require_build(session, build_id))


async def list_builds(
    session: AsyncSession, limit: int, status: str | None, server_id: uuid.UUID | None
) -> list[BuildOut]:
    return [
        await _present(session, b)
        for b in await repository.builds(session, limit, status, server_id)
    ]


async def retry_build(
    session: AsyncSession, ctx: OperationContext, build_id: uuid.UUID, job_type: JobType
) -> BuildOut:
    """Again from the step that failed; a failed provisioning run is
    retried from its failed role (provisioning's own resume)."""
    build = await require_build(session, build_id, lock=True)
    if (await _effective_status(session, build))[0] != "failed":
        raise Conflict(f"build {build.name!r} is {build.status}; only a failed one is retried")
    if build.step == "configure" and build.run_id is not None:
        run = await runs.require_run(session, build.run_id)
        if run.status == "failed":
            retried = await runs.retry_run(session, ctx, build.run_id, run_tasks.RUN)
            build.run_id = retried.id
    change = audit.Change(
        "server.build_retry", "server_build", build.id, None, {"from_step": build.step}
    )
    return await _queue_again(session, ctx, build, job_type, change)


async def _queue_again(
    session: AsyncSession,
    ctx: OperationContext,
    build: ServerBuild,
    job_type: JobType,
    change: audit.Change,
) -> BuildOut:
    """A new job for the build, from its step; the row and the audit say so."""
    build.status = "queued"
    build.error = None
    build.updated_at = utcnow()
    job, _ = await jobs.enqueue(
        session, ctx, job_type, {"build_id": str(build.id)}, subject=("server_build", str(build.id))
    )
    build.job_id = job.id
    await audit.record(session, ctx, change)
    await session.flush()
    return await _present(session, build)


async def destroy_server(
    session: AsyncSession, ctx: OperationContext, server_id: uuid.UUID, job_type: JobType
) -> BuildOut:
    server = (await inventory.get_server(session, server_id)).value
    build = await repository.build_of_server(session, server_id)
    if build is None or build.node_id is None:
        raise Conflict(f"server {server.name!r} was not made through a provider account")
    status, _ = await _effective_status(session, build)
    if status in ("queued", "running", "retrying"):
        raise Conflict(
            f"server {server.name!r} has a {build.action} under way; cancel its job first"
        )
    if build.action == "destroy" and status == "done":
        raise Conflict(f"server {server.name!r} is destroyed already")
    if build.action == "create":
        build.action = "destroy"
        build.step = DESTROY_STEPS[0]
        build.steps_done = {}
    change = audit.Change("server.destroy", "server", server_id, None, {"node": build.node_id})
    return await _queue_again(session, ctx, build, job_type, change)


# --- the job ------------------------------------------------------------------------


Step = Callable[[JobContext, ServerBuild, ProviderAccount, Provider], Awaitable[None]]


async def build_job(ctx: JobContext) -> dict[str, Any]:
    try:
        build_id = uuid.UUID(ctx.arguments["build_id"])
    except (KeyError, ValueError):
        raise PermanentError("the job names no server build") from None
    services = ctx.services
    async with ctx.db.unit_of_work() as session:
        build = await require_build(session, build_id)
        account = await repository.get_account(session, build.account_id)
        if account is None:
            raise PermanentError("the build's provider account is gone")
        build.status = "running"
        build.updated_at = utcnow()
        if build.action == "create" and build.server_id is not None:
            # A retried build: the server goes back to being built.
            server = (await inventory.get_server(session, build.server_id)).value
            if server.lifecycle == "failed":
                await set_lifecycle(session, ctx, build.server_id, "provisioning")
    provider = cloud_accounts.provider_of(account, services.keyring, services.settings)
    steps = CREATE_STEPS if build.action == "create" else DESTROY_STEPS
    table: dict[str, Step] = {**CREATE, **DESTROY}
    try:
        for index in range(steps.index(build.step), len(steps)):
            step = steps[index]
            await _at(ctx, build.id, step=step)
            await ctx.progress(100 * index / len(steps), f"{build.name}: {step}", force=True)
            await table[step](ctx, build, account, provider)
            build = await _at(ctx, build.id, done=step)
    except Deferred:
        raise
    except (StepFailed, ProviderError) as exc:
        retryable = getattr(exc, "retryable", False) and ctx.attempt < BUILD.max_attempts
        await _failed(ctx, build.id, str(exc), final=not retryable)
        if retryable:
            raise
        raise PermanentError(f"{build.name}: {build.step}: {exc}") from None
    finally:
        await provider.close()
    async with ctx.db.unit_of_work() as session:
        build = await require_build(session, build.id)
        build.status = "done"
        build.updated_at = utcnow()
    await ctx.progress(100, f"{build.name}: {build.action} done", force=True)
    return {"build_id": str(build.id), "server_id": str(build.server_id), "node_id": build.node_id}


async def _at(
    ctx: JobContext, build_id: uuid.UUID, *, step: str | None = None, done: str | None = None
) -> ServerBuild:
    async with ctx.db.unit_of_work() as session:
        build = await require_build(session, build_id)
        if step is not None:
            build.step = step
        if done is not None:
            build.steps_done = {**build.steps_done, done: utcnow().isoformat()}
        build.updated_at = utcnow()
        await session.flush()
    return build


async def _failed(ctx: JobContext, build_id: uuid.UUID, error: str, *, final: bool) -> None:
    async with ctx.db.unit_of_work() as session:
        build = await require_build(session, build_id)
        build.status = "failed" if final else "retrying"
        build.error = error
        build.updated_at = utcnow()
        if final and build.server_id is not None:
            await set_lifecycle(session, ctx, build.server_id, "failed")
    await ctx.log(f"{build.name}: {build.step} failed: {error}", kind="error")


async def _save(ctx: JobContext, build_id: uuid.UUID, **fields: Any) -> None:
    async with ctx.db.unit_of_work() as session:
        build = await require_build(session, build_id)
        for name, value in fields.items():
            setattr(build, name, value)


async def set_lifecycle(
    session: AsyncSession, ctx: JobContext, server_id: uuid.UUID, lifecycle: str
) -> None:
    server = (await inventory.get_server(session, server_id)).value
    if server.lifecycle != lifecycle:
        await inventory.update_server(
            session, ctx.operation_context(), server_id, {"lifecycle": lifecycle}
        )


async def poll(
    what: str, timeout: float, probe: Callable[[], Awaitable[Any]], *, retryable: bool = True
) -> Any:
    """Probe until it returns something; quick at first, slower later.
    Out of time is retryable (another attempt waits again) unless the
    caller says a person must look first."""
    waited, pause = 0.0, FIRST_POLL
    while True:
        found = await probe()
        if found is not None:
            return found
        if waited >= timeout:
            raise StepFailed(f"{what} after {int(waited)} s", retryable=retryable)
        await asyncio.sleep(pause)
        waited += pause
        pause = min(pause * 2, MAX_POLL)


async def create_once(provider: Provider, spec: NodeSpec) -> Node:
    """The node of this build: the one a crashed attempt made, or a new one.
    A create that failed in a way that may have made the node (a dropped
    connection, a 5xx, a 429) is looked up again before it is re-sent."""
    for attempt in range(CREATE_ATTEMPTS):
        existing = await provider.find_build(spec.build_tag)
        if existing is not None and existing.state != "gone":
            return existing
        try:
            return await provider.create(spec)
        except ProviderError as exc:
            if not exc.retryable or attempt + 1 == CREATE_ATTEMPTS:
                raise
            await asyncio.sleep(min(2.0**attempt, 30.0))
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _step_node(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    if build.node_id is not None:
        return
    async with ctx.db.unit_of_work(write=False) as session:
        key = await credential_keys.require_key(session, build.key_id)
    spec = NodeSpec(
        name=build.name,
        region=build.region,
        size=build.size,
        image=build.image,
        public_key=key.public_key,
        build_tag=str(build.id),
        tags=build.tags,
    )
    node = await create_once(provider, spec)
    await _save(ctx, build.id, node_id=node.id)
    build.node_id = node.id
    await ctx.log(f"{build.name}: {account.kind} node {node.id} ({node.provider_state})")


async def running_node(provider: Provider, build: ServerBuild) -> Node:
    assert build.node_id is not None

    async def probe() -> Node | None:
        node = await provider.get(build.node_id or "")
        if node.state == "gone":
            raise StepFailed(f"node {node.id} is gone ({node.provider_state})")
        if node.state == "stopped":
            await provider.start(node.id)
            return None
        return node if node.state == "running" and node.address else None

    node: Node = await poll(f"node {build.node_id} is not running", RUNNING_TIMEOUT, probe)
    return node


async def _step_running(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    node = await running_node(provider, build)
    await ctx.log(f"{build.name}: running at {node.address}")


async def _step_inventory(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    if build.server_id is not None:
        return
    node = await running_node(provider, build)
    op = ctx.operation_context()
    async with ctx.db.unit_of_work() as session:
        build = await require_build(session, build.id, lock=True)
        defaults: dict[str, Any] = {}
        if build.template_id is not None:
            template = await templates.template_by_ref(session, str(build.template_id))
            defaults = templates.server_defaults(template)
        attributes = {
            **defaults.get("attributes", {}),
            "provider_account": account.name,
            "node_id": node.id,
            "build_id": str(build.id),
        }
        if account.kind == "lab":
            attributes["lab_host"] = node.id  # the lab's snapshots find the host by it
        created = await inventory.create_server(
            session,
            op,
            {
                **defaults,
                "name": build.name,
                "ip_address": node.address,
                "ssh_port": int(build.variables.get("ssh_port", 22)),
                "provider": account.kind,
                "region": build.region,
                "tags": {**defaults.get("tags", {}), **build.tags},
                "attributes": attributes,
                "lifecycle": "planned",
            },
        )
        server_id = created.value.id
        await inventory.update_server(session, op, server_id, {"lifecycle": "provisioning"})
        await credential_assignments.assign(
            session,
            op,
            build.key_id,
            AssignmentCreate(server_id=server_id, username=provider.login_user),
        )
        build.server_id = server_id
    await ctx.log(f"{build.name}: in the inventory as {server_id}")


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


async def _step_ssh(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    assert build.server_id is not None
    async with ctx.db.unit_of_work(write=False) as session:
        server = (await inventory.get_server(session, build.server_id)).value
        pinned = await credential_logins.known_host_key(session, server.id, server.ssh_port)
    address = server.ip_address or server.hostname or ""

    async def probe() -> bool | None:
        return True if await asyncio.to_thread(_tcp_open, address, server.ssh_port) else None

    # A running machine whose sshd does not answer in minutes needs a
    # person (a firewall, a wrong port): failed, and retried by hand.
    await poll(f"no SSH on {address}:{server.ssh_port}", SSH_TIMEOUT, probe, retryable=False)
    if pinned is None:
        target = ssh.Target(host=address, port=server.ssh_port, username=provider.login_user)
        await run_tasks.pin_host_key(ctx, server.id, target)


async def _step_configure(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    request = dict(build.variables.get("run") or {})
    if not request:
        return
    assert build.server_id is not None
    async with ctx.db.unit_of_work() as session:
        build = await require_build(session, build.id, lock=True)
        if build.run_id is None:
            body = RunCreate(servers=[build.server_id], **request)
            made = await runs.create_run(
                session, ctx.operation_context(), body, run_tasks.RUN, None
            )
            build.run_id = made.id
            run_status = "queued"
        else:
            run_status = (await runs.require_run(session, build.run_id)).status
    if run_status in ("queued", "running"):
        # Polled: the run is its own job, watched on its own page.
        raise Deferred(f"waiting for provisioning run {build.run_id}", 3.0)
    if run_status != "succeeded":
        raise StepFailed(f"provisioning run {build.run_id} {run_status}; a retry resumes it")


async def _step_active(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    assert build.server_id is not None
    async with ctx.db.unit_of_work() as session:
        await set_lifecycle(session, ctx, build.server_id, "active")
        if build.template_id is not None:
            servers = await inventory.servers_by_ids(session, [build.server_id])
            await templates.apply_hooks(
                session, ctx.operation_context(), build.template_id, servers
            )


async def _step_decommissioning(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    if build.server_id is None:
        return
    async with ctx.db.unit_of_work() as session:
        server = (await inventory.get_server(session, build.server_id)).value
        if server.lifecycle not in ("decommissioning", "decommissioned"):
            await set_lifecycle(session, ctx, build.server_id, "decommissioning")


async def _step_destroy(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    assert build.node_id is not None
    try:
        await provider.destroy(build.node_id)
    except NodeNotFound:
        return

    async def gone() -> bool | None:
        try:
            node = await provider.get(build.node_id or "")
        except NodeNotFound:
            return True
        return True if node.state == "gone" else None

    await poll(f"node {build.node_id} is still there", RUNNING_TIMEOUT, gone)
    await ctx.log(f"{build.name}: node {build.node_id} destroyed")


async def _step_decommissioned(
    ctx: JobContext, build: ServerBuild, account: ProviderAccount, provider: Provider
) -> None:
    if build.server_id is None:
        return
    async with ctx.db.unit_of_work() as session:
        await set_lifecycle(session, ctx, build.server_id, "decommissioned")


CREATE: dict[str, Step] = {
    "node": _step_node,
    "running": _step_running,
    "inventory": _step_inventory,
    "ssh": _step_ssh,
    "configure": _step_configure,
    "active": _step_active,
}
DESTROY: dict[str, Step] = {
    "decommissioning": _step_decommissioning,
    "destroy": _step_destroy,
    "decommissioned": _step_decommissioned,
}

BUILD = JobType(
    name="provisioning.server_build",
    handler=build_job,
    concurrency=50,
    max_attempts=3,
    backoff_seconds=15.0,
    timeout_seconds=2 * 3600,
    description="make (or destroy) a server through a provider account",
)
JOB_TYPES = (BUILD,)

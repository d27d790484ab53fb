"""The provisioning jobs: a run (lock its servers, snapshot, run the roles
with ansible, record each host's fate) and a rollback.

Checkpoints are per host and per role: a host's `done_roles` grow as its
roles finish. A retry, or another worker taking over from one killed with
-9, runs each host again from the role it had not finished (roles are
idempotent, so a half-done role is safe to run again from its start)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import infrawatch
from infrawatch.core.clock import utcnow
from infrawatch.credentials import agent_tokens as credential_agent_tokens
from infrawatch.credentials import host_keys as credential_host_keys
from infrawatch.credentials import logins as credential_logins
from infrawatch.credentials import ssh
from infrawatch.credentials import stored_secrets as credential_stored_secrets
from infrawatch.inventory import service as inventory
from infrawatch.jobs import service as jobs
from infrawatch.jobs.context import JobContext
from infrawatch.jobs.registry import Deferred, JobType, PermanentError
from infrawatch.provisioning import projects, providers, repository, runner
from infrawatch.provisioning.models import ProvisioningRun, ServerRunLock

HOST_KEY_TIMEOUT = 15.0
RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_skipped": "skipped",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_async_failed": "failed",
}


def _run_id(ctx: JobContext) -> uuid.UUID:
    try:
        return uuid.UUID(ctx.arguments["run_id"])
    except (KeyError, ValueError):
        raise PermanentError("the job names no provisioning run") from None


def _folder(ctx: JobContext, run_id: uuid.UUID) -> Path:
    return ctx.services.settings.data_dir.resolve() / "provisioning" / str(run_id)


# --- locks --------------------------------------------------------------------------


async def _lock_servers(ctx: JobContext, run: ProvisioningRun) -> None:
    """All of the run's servers or none; a server another live run holds
    sends this one back to the queue saying which."""
    server_ids = [uuid.UUID(s) for s in run.server_ids]
    async with ctx.db.unit_of_work() as session:
        await _wait_for_earlier_runs(session, run)
        for lock in await repository.locks_of(session, server_ids):
            if lock.run_id == run.id:
                continue
            holder = await repository.get_run(session, lock.run_id)
            if holder is not None and holder.status in ("queued", "running"):
                servers = await inventory.servers_by_ids(session, [lock.server_id])
                name = servers[0].name if servers else str(lock.server_id)
                # Woken when that run lets go; the wait is only a safety net.
                raise Deferred(f"waiting for server {name} (run {lock.run_id})", 30.0)
            await repository.delete_lock(session, lock)  # its run ended without letting go
        held = {lock.server_id for lock in await repository.locks_of(session, server_ids)}
        for server_id in server_ids:
            if server_id not in held:
                session.add(ServerRunLock(server_id=server_id, run_id=run.id, acquired_at=utcnow()))


async def _wait_for_earlier_runs(session: Any, run: ProvisioningRun) -> None:
    """Runs take a server in the order they were queued: one queued earlier
    for a server of this run goes first, even when both were claimed at once."""
    mine = set(run.server_ids)
    earlier = [
        r for r in await repository.active_runs_before(session, run) if mine & set(r.server_ids)
    ]
    if not earlier:
        return
    live = await jobs.jobs_by_ids(session, [r.job_id for r in earlier if r.job_id])
    for other in sorted(earlier, key=lambda r: r.created_at):
        job = live.get(other.job_id) if other.job_id else None
        if job is None or job.status not in ("queued", "running"):
            continue  # its job ended without the run noticing (cancelled while queued)
        shared = sorted(mine & set(other.server_ids))[0]
        servers = await inventory.servers_by_ids(session, [uuid.UUID(shared)])
        name = servers[0].name if servers else shared
        raise Deferred(f"waiting for server {name} (run {other.id})", 30.0)


async def _release(ctx: JobContext, run_id: uuid.UUID) -> None:
    async with ctx.db.unit_of_work() as session:
        await repository.release_locks(session, run_id)
        await jobs.wake_waiting(session, RUN, f"(run {run_id})")


# --- the run ------------------------------------------------------------------------


async def run_job(ctx: JobContext) -> dict[str, Any]:
    run_id = _run_id(ctx)
    async with ctx.db.unit_of_work(write=False) as session:
        run = await repository.get_run(session, run_id)
    if run is None:
        raise PermanentError(f"provisioning run {run_id} is gone")
    await _lock_servers(ctx, run)
    try:
        return await _provision(ctx, run)
    except (Deferred, asyncio.CancelledError):
        raise
    except BaseException as exc:
        if isinstance(exc, PermanentError):
            await _finish(ctx, run_id, "failed", str(exc), hosts=None, unless_ended=True)
        raise
    finally:
        await asyncio.shield(_release(ctx, run_id))


async def _provision(ctx: JobContext, run: ProvisioningRun) -> dict[str, Any]:
    run_id = run.id
    folder = _folder(ctx, run_id)
    # A worker killed mid-run may have left its ansible running (same machine).
    await asyncio.to_thread(runner.kill_leftovers, folder)
    server_ids = [uuid.UUID(s) for s in run.server_ids]
    async with ctx.db.unit_of_work() as session:
        current = await repository.get_run(session, run_id, lock=True)
        assert current is not None
        servers = {s.id: s for s in await inventory.servers_by_ids(session, server_ids)}
        if current.agent_user:
            logins = await _agent_logins(session, current.agent_user, list(servers.values()))
        else:
            logins = await credential_logins.logins_for(session, ctx.services.keyring, server_ids)
        secrets = {
            name: await credential_stored_secrets.reveal_secret(session, ctx.services.keyring, name)
            for name in current.secret_names
        }
        current.status = "running"
        current.started_at = current.started_at or utcnow()
        for server in servers.values():
            if server.lifecycle == "planned":
                await inventory.update_server(
                    session, ctx.operation_context(), server.id, {"lifecycle": "provisioning"}
                )
        seeded = dict(current.hosts)
    hosts: dict[str, dict[str, Any]] = (ctx.checkpoint or {}).get("hosts") or {
        str(sid): {
            "host": _inventory_name(servers[sid].name) if sid in servers else str(sid),
            "status": "pending",
            "done_roles": [],
            **seeded.get(str(sid), {}),
        }
        for sid in server_ids
    }
    missing = [str(s) for s in server_ids if s not in logins or s not in servers]
    for key in missing:
        hosts[key].update(status="failed", message="no usable SSH key or server")

    if run.snapshot and not (ctx.checkpoint or {}).get("snapshots_taken"):
        await ctx.progress(1, "taking snapshots", force=True)
        taken = await _snapshots(ctx, run, [servers[s] for s in server_ids if s in servers])
        for key, label in taken.items():
            hosts[key]["snapshot"] = label
        await ctx.save_checkpoint(
            {"hosts": hosts, "snapshots_taken": True}, f"snapshots taken: {len(taken)}"
        )

    agent_tokens = await _agent_tokens(ctx, run, [s for s in server_ids if s in logins])
    redactor = runner.Redactor(
        [
            *secrets.values(),
            *(login.private_key for login in logins.values() if login.private_key),
            *agent_tokens.values(),
        ]
    )
    progress = _Progress(ctx, run.roles or ["playbook"], len(server_ids))
    for state in hosts.values():
        progress.skip(len(state.get("done_roles", [])))
    tree = await _project_tree(ctx, run)
    # One ansible process per (key, what is left to do): hosts that share both
    # share it. What is left: the roles not done, or for a playbook the task
    # a retry starts at.
    groups: dict[tuple[uuid.UUID, tuple[str, ...], str | None], list[uuid.UUID]] = {}
    for sid in server_ids:
        state = hosts[str(sid)]
        # Hosts that ended in an earlier attempt (a takeover) stay as they ended.
        if state["status"] in ("ok", "failed", "unreachable") or str(sid) in missing:
            continue
        remaining = tuple(r for r in run.roles if r not in state.get("done_roles", []))
        if run.kind != "playbook" and not remaining:
            state["status"] = "ok"
            continue
        start_at = state.get("start_at") if run.kind == "playbook" else None
        groups.setdefault((logins[sid].key_id, remaining, start_at), []).append(sid)

    for (_, remaining, start_at), members in groups.items():
        targets = []
        for sid in members:
            login = logins[sid]
            host_key = login.host_key or await pin_host_key(ctx, sid, login.target)
            targets.append(
                runner.Host(
                    name=hosts[str(sid)]["host"],
                    address=login.target.host,
                    port=login.target.port,
                    user=login.target.username,
                    host_key=host_key,
                    controller_address=_controller_address(login.target.host),
                    secret_vars={"agent_token": agent_tokens[sid]} if sid in agent_tokens else {},
                )
            )
            hosts[str(sid)]["status"] = "running"
        invocation = runner.Invocation(
            hosts=targets,
            roles=list(remaining),
            variables={
                **_package_variables(run),
                **run.variables,
                "admin_authorized_keys": sorted(
                    {logins[s].public_key for s in members if logins[s].public_key}
                ),
            },
            secrets=secrets,
            private_key=logins[members[0]].private_key or None,
            check=run.check_mode,
            start_at_task=start_at,
            agent_socket=ctx.arguments.get("agent_socket") if run.agent_user else None,
            playbook=run.playbook if tree else None,
            project_dir=tree,
        )
        by_name = {hosts[str(s)]["host"]: str(s) for s in members}

        async def checkpoint() -> None:
            await ctx.save_checkpoint({"hosts": hosts, "snapshots_taken": True})

        tracker = _EventTracker(
            ctx, hosts, by_name, redactor, progress, checkpoint, list(remaining)
        )
        outcome = await runner.run(folder, invocation, tracker.handle, threading.Event())
        tracker.close(outcome, list(remaining))
        await checkpoint()
    if tree is not None:
        await asyncio.to_thread(shutil.rmtree, tree, True)

    failed = sorted(h["host"] for h in hosts.values() if h["status"] != "ok")
    status = "failed" if failed else "succeeded"
    message = f"failed on {', '.join(failed)}" if failed else None
    if failed and run.snapshot and run.on_failure == "rollback":
        await ctx.log("the run failed: restoring the snapshots", kind="warning")
        await _restore(ctx, run, hosts, servers)
        status = "rolled_back"
    await _finish(ctx, run_id, status, message, hosts=hosts)
    result = {
        "status": status,
        "hosts": {h["host"]: h.get("recap") for h in hosts.values()},
    }
    if failed:
        raise PermanentError(message or "failed", result=result)
    return result


# Every agent login shares one "key": the agent holds whatever the caller has.
AGENT_KEY = uuid.UUID(int=0)


async def _agent_logins(
    session: Any, user: str, servers: list[Any]
) -> dict[uuid.UUID, credential_logins.ServerLogin]:
    logins = {}
    for server in servers:
        address = server.ip_address or server.hostname
        if not address:
            continue
        port = server.ssh_port or 22
        logins[server.id] = credential_logins.ServerLogin(
            server_id=server.id,
            key_id=AGENT_KEY,
            key_name="ssh-agent",
            public_key="",
            private_key="",
            target=ssh.Target(address, port, user),
            host_key=await credential_logins.known_host_key(session, server.id, port),
        )
    return logins


async def _project_tree(ctx: JobContext, run: ProvisioningRun) -> Path | None:
    """A playbook run's project at its pinned revision, on this machine."""
    if run.kind != "playbook" or run.project_id is None:
        return None
    async with ctx.db.unit_of_work(write=False) as session:
        project = await repository.get_project(session, run.project_id)
    if project is None:
        raise PermanentError("the run's project was deleted")
    tree = ctx.services.settings.data_dir.resolve() / "provisioning-trees" / str(run.id)
    try:
        await asyncio.to_thread(
            projects.materialize,
            ctx.services.settings.data_dir,
            project.id,
            project.source,
            run.project_revision,
            tree,
        )
    except (projects.ProjectError, OSError, subprocess.CalledProcessError) as exc:
        raise PermanentError(f"project {project.name}: {exc}") from None
    await ctx.log(f"project {project.name} at {run.project_revision or 'its folder'}")
    return tree


def _inventory_name(name: str) -> str:
    """Ansible host names: no spaces or patterns' special characters."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cleaned or "server"


def _controller_address(host: str) -> str:
    """The local address that routes to `host`: a UDP connect sends nothing."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            return str(probe.getsockname()[0])
    except OSError:
        return ""


async def _agent_tokens(
    ctx: JobContext, run: ProvisioningRun, server_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The `agent` role installs each server's own agent token (made now if
    it has none; the same one on every run)."""
    if "agent" not in run.roles:
        return {}
    tokens = {}
    async with ctx.db.unit_of_work() as session:
        for server_id in server_ids:
            tokens[server_id] = await credential_agent_tokens.agent_token_for(
                session, ctx.operation_context(), ctx.services.keyring, server_id
            )
    return tokens


def _package_variables(run: ProvisioningRun) -> dict[str, Any]:
    """Where the `agent` role copies the agent's code from: this package."""
    if "agent" not in run.roles:
        return {}
    return {"agent_package_dir": str(Path(infrawatch.__file__).resolve().parent)}


async def pin_host_key(ctx: JobContext, server_id: uuid.UUID, target: ssh.Target) -> str:
    """Trust on first use, through the vault's own record of host keys."""
    try:
        seen, _ = await ssh.fetch_host_key(target, HOST_KEY_TIMEOUT)
    except ssh.StepFailed as exc:
        raise PermanentError(f"reading the host key of {target.host}: {exc}") from None
    async with ctx.db.unit_of_work() as session:
        trust = await credential_host_keys.trust_host_key(session, server_id, target.port, seen)
    await ctx.log(f"host key of {target.host}: {seen.fingerprint} ({trust})")
    return seen.public_openssh


async def _finish(
    ctx: JobContext,
    run_id: uuid.UUID,
    status: str,
    error: str | None,
    hosts: dict[str, dict[str, Any]] | None,
    *,
    unless_ended: bool = False,
) -> None:
    async with ctx.db.unit_of_work() as session:
        run = await repository.get_run(session, run_id, lock=True)
        if run is None or (unless_ended and run.finished_at is not None):
            return
        run.status = status
        run.error = error
        run.finished_at = utcnow()
        if hosts is not None:
            run.hosts = hosts
            run.snapshots = {k: v["snapshot"] for k, v in hosts.items() if v.get("snapshot")}
            await _move_lifecycles(session, ctx, hosts)


async def _move_lifecycles(session: Any, ctx: JobContext, hosts: dict[str, dict[str, Any]]) -> None:
    """Servers this run provisioned from scratch become active (or failed);
    their template monitors start when they turn active."""
    ids = [uuid.UUID(k) for k in hosts]
    for server in await inventory.servers_by_ids(session, ids):
        if server.lifecycle != "provisioning":
            continue
        ok = hosts[str(server.id)]["status"] == "ok"
        await inventory.update_server(
            session, ctx.operation_context(), server.id, {"lifecycle": "active" if ok else "failed"}
        )


# --- snapshots ----------------------------------------------------------------------


async def _snapshots(ctx: JobContext, run: ProvisioningRun, servers: list[Any]) -> dict[str, str]:
    taken = {}
    label = f"run-{run.id.hex[:12]}"
    for server in servers:
        provider = providers.for_server(ctx.services.settings, server)
        if provider is None:
            await ctx.log(
                f"{server.name}: its provider ({server.provider or 'none'}) takes no snapshots",
                kind="warning",
            )
            continue
        await provider.snapshot(server, label)
        taken[str(server.id)] = label
        await ctx.log(f"{server.name}: snapshot {label} taken")
    return taken


async def _restore(
    ctx: JobContext, run: ProvisioningRun, hosts: dict[str, dict[str, Any]], servers: dict[Any, Any]
) -> None:
    for sid, state in hosts.items():
        label = state.get("snapshot")
        server = servers.get(uuid.UUID(sid))
        provider = providers.for_server(ctx.services.settings, server) if server else None
        if not label or provider is None or server is None:
            continue
        await provider.restore(server, label)
        state["status"] = "rolled_back" if state["status"] != "ok" else "ok"
        state["done_roles"] = []
        await ctx.log(f"{server.name}: restored to snapshot {label}")


async def rollback_job(ctx: JobContext) -> dict[str, Any]:
    run_id = _run_id(ctx)
    async with ctx.db.unit_of_work(write=False) as session:
        run = await repository.get_run(session, run_id)
        if run is None:
            raise PermanentError(f"provisioning run {run_id} is gone")
        servers = {
            s.id: s
            for s in await inventory.servers_by_ids(session, [uuid.UUID(k) for k in run.hosts])
        }
    await _lock_servers(ctx, run)
    try:
        hosts = dict(run.hosts)
        await _restore(ctx, run, hosts, servers)
        async with ctx.db.unit_of_work() as session:
            current = await repository.get_run(session, run_id, lock=True)
            assert current is not None
            current.status = "rolled_back"
            current.hosts = hosts
        return {"restored": sorted(h["host"] for h in hosts.values() if h.get("snapshot"))}
    finally:
        await asyncio.shield(_release(ctx, run_id))


# --- events -------------------------------------------------------------------------


class _Progress:
    """Tasks done / tasks to do, counted from the roles' task files."""

    def __init__(self, ctx: JobContext, roles: list[str], hosts: int) -> None:
        self.ctx = ctx
        self.per_role = {r: providers.task_count(r) for r in roles}
        self.total = max(sum(self.per_role.values()) * max(hosts, 1), 1)
        self.done = 0

    def skip(self, roles_done: int) -> None:
        self.done += roles_done * (self.total // max(len(self.per_role), 1))

    async def advance(self, message: str) -> None:
        self.done += 1
        await self.ctx.progress(min(99, 100 * self.done / self.total), message)


class _EventTracker:
    def __init__(
        self,
        ctx: JobContext,
        hosts: dict[str, dict[str, Any]],
        by_name: dict[str, str],
        redactor: runner.Redactor,
        progress: _Progress,
        checkpoint: Callable[[], Awaitable[None]],
        roles: list[str],
    ) -> None:
        self.ctx = ctx
        self.checkpoint = checkpoint
        self.roles = roles
        self.hosts = hosts
        self.by_name = by_name
        self.redactor = redactor
        self.progress = progress
        # The role each host is in: when a host moves on, the last one is done.
        self.current_role: dict[str, str] = {}

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        role = data.get("role") or ""
        task = self.redactor.text(str(data.get("task") or ""))
        if kind == "playbook_on_task_start":
            await self.ctx.log(f"TASK [{role + ' : ' if role else ''}{task}]", {"task": task})
            return
        if kind == "playbook_on_stats":
            await self._recap(data)
            return
        status = RESULT_EVENTS.get(kind)
        host = data.get("host")
        if status is None or host not in self.by_name:
            return
        res = data.get("res") or {}
        changed = bool(res.get("changed")) if isinstance(res, dict) else False
        shown = "changed" if status == "ok" and changed else status
        state = self.hosts[self.by_name[host]]
        if self._enter_role(host, role):
            await self.checkpoint()  # a role done: what a takeover resumes after
        details: dict[str, Any] = {
            "host": host,
            "role": role,
            "task": task,
            "status": shown,
            "duration": data.get("duration"),
        }
        if status in ("failed", "unreachable") and not data.get("ignore_errors"):
            message = self.redactor.text(str(res.get("msg") or "")) if isinstance(res, dict) else ""
            details["message"] = message[:2000]
            state.update(
                status=status,
                failed_task=f"{role} : {task}" if role else task,
                failed_role=role or None,
                message=message[:500],
            )
        stdout = self.redactor.text(str(event.get("stdout") or "")).strip()
        if stdout:
            details["stdout"] = stdout[:4000]
        level = {"failed": "error", "unreachable": "error"}.get(status, "log")
        await self.ctx.log(f"{host}: {shown} — {task}", details, kind=level)
        await self.progress.advance(f"{host}: {task}")

    def _enter_role(self, host: str, role: str) -> bool:
        """-> whether the host just finished a role. A role another role
        includes (nginx_proxy in django) is part of the one that includes it."""
        if role not in self.roles:
            return False
        previous = self.current_role.get(host)
        self.current_role[host] = role
        if previous and previous != role:
            done = self.hosts[self.by_name[host]].setdefault("done_roles", [])
            if previous not in done:
                done.append(previous)
                return True
        return False

    async def _recap(self, data: dict[str, Any]) -> None:
        counters = ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored")
        for host, sid in self.by_name.items():
            recap = {c: int((data.get(c) or {}).get(host, 0)) for c in counters}
            self.hosts[sid]["recap"] = recap
        lines = [
            f"{h}: ok={r['ok']} changed={r['changed']} failed={r['failures']} "
            f"unreachable={r['dark']} skipped={r['skipped']}"
            for h, r in ((h, self.hosts[s]["recap"]) for h, s in self.by_name.items())
        ]
        await self.ctx.log("PLAY RECAP\n" + "\n".join(lines), {"recap": True})

    def close(self, outcome: runner.Outcome, roles: list[str]) -> None:
        """A host that did not fail finished every role if ansible did."""
        for sid in self.by_name.values():
            state = self.hosts[sid]
            if state["status"] in ("failed", "unreachable"):
                continue
            if outcome.status == "successful":
                done = state.setdefault("done_roles", [])
                done.extend(r for r in roles if r not in done)
                state["status"] = "ok"
            else:
                state.update(status="failed", message=f"ansible ended: {outcome.status}")


RUN = JobType(
    name="provisioning.run",
    handler=run_job,
    concurrency=1000,
    per_worker=4,
    # Another attempt only after a crash; a failed host is retried by a person.
    max_attempts=3,
    timeout_seconds=3 * 3600,
    description="an Ansible run over servers",
)
ROLLBACK = JobType(
    name="provisioning.rollback",
    handler=rollback_job,
    max_attempts=2,
    timeout_seconds=1800,
    description="restore the snapshots a provisioning run took",
)
# `infrawatch provision --use-agent`: run by the CLI process itself (only it
# can reach the caller's agent), so no worker registers this type.
AGENT_RUN = JobType(
    name="provisioning.agent_run",
    handler=run_job,
    max_attempts=1,
    timeout_seconds=3 * 3600,
    description="an Ansible run with the caller's own ssh-agent",
)
JOB_TYPES = (RUN, ROLLBACK)

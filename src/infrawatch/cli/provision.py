"""`infrawatch provision`: start a provisioning run and follow it here.

By default the run is queued for the workers (with the servers' vault keys)
and this command shows it live. With `--use-agent` it logs in with the
caller's own ssh-agent (SSH_AUTH_SOCK) instead: no key is stored, and the
run executes in this process, the only one that can reach the agent."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer

from infrawatch.cli.common import app, err, fail, run

if TYPE_CHECKING:
    from rich.console import Console

    from infrawatch.core.runtime import Runtime

POLL_SECONDS = 0.5


def _variables(pairs: list[str], vars_json: str | None) -> dict[str, Any]:
    variables: dict[str, Any] = json.loads(vars_json) if vars_json else {}
    if not isinstance(variables, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--vars-json")
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{pair!r} is not name=value", param_hint="--var")
        try:
            variables[name] = json.loads(value)  # 443, true, [80, 443]
        except json.JSONDecodeError:
            variables[name] = value
    return variables


@app.command("provision")
def provision(
    q: Annotated[
        str | None,
        typer.Option("--q", metavar="QUERY", help="search: every live server it matches"),
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option("--server", metavar="NAME", help="a server's name (repeatable)"),
    ] = None,
    roles: Annotated[
        str | None, typer.Option(help="roles in order, comma separated: base,ssh_hardening")
    ] = None,
    stack: Annotated[
        str | None, typer.Option(help="a stack instead of roles: lamp, django")
    ] = None,
    var: Annotated[
        list[str] | None,
        typer.Option("--var", metavar="NAME=VALUE", help="a variable (repeatable)"),
    ] = None,
    vars_json: Annotated[
        str | None, typer.Option(metavar="JSON", help="variables as one JSON object")
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option("--secret", metavar="NAME", help="a vault secret by name (repeatable)"),
    ] = None,
    check: Annotated[bool, typer.Option("--check", help="report, change nothing")] = False,
    use_agent: Annotated[
        bool, typer.Option("--use-agent", help="log in with your ssh-agent, not vault keys")
    ] = False,
    user: Annotated[str, typer.Option(help="login user with --use-agent")] = "root",
    detach: Annotated[
        bool, typer.Option("--detach", help="queue it and print its id; do not follow")
    ] = False,
) -> None:
    """Run roles or a stack on servers; shows each task and host as it goes."""
    from pydantic import ValidationError
    from rich.console import Console

    from infrawatch.core.context import cli_context
    from infrawatch.core.errors import InvalidInput
    from infrawatch.core.validation import plain_errors
    from infrawatch.jobs.context import JobServices
    from infrawatch.jobs.registry import JobRegistry
    from infrawatch.jobs.worker import JobWorker, WorkerOptions
    from infrawatch.provisioning import service, tasks
    from infrawatch.provisioning.schemas import RunCreate

    out = Console()
    agent_socket = os.environ.get("SSH_AUTH_SOCK") if use_agent else None
    if use_agent and not agent_socket:
        fail("--use-agent needs a running ssh-agent (SSH_AUTH_SOCK is unset)")
    if use_agent and detach:
        fail("an agent run executes here; it cannot be detached")
    variables = _variables(var or [], vars_json)

    async def work(runtime: Runtime) -> str:
        ctx = cli_context()
        async with runtime.db.unit_of_work() as session:
            ids = None
            if server:
                found = await service.server_ids_named(session, server)
                ids = [found[name] for name in server]
            try:
                body = RunCreate(
                    servers=ids,
                    q=q,
                    roles=[r.strip() for r in roles.split(",")] if roles else None,
                    stack=stack,
                    vars=variables,
                    secrets=secret or [],
                    check=check,
                )
            except ValidationError as exc:
                raise InvalidInput(
                    "; ".join(plain_errors(exc.errors())), loc=("options",)
                ) from None
            created = await service.create_run(
                session,
                ctx,
                body,
                tasks.AGENT_RUN if use_agent else tasks.RUN,
                None,
                agent_user=user if use_agent else None,
                job_arguments={"agent_socket": agent_socket} if agent_socket else None,
            )
        assert created.job_id is not None
        if detach:
            out.print(str(created.id), markup=False, highlight=False)
            return "queued"
        follower = asyncio.create_task(_follow(runtime, created.job_id, out))
        if use_agent:
            worker = JobWorker(
                JobServices(runtime.db, runtime.bus, runtime.keyring, runtime.settings),
                JobRegistry(),
                WorkerOptions(lease_seconds=runtime.settings.jobs_lease_seconds),
            )
            await worker.run_one(created.job_id, tasks.AGENT_RUN)
        status = await follower
        async with runtime.db.unit_of_work(write=False) as session:
            final = await service.get_run(session, created.id)
        for host in final.hosts:
            recap = host.recap or {}
            line = f"{host.host}: {host.status}"
            if recap:
                line += f" (ok={recap['ok']} changed={recap['changed']} failed={recap['failures']})"
            if host.failed_task:
                line += f" at {host.failed_task}: {host.message or ''}"
            out.print(line, markup=False, highlight=False)
        out.print(f"run {final.id}: {final.status}", markup=False, highlight=False)
        return status if final.status != "rolled_back" else "failed"

    status = run(work, jobs=True)
    if status not in ("succeeded", "queued"):
        raise typer.Exit(code=1)


async def _follow(runtime: Runtime, job_id: uuid.UUID, out: Console) -> str:
    """Prints the run's task starts, failures and recap as the job logs them."""
    from infrawatch.jobs import service as jobs

    seen = 0
    with err().status("waiting for a worker…") as spinner:
        while True:
            async with runtime.db.unit_of_work(write=False) as session:
                page = await jobs.job_events(session, job_id, seen, 500)
            for event in page.events:
                seen = event.seq
                if event.kind == "progress":
                    spinner.update(f"{(event.data or {}).get('percent', 0)} % · {event.message}")
                elif event.message.startswith(("TASK [", "PLAY RECAP")) or event.kind in (
                    "error",
                    "warning",
                ):
                    out.print(event.message, markup=False, highlight=False)
            if page.status in jobs.FINISHED and not page.events:
                return page.status
            if not page.events:
                await asyncio.sleep(POLL_SECONDS)

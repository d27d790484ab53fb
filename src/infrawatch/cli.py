"""The `infrawatch` command."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from infrawatch import migrations
from infrawatch.accounts import service as accounts
from infrawatch.accounts.schemas import TokenCreate, UserCreate, UserUpdate
from infrawatch.app import build_runtime, create_app, start_background_work
from infrawatch.core import keys
from infrawatch.core.config import Settings
from infrawatch.core.context import Role, cli_context
from infrawatch.core.errors import AppError
from infrawatch.core.keys import KeyringMismatch, check_keyring
from infrawatch.core.logs import logging_config
from infrawatch.core.runtime import Runtime
from infrawatch.inventory import service as inventory
from infrawatch.inventory import transfer
from infrawatch.inventory.schemas import ImportReport

app = typer.Typer(help="InfraWatch: a control plane for server fleets.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="The master encryption key.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(db_app, name="db")

err = Console(stderr=True)
T = TypeVar("T")


def _run(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run one piece of async work against a migrated database."""

    async def main() -> T:
        runtime = build_runtime(Settings())
        try:
            await migrations.upgrade(runtime.db.engine)
            return await work(runtime)
        finally:
            await runtime.db.dispose()

    try:
        return asyncio.run(main())
    except KeyringMismatch as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None
    except AppError as exc:
        detail = exc.detail()
        if isinstance(detail, list):
            for entry in detail[:50]:
                err.print(
                    f"[red]error[/red] {'/'.join(str(p) for p in entry['loc'])}: {entry['msg']}"
                )
        else:
            err.print(f"[red]error:[/red] {detail}")
        raise typer.Exit(code=1) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Run InfraWatch in one process: the HTTP API, on SQLite unless told otherwise."""
    import uvicorn

    settings = Settings(host=host, port=port)
    user_count = _run(_check_and_count_users)
    web_app = create_app(settings)
    runtime: Runtime = web_app.state.runtime
    where = (
        "SQLite in " + str(runtime.settings.data_dir.resolve())
        if runtime.settings.is_sqlite
        else "PostgreSQL"
    )
    err.print(f"InfraWatch {web_app.version} on {where}")
    err.print(f"Listening on [bold]http://{host}:{port}[/bold]  (console at /, API at /docs)")
    if user_count == 0:
        err.print(
            "No users yet. Create the first admin with:\n"
            "  infrawatch users create admin --role admin"
        )
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        log_config=logging_config(settings.log_level),
        proxy_headers=False,
    )


@app.command()
def worker(
    location: Annotated[str, typer.Option(help="where this worker checks from")] = "default",
    metrics_port: Annotated[
        int | None, typer.Option(help="serve this process's /metrics on this port")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="address for --metrics-port")] = "127.0.0.1",
) -> None:
    """Run the monitoring engine, alerting and the job worker without the web
    API. Any number of workers share monitors (shard leases) and jobs."""
    import logging.config

    settings = Settings(engine_enabled=True, engine_location=location)
    logging.config.dictConfig(logging_config(settings.log_level))
    with asyncio.Runner(loop_factory=_fastest_loop()) as runner:
        runner.run(_work(settings, metrics_port, metrics_host))


def _fastest_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (uvicorn[standard] brings it, and `serve` runs
    on it already): a quarter more requests per core for the checks."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _work(settings: Settings, metrics_port: int | None, metrics_host: str) -> None:
    import signal

    from aiohttp import web

    from infrawatch.api.metrics import render_metrics

    runtime = build_runtime(settings)
    await migrations.upgrade(runtime.db.engine)
    try:
        await check_keyring(runtime.db, runtime.keyring)
    except KeyringMismatch as exc:
        err.print(f"[red]error:[/red] {exc}")
        await runtime.db.dispose()
        raise SystemExit(1) from None
    await runtime.bus.start()
    background = start_background_work(runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = None
    if metrics_port is not None:

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=await render_metrics(runtime, fleet=False),
                headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
            )

        metrics_app = web.Application()
        metrics_app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(metrics_app)
        await runner.setup()
        await web.TCPSite(runner, metrics_host, metrics_port).start()
    err.print(f"InfraWatch worker at {settings.engine_location!r}: checks, alerting and jobs")
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await runtime.bus.stop()
        await runtime.db.dispose()


async def _check_and_count_users(runtime: Runtime) -> int:
    await check_keyring(runtime.db, runtime.keyring)
    async with runtime.db.unit_of_work(write=False) as session:
        return await accounts.count_users(session)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new master key and re-encrypt every secret with it, while the
    service runs. With the key in INFRAWATCH_MASTER_KEY (not a file), put
    the new key first there yourself (`infrawatch keys generate`), restart,
    then run this to re-encrypt."""

    async def work(runtime: Runtime) -> keys.Reencryption:
        path = keys.key_file(runtime.settings)
        if path is not None:
            keys.add_key_to_file(path)
            runtime.keyring.refresh(force=True)
            err.print(f"new master key {runtime.keyring.primary_id} added first in {path}")
        else:
            err.print(
                "the master key comes from INFRAWATCH_MASTER_KEY: re-encrypting with its first "
                f"key, {runtime.keyring.primary_id}"
            )
        total = await keys.count_to_reencrypt(runtime.db, runtime.keyring)
        with _progress() as progress:
            task = progress.add_task("re-encrypting secrets", total=total)
            return await keys.reencrypt(
                runtime.db, runtime.keyring, lambda n: progress.advance(task, n)
            )

    report = _run(work)
    err.print(f"re-encrypted {report.done} secret(s)")
    for failure in report.failed[:20]:
        err.print(f"[red]could not re-encrypt[/red] {failure}")
    if report.failed:
        raise typer.Exit(code=1)


@keys_app.command("status")
def keys_status() -> None:
    """The configured key ids and how many secrets each one encrypted."""

    async def work(runtime: Runtime) -> tuple[list[str], dict[str, int]]:
        return runtime.keyring.key_ids, dict(await keys.key_usage(runtime.db))

    configured, usage = _run(work)
    for kid in configured:
        role = "primary" if kid == configured[0] else "older"
        print(f"{kid}  {role:8} {usage.pop(kid, 0)} secret(s)")
    for kid, count in usage.items():
        print(f"{kid}  MISSING  {count} secret(s) this key cannot read")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random master key (for INFRAWATCH_MASTER_KEY)."""
    print(keys.new_key())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (serve does this on start too) and rebuild search indexes."""

    async def work(runtime: Runtime) -> str | None:
        await migrations.rebuild_search_index(runtime.db.engine)
        return await migrations.current_revision(runtime.db.engine)

    err.print(f"database at revision {_run(work)}")


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="read the password from stdin")
]


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, operator or viewer")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user."""
    password = _read_password(password_stdin)
    try:
        data = UserCreate(username=username, role=role, password=password)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.unit_of_work() as session:
            return await accounts.create_user(session, cli_context(), data)

    user = _run(work)
    print(f"created {user.role.value} {user.username} ({user.id})")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            err.print("[red]error:[/red] the passwords differ")
            raise typer.Exit(code=1)
        return password
    err.print("[red]error:[/red] no terminal to ask for a password; use --password-stdin")
    raise typer.Exit(code=1)


@users_app.command("list")
def users_list() -> None:
    """List users: role, whether active, last login."""

    async def work(runtime: Runtime) -> list[Any]:
        async with runtime.db.unit_of_work(write=False) as session:
            return await accounts.list_users(session)

    table = Table("username", "role", "active", "last login", box=None)
    for user in _run(work):
        last = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "never"
        table.add_row(user.username, user.role.value, "yes" if user.is_active else "no", last)
    Console().print(table)


@users_app.command("unlock")
def users_unlock(username: str) -> None:
    """Forget a user's recent failed logins, lifting any login rate limit on them."""

    async def work(runtime: Runtime) -> int:
        async with runtime.db.unit_of_work() as session:
            return await accounts.unlock_user(session, cli_context(), username)

    print(f"unlocked {username} ({_run(work)} failed logins forgotten)")


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password (and unlock): for a user who forgot theirs, or an admin locked out."""
    password = _read_password(password_stdin)
    try:
        data = UserUpdate(password=password)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None

    async def work(runtime: Runtime) -> None:
        async with runtime.db.unit_of_work() as session:
            user = await accounts.user_named(session, username)
            await accounts.update_user(session, cli_context(), user.id, data)
            await accounts.unlock_user(session, cli_context(), username)

    _run(work)
    print(f"password of {username} reset")


@users_app.command("disable")
def users_disable(
    username: str,
    enable: Annotated[bool, typer.Option("--enable", help="enable the user again")] = False,
) -> None:
    """Disable a user: their sessions and tokens stop working at once."""

    async def work(runtime: Runtime) -> None:
        async with runtime.db.unit_of_work() as session:
            user = await accounts.user_named(session, username)
            await accounts.update_user(
                session, cli_context(), user.id, UserUpdate(is_active=enable)
            )

    _run(work)
    print(f"{username} {'enabled' if enable else 'disabled'}")


@tokens_app.command("create")
def tokens_create(
    username: str,
    name: Annotated[str, typer.Option(help="what the token is for")] = "cli",
    read_only: Annotated[
        bool, typer.Option("--read-only", help="the token may not change anything")
    ] = False,
    expires_in_days: Annotated[int | None, typer.Option(help="expire after this many days")] = None,
) -> None:
    """Create an API token; the token is printed alone on the last line."""
    try:
        data = TokenCreate(
            username=username, name=name, read_only=read_only, expires_in_days=expires_in_days
        )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=1) from None

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.unit_of_work() as session:
            return await accounts.create_token(session, cli_context(), data)

    token = _run(work)
    print(f"token {token.name!r} for {token.username} (read-only: {token.read_only}); shown once:")
    print(token.token)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )


def _format_of(path: Path, given: str | None) -> transfer.Format:
    fmt = given or {".csv": "csv", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}.get(
        path.suffix.lower()
    )
    if fmt not in ("csv", "yaml", "json"):
        err.print("[red]error:[/red] say --format csv|yaml|json (the file name does not tell)")
        raise typer.Exit(code=1)
    return fmt  # type: ignore[return-value]


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    format: Annotated[
        str | None, typer.Option(help="csv, yaml or json; default from the file name")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would change; write nothing")
    ] = False,
) -> None:
    """Create or update servers from a file, all or nothing."""
    fmt = _format_of(file, format)
    body = file.read_bytes()

    async def work(runtime: Runtime) -> ImportReport:
        with _progress() as progress:
            task = progress.add_task("importing", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            async with runtime.db.unit_of_work() as session:
                return await transfer.import_servers(
                    session,
                    cli_context(),
                    body,
                    fmt,
                    dry_run=dry_run,
                    max_rows=runtime.settings.import_max_rows,
                    progress=advance,
                )

    report = _run(work)
    for row in report.rows:
        if row.action == "error":
            err.print(f"row {row.row} ({row.name or '?'}): " + "; ".join(row.errors))
    verb = "would create" if dry_run else "created"
    print(
        f"{verb} {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
        f"errors {report.errors}"
    )
    if report.errors:
        raise typer.Exit(code=1)


@app.command("export")
def export(
    format: Annotated[str, typer.Option(help="csv, yaml or json")] = "csv",
    q: Annotated[str | None, typer.Option(help="search-language filter")] = None,
    include_deleted: Annotated[bool, typer.Option("--include-deleted")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write; default stdout")
    ] = None,
) -> None:
    """Write servers as CSV, YAML or JSON."""
    if format not in ("csv", "yaml", "json"):
        err.print("[red]error:[/red] --format is csv, yaml or json")
        raise typer.Exit(code=1)

    async def work(runtime: Runtime) -> str:
        with _progress() as progress:
            task = progress.add_task("exporting", total=None)
            async with runtime.db.unit_of_work(write=False) as session:
                return await transfer.export_servers(
                    session,
                    inventory.ServerFilters(q=q, include_deleted=include_deleted),
                    format,  # type: ignore[arg-type]
                    progress=lambda done, total: progress.update(task, completed=done, total=total),
                )

    text = _run(work)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err.print(f"wrote {output}")


def main() -> None:
    app()


def _register_provision() -> None:
    from infrawatch.cli_provision import provision

    app.command("provision")(provision)


_register_provision()

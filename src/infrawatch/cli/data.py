"""`infrawatch import|export|apply`, `infrawatch db …`, `infrawatch keys …`,
`infrawatch agents …`: commands on an installation's data."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from infrawatch.cli.common import app, err, fail, load_settings, print_out, progress, run, sub_app

if TYPE_CHECKING:
    from infrawatch.core.keys import Reencryption
    from infrawatch.core.runtime import Runtime
    from infrawatch.fleet.service import Change
    from infrawatch.inventory.schemas import ImportReport

keys_app = sub_app("keys", "The master encryption key: status, rotate, generate.")
db_app = sub_app("db", "The database: upgrade, backup.")
agents_app = sub_app("agents", "Host agents: their tokens.")

Format = Literal["csv", "yaml", "json"]
SUFFIXES: dict[str, Format] = {".csv": "csv", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


@app.command("import")
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE", exists=True, dir_okay=False, readable=True, help="CSV, YAML or JSON"
        ),
    ],
    format: Annotated[
        Format | None, typer.Option(help="the file's format; default: from its name")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would change; write nothing")
    ] = False,
    create_groups: Annotated[
        bool, typer.Option("--create-groups", help="make the groups rows name that do not exist")
    ] = False,
) -> None:
    """Create or update servers from a file, all or nothing.

    Columns: name, then any of the server's fields; tags as key=value pairs
    separated by ";" (env=prod; role=web), groups separated by ";"."""
    from infrawatch.core.context import cli_context
    from infrawatch.inventory import transfer

    fmt = format or SUFFIXES.get(file.suffix.lower())
    if fmt is None:
        fail("say --format csv|yaml|json (the file name does not tell)")
    body = file.read_bytes()

    async def work(runtime: Runtime) -> ImportReport:
        with progress() as bar:
            task = bar.add_task("checking" if dry_run else "importing", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            async with runtime.db.unit_of_work() as session:
                return await transfer.import_servers(
                    session,
                    cli_context(),
                    body,
                    fmt,
                    dry_run=dry_run,
                    max_rows=runtime.settings.import_max_rows,
                    create_groups=create_groups,
                    progress=advance,
                )

    report = run(work)
    for row in report.rows:
        if row.action == "error":
            err().print(
                f"row {row.row} ({row.name or '?'}): " + "; ".join(row.errors), markup=False
            )
    print_out(import_summary(report))
    if report.errors:
        raise typer.Exit(code=1)


def import_summary(report: ImportReport) -> str:
    """`would create 1, update 1, leave 0 unchanged; 0 errors` (dry run) or
    `created 1, updated 1, 0 unchanged; 0 errors`."""
    if report.dry_run:
        line = (
            f"would create {report.created}, update {report.updated}, "
            f"leave {report.unchanged} unchanged; {report.errors} error(s)"
        )
        groups = "would create group(s)"
    else:
        line = (
            f"created {report.created}, updated {report.updated}, "
            f"{report.unchanged} unchanged; {report.errors} error(s)"
        )
        groups = "created group(s)"
    if report.groups_created:
        line += f"; {groups} {', '.join(report.groups_created)}"
    return line


SIGNS = {"create": "+", "update": "~", "delete": "-"}
ACTIONS = tuple(SIGNS)


def plan_lines(changes: list[Change]) -> list[str]:
    """`+ monitors web-1 https`, `~ servers web-1 (hostname, tags)`, `- rules old`."""
    return [
        f"{SIGNS[c.action]} {c.kind} {c.name}" + (f" ({', '.join(c.fields)})" if c.fields else "")
        for c in changes
    ]


def plan_summary(changes: list[Change], dry_run: bool, actions: tuple[str, ...] = ACTIONS) -> str:
    """`1 to create, 0 to update, …` (dry run), `1 created, 0 updated, …`,
    or `nothing to change`."""
    if not changes:
        return "nothing to change"
    counts = {action: sum(1 for c in changes if c.action == action) for action in actions}
    return ", ".join(f"{counts[a]} to {a}" if dry_run else f"{counts[a]} {a}d" for a in actions)


@app.command("apply")
def apply(
    files: Annotated[
        list[Path],
        typer.Option(
            "--file",
            "-f",
            metavar="PATH",
            exists=True,
            readable=True,
            help="a fleet document (YAML), or a folder of them; give several -f to merge",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan; change nothing")
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune", help="delete what the documents do not name, of the kinds they list"
        ),
    ] = False,
) -> None:
    """Make the installation match fleet documents: templates, groups,
    servers, monitors, channels, rules, maintenance windows and status
    pages, keyed by name (docs/config-as-code.md).

    Prints the plan (+ create, ~ update, - delete) first, then applies it in
    one transaction: all of it, or nothing. Secrets are never written in
    the document: it names a stored secret or a variable of this shell's
    environment instead (docs/config-as-code.md)."""
    from infrawatch.core.context import cli_context
    from infrawatch.fleet import document, service
    from infrawatch.fleet.kinds import Tools

    try:
        items = document.parse(document.read_paths(files))
    except Exception as exc:
        fail(getattr(exc, "message", str(exc)))

    async def work(runtime: Runtime) -> list[Change]:
        tools = Tools(runtime.keyring, "")
        async with runtime.db.unit_of_work(write=not dry_run) as session:
            plan = await service.make_plan(session, tools, items, prune=prune, environment=True)
            for line in plan_lines(plan.changes):
                print_out(line)
            if not dry_run and plan.steps:
                with progress() as bar:
                    bar.add_task("applying", total=None)
                    await service.apply_plan(session, cli_context(), tools, plan)
            return plan.changes

    changes = run(work)
    print_out(plan_summary(changes, dry_run) + (" (dry run)" if dry_run else ""))


class _RolledBack(Exception):
    """Ends a dry run's transaction with a rollback, carrying its outcome."""

    def __init__(self, outcome: Any) -> None:
        super().__init__("dry run")
        self.outcome = outcome


@app.command("import-kuma")
def import_kuma(
    database: Annotated[
        Path,
        typer.Argument(
            metavar="DB",
            exists=True,
            dir_okay=False,
            readable=True,
            help="Uptime Kuma's SQLite database (kuma.db in its data folder)",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan and the report; change nothing")
    ] = False,
    servers: Annotated[
        bool,
        typer.Option(
            "--servers/--no-servers",
            help="make a server for each host the monitors check (it carries their tags)",
        ),
    ] = True,
    report: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="also write the report (what was not mapped) as JSON"),
    ] = None,
) -> None:
    """Import Uptime Kuma 1.x or 2.x: monitors (http, keyword, json-query,
    port, ping, dns, push), notifications as channels and rules, status
    pages, tags and maintenance windows (docs/config-as-code.md).

    Prints the plan, then what could not be mapped and why. Secrets
    (notification URLs, passwords) are stored encrypted as kuma-* secrets.
    All or nothing; running it again changes nothing. The Kuma database is
    only read."""
    import json
    from dataclasses import asdict

    from infrawatch.core.context import cli_context
    from infrawatch.fleet.kinds import Tools
    from infrawatch.fleet.kuma import importer

    try:
        conversion = importer.read(database, servers=servers)
    except Exception as exc:
        fail(getattr(exc, "message", str(exc)))

    async def work(runtime: Runtime) -> importer.KumaImport:
        tools = Tools(runtime.keyring, "")
        try:
            async with runtime.db.unit_of_work() as session:
                with progress() as bar:
                    bar.add_task("checking" if dry_run else "importing", total=None)
                    outcome = await importer.import_conversion(
                        session, cli_context(), tools, conversion, dry_run=dry_run
                    )
                if dry_run:
                    raise _RolledBack(outcome)
                return outcome
        except _RolledBack as rolled_back:
            rolled: importer.KumaImport = rolled_back.outcome
            return rolled

    outcome = run(work)
    print_out(f"Uptime Kuma {outcome.kuma_version}")
    for line in plan_lines(outcome.changes):
        print_out(line)
    fresh = [n for n, how in outcome.secrets.items() if how != "unchanged"]
    if fresh:
        verb = "would store" if dry_run else "stored"
        print_out(f"{verb} {len(fresh)} secret(s): {', '.join(fresh)}")
    for note in outcome.notes:
        prefix = "partly" if note.imported else "not imported"
        print_out(f"{prefix}: {note.kind} {note.name!r}: {note.reason}")
    skipped = sum(1 for n in outcome.notes if not n.imported)
    summary = plan_summary(outcome.changes, dry_run, ("create", "update"))  # it never deletes
    print_out(f"{summary}; {skipped} not imported" + (" (dry run)" if dry_run else ""))
    if report is not None:
        report.write_text(
            json.dumps(
                {
                    "kuma_version": outcome.kuma_version,
                    "dry_run": dry_run,
                    "changes": [asdict(c) for c in outcome.changes],
                    "notes": [asdict(n) for n in outcome.notes],
                },
                indent=2,
            )
        )


@app.command("export")
def export(
    format: Annotated[Format, typer.Option(help="csv, yaml or json")] = "csv",
    q: Annotated[
        str | None, typer.Option(metavar="QUERY", help="only servers this search matches")
    ] = None,
    include_deleted: Annotated[
        bool, typer.Option("--include-deleted", help="deleted servers too")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="file to write; default stdout"),
    ] = None,
    everything: Annotated[
        bool,
        typer.Option(
            "--all",
            help="the whole fleet as a fleet document (what `apply -f` reads), secrets left out",
        ),
    ] = False,
) -> None:
    """Write servers as CSV, YAML or JSON (what import reads), or with
    --all the fleet document `infrawatch apply` reads."""
    from infrawatch.inventory import service as inventory
    from infrawatch.inventory import transfer

    async def fleet(runtime: Runtime) -> str:
        from infrawatch.fleet import document, service
        from infrawatch.fleet.kinds import Tools

        tools = Tools(runtime.keyring, "")
        async with runtime.db.unit_of_work(write=False) as session:
            return document.render(await service.export(session, tools))

    async def work(runtime: Runtime) -> str:
        with progress() as bar:
            task = bar.add_task("exporting", total=None)
            async with runtime.db.unit_of_work(write=False) as session:
                return await transfer.export_servers(
                    session,
                    inventory.ServerFilters(q=q, include_deleted=include_deleted),
                    format,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )

    text = run(fleet if everything else work)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err().print(f"wrote {output}", highlight=False)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new master key and re-encrypt every secret with it, while the
    service runs. With the key in INFRAWATCH_MASTER_KEY (not a file), put the
    new key first there yourself (`infrawatch keys generate`), restart, then
    run this to re-encrypt."""
    from infrawatch.core import keys

    async def work(runtime: Runtime) -> Reencryption:
        path = keys.key_file(runtime.settings)
        if path is not None:
            keys.add_key_to_file(path)
            runtime.keyring.refresh(force=True)
            err().print(f"new master key {runtime.keyring.primary_id} added first in {path}")
        else:
            err().print(
                "the master key comes from INFRAWATCH_MASTER_KEY: re-encrypting with its first "
                f"key, {runtime.keyring.primary_id}"
            )
        total = await keys.count_to_reencrypt(runtime.db, runtime.keyring)
        with progress() as bar:
            task = bar.add_task("re-encrypting secrets", total=total)
            return await keys.reencrypt(runtime.db, runtime.keyring, lambda n: bar.advance(task, n))

    report = run(work)
    err().print(f"re-encrypted {report.done} secret(s)")
    for failure in report.failed[:20]:
        err().print(f"[red]could not re-encrypt[/red] {failure}")
    if report.failed:
        raise typer.Exit(code=1)


@keys_app.command("status")
def keys_status() -> None:
    """The configured key ids and how many secrets each one encrypted."""
    from infrawatch.core import keys

    async def work(runtime: Runtime) -> tuple[list[str], dict[str, int]]:
        return runtime.keyring.key_ids, dict(await keys.key_usage(runtime.db))

    configured, usage = run(work)
    for kid in configured:
        role = "primary" if kid == configured[0] else "older"
        print_out(f"{kid}  {role:8} {usage.pop(kid, 0)} secret(s)")
    for kid, count in usage.items():
        print_out(f"{kid}  MISSING  {count} secret(s) this key cannot read")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random master key (for INFRAWATCH_MASTER_KEY)."""
    from infrawatch.core import keys

    print_out(keys.new_key())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (serve does this on start too) and rebuild
    search indexes."""
    from infrawatch import migrations

    async def work(runtime: Runtime) -> str | None:
        await migrations.rebuild_search_index(runtime.db.engine)
        return await migrations.current_revision(runtime.db.engine)

    err().print(f"database at revision {run(work)}")


@db_app.command("backup")
def db_backup(
    path: Annotated[
        Path, typer.Argument(metavar="FILE", help="the backup file to write (must not exist)")
    ],
) -> None:
    """Copy the SQLite database to FILE while InfraWatch runs (SQLite's online
    backup: a consistent snapshot, writers wait only for each step). On
    PostgreSQL use pg_dump (docs/deploy.md)."""
    import sqlite3

    settings = load_settings()
    source_path = settings.sqlite_path
    if source_path is None:
        fail(
            "the database is PostgreSQL: back it up with pg_dump --format=custom (docs/deploy.md)",
            code=2,
        )
    if not source_path.exists():
        fail(f"no database at {source_path} (INFRAWATCH_DATA_DIR points elsewhere?)", code=2)
    if path.exists():
        fail(f"{path} exists; a backup never overwrites", code=2)
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    target = sqlite3.connect(path)
    try:
        with progress() as bar:
            task = bar.add_task("backing up", total=None)

            def step(_: int, remaining: int, total: int) -> None:
                bar.update(task, total=total, completed=total - remaining)

            source.backup(target, pages=256, progress=step)
    finally:
        target.close()
        source.close()
    err().print(f"backed up {source_path} to {path} ({path.stat().st_size:,} bytes)")


@agents_app.command("token")
def agents_token(
    server: Annotated[str, typer.Argument(metavar="SERVER", help="the server's name or id")],
) -> None:
    """A new agent token for SERVER (its old one stops working), printed
    alone on the last line: give it to `infrawatch agent --token` there."""
    from infrawatch.core.context import cli_context
    from infrawatch.core.errors import NotFound
    from infrawatch.credentials import agent_tokens as credential_agent_tokens
    from infrawatch.inventory import service as inventory

    async def work(runtime: Runtime) -> str:
        async with runtime.db.unit_of_work() as session:
            ids = await inventory.live_ids_by_name(session, [server])
            server_id = ids.get(server)
            if server_id is None:
                try:
                    server_id = uuid.UUID(server)
                except ValueError:
                    raise NotFound(f"no live server named {server!r}") from None
            return await credential_agent_tokens.issue_agent_token(
                session, cli_context(), runtime.keyring, server_id
            )

    token = run(work)
    print_out(f"agent token for {server}; shown once:")
    print_out(token)

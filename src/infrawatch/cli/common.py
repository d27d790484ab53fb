"""What every command shares: the Typer apps, error output, progress bars,
and running async work against the database.

Nothing of the server is imported at module level: `infrawatch --help`
must answer at once, and the server's modules take seconds to import.
Each command imports what it uses when it runs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from infrawatch.cli.help import install_plain_help

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from infrawatch.core.config import Settings
    from infrawatch.core.runtime import Runtime

install_plain_help()

HELP_SETTINGS = {"help_option_names": ["--help", "-h"]}
# Help as click prints it (plain, rewrapped paragraphs), not Rich panels,
# which keep every line break of a docstring.
PLAIN = None
app = typer.Typer(
    help="InfraWatch: a control plane for server fleets.",
    no_args_is_help=True,
    add_completion=False,
    context_settings=HELP_SETTINGS,
    rich_markup_mode=PLAIN,
    pretty_exceptions_enable=False,  # a plain traceback; Rich's shows locals, which hold secrets
)


def sub_app(name: str, help: str) -> typer.Typer:
    sub = typer.Typer(
        help=help, no_args_is_help=True, context_settings=HELP_SETTINGS, rich_markup_mode=PLAIN
    )
    app.add_typer(sub, name=name)
    return sub


T = TypeVar("T")
_err: Console | None = None


def err() -> Console:
    """The stderr console, made on first use (rich costs an import)."""
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(stderr=True, soft_wrap=True)  # paths and commands stay whole to copy
    return _err


def fail(message: str, code: int = 1) -> NoReturn:
    err().print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code=code)


def fail_invalid(exc: Exception) -> NoReturn:
    """A pydantic ValidationError as `field: rule` lines, never its raw text."""
    from pydantic import ValidationError

    from infrawatch.core.validation import plain_errors

    lines = plain_errors(exc.errors()) if isinstance(exc, ValidationError) else []
    if not lines:
        fail(str(exc))
    for line in lines[:-1]:
        err().print(f"[red]error:[/red] {line}", highlight=False)
    fail(lines[-1])


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; a bad INFRAWATCH_* value is said in
    words naming the variable."""
    from pydantic import ValidationError

    from infrawatch.core.config import Settings
    from infrawatch.core.validation import plain_message

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            name = "INFRAWATCH_" + "_".join(str(p) for p in error["loc"]).upper()
            err().print(f"[red]error:[/red] {name}: {plain_message(dict(error))}")
        raise typer.Exit(code=2) from None


def run(
    work: Callable[[Runtime], Awaitable[T]],
    *,
    settings: Settings | None = None,
    jobs: bool = False,
    create: bool = False,
) -> T:
    """Run one piece of async work against the migrated database of an
    existing installation: a command never creates a data directory (only
    `serve` and `worker` do), so a command run in the wrong directory says
    so instead of working on an empty database (`create`: serve's first
    start). `jobs`: the work enqueues jobs and needs every job type
    registered."""
    from infrawatch import migrations
    from infrawatch.core.datadir import DataDirMissing
    from infrawatch.core.errors import AppError
    from infrawatch.core.keys import KeyringMismatch

    settings = settings or load_settings()
    try:
        runtime = _runtime(settings, jobs, create)
    except DataDirMissing as exc:
        fail(str(exc))

    async def main() -> T:
        try:
            await migrations.upgrade(runtime.db.engine)
            return await work(runtime)
        finally:
            await runtime.db.dispose()

    try:
        return asyncio.run(main())
    except KeyringMismatch as exc:
        fail(str(exc))
    except AppError as exc:
        detail = exc.detail()
        if isinstance(detail, list):
            from infrawatch.core.validation import plain_errors

            lines = plain_errors(detail)
            for line in lines[:50]:
                err().print(f"[red]error:[/red] {line}", highlight=False)
            raise typer.Exit(code=1) from None
        fail(str(detail))


def _runtime(settings: Settings, jobs: bool, create: bool) -> Runtime:
    if jobs:
        from infrawatch.app import build_runtime

        return build_runtime(settings, create_data_dir=create)
    from infrawatch.core.runtime import assemble_runtime
    from infrawatch.jobs.registry import JobRegistry

    return assemble_runtime(settings, lambda _: JobRegistry(), create_data_dir=create)


def progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err(),
    )


def print_out(text: str) -> None:
    sys.stdout.write(text + "\n")

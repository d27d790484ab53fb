"""The `infrawatch` command.

Commands live in small modules by what they work on; importing them
registers them on `app`. None imports the server at module level, so
`infrawatch --help` and `--version` answer at once."""

from __future__ import annotations

from typing import Annotated

import typer

from infrawatch.cli import data, provision, server, users
from infrawatch.cli.common import app

__all__ = ["app", "main"]
_COMMANDS = (data, provision, server, users)  # imported for their commands


def _version(value: bool) -> None:
    if value:
        from infrawatch import __version__

        print(f"infrawatch {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """InfraWatch: a control plane for server fleets.

    Start with `infrawatch serve`; every other command works on the
    installation it made (its data directory, INFRAWATCH_DATA_DIR, or
    ./infrawatch-data here)."""


@app.command(
    "agent",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def agent(ctx: typer.Context) -> None:
    """On a host: report CPU, memory, disks, load and network every 30 s
    (`infrawatch agent --url URL --token TOKEN`; --help for more)."""
    from infrawatch.agent.cli import main as agent_main

    agent_main(list(ctx.args))


def main() -> None:
    app(prog_name="infrawatch")  # also under `python -m infrawatch`

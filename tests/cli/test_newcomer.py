"""The command line as a newcomer meets it: in the wrong directory, with a
port taken, with a bad password, reading --help."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import create_user, free_port, infrawatch, running_server

NOISE = ("<bool>", "<str>", "<int>", "{", "pydantic", "https://errors")


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from infrawatch.cli import app

    group = get_command(app)
    found: list[list[str]] = [[]]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", None)
        if subs:
            found += [[name, sub] for sub in subs]
        elif name != "agent":  # the agent's own parser; tested in tests/monitoring
            found.append([name])
    return found


def test_help_reads_like_a_unix_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    commands = _commands()
    assert ["users", "delete"] in commands and ["tokens", "revoke"] in commands
    for command in commands:
        shown = infrawatch(env, *command, "--help", cwd=tmp_path)
        assert shown.returncode == 0, (command, shown.stderr)
        for noise in NOISE:
            assert noise not in shown.stdout, (command, noise, shown.stdout)
        assert "Usage: infrawatch" in shown.stdout
    # Asking for help makes nothing where it is asked.
    assert list(tmp_path.iterdir()) == []
    version = infrawatch(env, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("infrawatch 0.")


def test_help_and_version_do_not_load_the_server() -> None:
    # What made --help take seconds: the web framework, the ORM and every
    # domain imported before a word was printed. (Timings: bench/cli.py.)
    probe = (
        "import sys, contextlib, io\n"
        "sys.argv = ['infrawatch', '--help']\n"
        "from infrawatch.entry import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main()\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'pydantic', 'ansible_runner', 'boto3',"
        " 'asyncssh', 'rich.progress') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == "", loaded.stdout


def test_a_command_in_the_wrong_directory_says_where_it_looked_and_makes_nothing(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    for command in (
        ["users", "create", "admin", "--role", "admin", "--password-stdin"],
        ["users", "list"],
        ["tokens", "list"],
        ["keys", "status"],
        ["db", "upgrade"],
    ):
        refused = infrawatch(env, *command, stdin="a long enough password\n", cwd=tmp_path)
        assert refused.returncode == 1, (command, refused.stdout, refused.stderr)
        assert f"no InfraWatch database at {tmp_path}/infrawatch-data" in refused.stderr
        assert "INFRAWATCH_DATA_DIR=/path/to/infrawatch-data infrawatch " in refused.stderr
        assert "Traceback" not in refused.stderr
        assert list(tmp_path.iterdir()) == [], command
    # Pointed at the right place, the same command works there.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    wrong = dict(env, INFRAWATCH_DATA_DIR=str(tmp_path / "typo"))
    assert infrawatch(wrong, "users", "list", cwd=elsewhere).returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]


def test_serve_says_the_line_to_paste_and_the_line_works_from_anywhere(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    with running_server(cli_env) as (_, output):
        pass
    text = "\n".join(output)
    (line,) = [row.strip() for row in output if "infrawatch users create admin" in row]
    assert line.startswith("INFRAWATCH_DATA_DIR=") or line.startswith(
        "INFRAWATCH_DATABASE_URL=… INFRAWATCH_DATA_DIR="
    ), text
    data_dir = line.split("INFRAWATCH_DATA_DIR=", 1)[1].split(" ", 1)[0]
    assert Path(data_dir) == Path(cli_env["INFRAWATCH_DATA_DIR"]).resolve()
    # Pasted elsewhere, with that directory, the admin lands in this installation.
    somewhere = tmp_path / "somewhere"
    somewhere.mkdir()
    env = dict(cli_env, INFRAWATCH_DATA_DIR=data_dir)
    made = create_user(env, "admin", cwd=somewhere)
    assert made.returncode == 0, made.stderr
    assert list(somewhere.iterdir()) == []
    listed = infrawatch(cli_env, "users", "list")
    assert "admin" in listed.stdout


def test_serve_on_a_port_in_use_says_who_holds_it(cli_env: dict[str, str]) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        refused = infrawatch(cli_env, "serve", "--port", str(port))
    assert refused.returncode == 2, refused.stderr
    assert f"port {port} on 127.0.0.1 is in use by pid {os.getpid()}" in refused.stderr
    assert "Listening on" not in refused.stderr and "Traceback" not in refused.stderr
    assert "--port" in refused.stderr


def test_users_and_tokens_are_listed_revoked_and_deleted(cli_env: dict[str, str]) -> None:
    assert create_user(cli_env, "root").returncode == 0
    assert create_user(cli_env, "ada", role="viewer").returncode == 0
    made = infrawatch(cli_env, "tokens", "create", "ada", "--name", "ci")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    listed = infrawatch(cli_env, "tokens", "list")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if " ci " in line]
    assert secret not in listed.stdout and secret[:10] + "…" in row and "active" in row

    revoked = infrawatch(cli_env, "tokens", "revoke", secret[:10])
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked token 'ci' of ada" in revoked.stdout
    assert " ci " not in infrawatch(cli_env, "tokens", "list").stdout
    assert "revoked" in infrawatch(cli_env, "tokens", "list", "--all").stdout
    unknown = infrawatch(cli_env, "tokens", "revoke", "iw_nothing")
    assert unknown.returncode == 1 and "no token starts with 'iw_nothing'" in unknown.stderr

    assert infrawatch(cli_env, "users", "delete", "ada", "--yes").returncode == 0
    assert "ada" not in infrawatch(cli_env, "users", "list").stdout
    last_admin = infrawatch(cli_env, "users", "delete", "root", "--yes")
    assert last_admin.returncode == 1 and "admin" in last_admin.stderr
    unconfirmed = infrawatch(cli_env, "users", "delete", "root")  # no terminal to ask on
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr


@pytest.mark.parametrize(
    ("username", "password", "said"),
    [
        ("root", "short", "password: must be at least 8 characters long"),
        (
            "root!",
            "a long enough password",
            "username: must start with a letter or digit and hold only letters, digits",
        ),
    ],
)
def test_a_bad_user_is_said_in_plain_words(
    cli_env: dict[str, str], username: str, password: str, said: str
) -> None:
    refused = create_user(cli_env, username, password=password)
    assert refused.returncode == 1
    assert said in refused.stderr, refused.stderr
    for noise in ("pydantic", "https://", "validation error for", "String should"):
        assert noise not in refused.stderr


def test_import_makes_missing_groups_and_sums_up_a_dry_run(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    first = tmp_path / "first.csv"
    first.write_text("name,tags\nweb-1,env=prod\n")
    assert infrawatch(cli_env, "import", str(first)).returncode == 0
    source = tmp_path / "servers.csv"
    source.write_text(
        "name,tags,groups\n"
        "web-1,env=prod; role=web,frontends\n"
        'web-2,"env=dev; note=a, b",frontends;canary\n'
    )
    refused = infrawatch(cli_env, "import", str(source), "--dry-run")
    assert refused.returncode == 1
    assert "no such group: canary, frontends" in refused.stderr
    assert "create_groups" in refused.stderr

    dry = infrawatch(cli_env, "import", str(source), "--dry-run", "--create-groups")
    assert dry.returncode == 0, dry.stderr
    assert (
        "would create 1, update 1, leave 0 unchanged; 0 error(s); "
        "would create group(s) canary, frontends"
    ) in dry.stdout
    assert "checking" in dry.stderr and "2/2" in dry.stderr  # the bar had a total

    done = infrawatch(cli_env, "import", str(source), "--create-groups")
    assert done.returncode == 0, done.stderr
    assert "created 1, updated 1, 0 unchanged" in done.stdout
    exported = infrawatch(cli_env, "export", "--format", "json", "--q", "group:canary")
    assert exported.returncode == 0, exported.stderr
    assert '"note": "a, b"' in exported.stdout and '"web-2"' in exported.stdout

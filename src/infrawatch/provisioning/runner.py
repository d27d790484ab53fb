"""One ansible-playbook process through ansible-runner, its events handed
to the event loop as they come.

What must not leak, and how it is kept in: the private key goes through
ansible-runner's ssh-agent path (a FIFO, never a regular file); secrets are
written to a 0600 vars file in the run's private folder, which is removed
when the process ends; nothing secret is on the command line; every string
taken from an event is passed through `Redactor` before anyone sees it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

ROLES_PACKAGE = "infrawatch.provisioning.playbooks"
HIDDEN = "********"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class Redactor:
    """Replaces every secret value (and each of its lines) in text."""

    def __init__(self, secrets: list[str]) -> None:
        parts = {s for s in secrets if len(s) >= 4}
        for secret in list(parts):
            parts.update(line for line in secret.splitlines() if len(line.strip()) >= 8)
        self._pattern = (
            re.compile("|".join(re.escape(p) for p in sorted(parts, key=len, reverse=True)))
            if parts
            else None
        )

    def text(self, value: str) -> str:
        value = _ANSI.sub("", value)
        return self._pattern.sub(HIDDEN, value) if self._pattern else value

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        return value


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int
    user: str
    # The pinned host key, as `ssh-keyscan` would print it without the name.
    host_key: str
    # The address this machine reaches the host from, so firewall and
    # Fail2Ban roles never lock the controller out.
    controller_address: str
    # Per host and secret (an agent token): in the private inventory file,
    # and redacted from every event like the run's secrets.
    secret_vars: dict[str, str] = field(default_factory=dict)

    def known_hosts_line(self) -> str:
        name = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{name} {self.host_key}\n"


@dataclass
class Invocation:
    hosts: list[Host]
    roles: list[str]
    variables: dict[str, Any]
    secrets: dict[str, str]
    private_key: str | None
    check: bool = False
    start_at_task: str | None = None
    # The caller's own agent (`infrawatch provision --use-agent`): no vault key.
    agent_socket: str | None = None
    # A user's playbook: its path inside `project_dir`, a tree materialised
    # for this run (roles/ in it are found too). None: the generated play.
    playbook: str | None = None
    project_dir: Path | None = None


@dataclass(frozen=True)
class Outcome:
    status: str  # successful, failed, canceled, timeout
    rc: int | None
    stats: dict[str, dict[str, int]]


def roles_path() -> Path:
    return Path(str(resources.files(ROLES_PACKAGE).joinpath("roles")))


def playbook_for(roles: list[str]) -> str:
    play = [{"name": "InfraWatch", "hosts": "all", "become": True, "roles": roles}]
    return json.dumps(play, indent=2)


def kill_leftovers(folder: Path) -> None:
    """An earlier attempt's processes (its worker was killed with -9): no
    two ansible processes may work on the same run at once."""
    with contextlib.suppress(FileNotFoundError):
        subprocess.run(  # noqa: S603 - fixed argv
            ["pkill", "-KILL", "-f", f"{folder}/"],  # noqa: S607
            check=False,
            capture_output=True,
        )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def prepare(folder: Path, invocation: Invocation) -> list[str]:
    """Lays out the private data dir; -> the extra command line."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "project").mkdir(parents=True, mode=0o700)
    (folder / "inventory").mkdir(mode=0o700)
    folder.chmod(0o700)
    if invocation.project_dir is not None:
        shutil.rmtree(folder / "project")
        shutil.copytree(invocation.project_dir, folder / "project", symlinks=True)
    else:
        (folder / "project" / "site.yml").write_text(playbook_for(invocation.roles))
    inventory = {
        "all": {
            "hosts": {
                h.name: {
                    "ansible_host": h.address,
                    "ansible_port": h.port,
                    "ansible_user": h.user,
                    "controller_address": h.controller_address,
                    **h.secret_vars,
                }
                for h in invocation.hosts
            }
        }
    }
    _write_private(folder / "inventory" / "hosts.json", json.dumps(inventory))
    (folder / "known_hosts").write_text("".join(h.known_hosts_line() for h in invocation.hosts))
    _write_private(folder / "vars.json", json.dumps(invocation.variables))
    cmdline = ["-e", f"@{folder / 'vars.json'}"]
    if invocation.secrets:
        # Read by ansible, then removed with the folder; never an argument.
        _write_private(folder / "secrets.json", json.dumps(invocation.secrets))
        cmdline += ["-e", f"@{folder / 'secrets.json'}"]
    if invocation.check:
        cmdline.append("--check")
    if invocation.start_at_task:
        cmdline += ["--start-at-task", invocation.start_at_task]
    return cmdline


def environment(folder: Path, invocation: Invocation, control_dir: Path) -> dict[str, str]:
    ssh_args = (
        "-o ControlMaster=auto -o ControlPersist=60s "
        f"-o UserKnownHostsFile={folder / 'known_hosts'} -o StrictHostKeyChecking=yes "
        "-o IdentitiesOnly=no -o BatchMode=yes"
    )
    paths = [str(folder / "project" / "roles"), str(roles_path())]
    env = {
        "ANSIBLE_ROLES_PATH": ":".join(paths),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCAL_TEMP": str(folder / "tmp"),
        # A socket path has 108 bytes at most: a short folder of its own.
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
        "ANSIBLE_TIMEOUT": "20",
    }
    if invocation.agent_socket:
        env["SSH_AUTH_SOCK"] = invocation.agent_socket
    return env


async def run(
    folder: Path,
    invocation: Invocation,
    on_event: Callable[[dict[str, Any]], Awaitable[None]],
    cancelled: threading.Event,
) -> Outcome:
    """Runs the playbook; `on_event` sees every runner event in order on the
    event loop. The private folder is removed at the end, whatever happens."""
    import ansible_runner  # ~0.3 s to import: only where a run starts

    loop = asyncio.get_running_loop()
    events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def handler(event: dict[str, Any]) -> bool:
        loop.call_soon_threadsafe(events.put_nowait, event)
        return False  # do not also keep it in the artifacts folder

    thread: threading.Thread | None = None
    control_dir = Path(tempfile.mkdtemp(prefix="iwcp-"))
    try:
        cmdline = prepare(folder, invocation)
        thread, runner = ansible_runner.run_async(
            private_data_dir=str(folder),
            playbook=invocation.playbook or "site.yml",
            inventory=str(folder / "inventory" / "hosts.json"),
            ssh_key=invocation.private_key,
            envvars=environment(folder, invocation, control_dir),
            cmdline=" ".join(_quote(c) for c in cmdline),
            limit=",".join(h.name for h in invocation.hosts),
            event_handler=handler,
            cancel_callback=cancelled.is_set,
            finished_callback=lambda _runner: loop.call_soon_threadsafe(events.put_nowait, None),
            quiet=True,
            suppress_env_files=True,
            artifact_dir=str(folder / "artifacts"),
        )
        while (event := await events.get()) is not None:
            await on_event(event)
        await asyncio.to_thread(thread.join)
        return Outcome(str(runner.status), runner.rc, dict(runner.stats or {}))
    finally:
        # A handler that raised, or a cancelled task, stops the process too,
        # and the folder goes only once nothing reads it any more.
        cancelled.set()
        if thread is not None:
            await asyncio.shield(asyncio.to_thread(thread.join, 60))
        # ssh's ControlPersist masters outlive ansible; they end with the run.
        await asyncio.shield(asyncio.to_thread(kill_leftovers, folder))
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, folder, True))
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, control_dir, True))


def _quote(argument: str) -> str:
    import shlex

    return shlex.quote(argument)

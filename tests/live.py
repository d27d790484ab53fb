"""Running InfraWatch as a real process, for tests that need one."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx


def infrawatch(
    env: dict[str, str], *args: str, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infrawatch", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def infrawatch_async(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`infrawatch` without blocking the event loop: a test whose app runs in
    this process must let it go on (on SQLite a blocked loop can hold the
    write lock the command is waiting for)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infrawatch",
        *args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    return subprocess.CompletedProcess(
        args, process.returncode or 0, stdout.decode(), stderr.decode()
    )


def data_env(cli_env: dict[str, str], api: Any) -> dict[str, str]:
    """The CLI on the in-process test app's own data dir (its master key)
    and database."""
    settings = api._app.state.runtime.settings
    return {
        **cli_env,
        "INFRAWATCH_DATA_DIR": str(settings.data_dir),
        "INFRAWATCH_DATABASE_URL": settings.effective_database_url,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    env: dict[str, str],
    port: int | None = None,
    processes: list[Any] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[tuple[str, list[str]]]:
    """Yields the base URL and, once the server has stopped, its output lines.
    Output goes to a file: a pipe nobody drains would block the server.
    `processes` receives the Popen, for tests that kill it themselves.
    `host`: another local address (the lab bridge's, for lab hosts to reach)."""
    port = port or free_port()
    log_path = Path(env["INFRAWATCH_DATA_DIR"]).parent / f"serve-{port}.log"
    output: list[str] = []
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "infrawatch", "serve", "--host", host, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    if processes is not None:
        processes.append(process)
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not become ready within 60 s")
            time.sleep(0.2)
        yield base, output
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)
        output.extend(log_path.read_text().splitlines())


def create_user(
    env: dict[str, str],
    username: str,
    password: str = "a long enough password",
    role: str = "admin",
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return infrawatch(
        env,
        "users",
        "create",
        username,
        "--role",
        role,
        "--password-stdin",
        stdin=password + "\n",
        cwd=cwd,
    )


def admin_token(env: dict[str, str]) -> str:
    created = create_user(env, "admin")
    assert created.returncode == 0, created.stderr
    return infrawatch(env, "tokens", "create", "admin").stdout.strip().splitlines()[-1]


async def serve_as_admin(
    stack: AsyncExitStack, env: dict[str, str]
) -> tuple[str, httpx.AsyncClient]:
    """`serve` with an admin user and an API client holding its token: how
    the console tests start. Both are closed with `stack`."""
    assert create_user(env, "admin").returncode == 0
    token = infrawatch(env, "tokens", "create", "admin").stdout.strip().splitlines()[-1]
    base, _ = stack.enter_context(running_server(env))
    http = await stack.enter_async_context(
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"})
    )
    return base, http

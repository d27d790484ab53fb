"""`infrawatch provision` from a shell: followed live, and with the caller's
own ssh-agent instead of a vault key (no key is stored anywhere)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import asyncssh
import pytest
from sqlalchemy import text

from infrawatch.core.db import Database
from infrawatch.provisioning.lab.hosts import LabHost
from tests.conftest import Clients
from tests.live import data_env, infrawatch_async
from tests.provisioning.test_hardening import register

pytestmark = pytest.mark.hosts


async def provision(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await infrawatch_async(env, "provision", *args, timeout=300)


async def test_provision_follows_a_worker_run_and_exits_with_its_outcome(
    api: Clients, cli_env: dict[str, str], fresh_host: LabHost, lab_key: asyncssh.SSHKey
) -> None:
    await register(api, fresh_host, lab_key, "cli-1")
    env = data_env(cli_env, api)
    done = await provision(env, "--server", "cli-1", "--roles", "base", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TASK [base : base | admin user]" in done.stdout
    assert "PLAY RECAP" in done.stdout and "cli-1: ok (ok=" in done.stdout
    assert done.stdout.rstrip().endswith("succeeded")

    bad = await provision(env, "--server", "nope", "--roles", "base")
    assert bad.returncode == 1 and "no live server named 'nope'" in bad.stderr
    bad = await provision(env, "--server", "cli-1", "--roles", "base,nothing")
    assert bad.returncode == 1 and "roles.1: " in bad.stderr and "no role 'nothing'" in bad.stderr
    detached = await provision(env, "--server", "cli-1", "--roles", "base", "--check", "--detach")
    assert detached.returncode == 0 and len(detached.stdout.strip()) == 36


async def test_use_agent_logs_in_with_the_callers_agent_and_stores_no_key(
    api: Clients,
    db: Database,
    cli_env: dict[str, str],
    fresh_host: LabHost,
    lab_key_file: Path,
    tmp_path: Path,
) -> None:
    r = await api.admin.post(
        "/api/v1/servers", json={"name": "agent-1", "ip_address": fresh_host.address}
    )
    assert r.status_code == 201
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if socket_path.exists():
                break
            await asyncio.sleep(0.1)
        added = subprocess.run(
            ["ssh-add", str(lab_key_file)],
            env={**os.environ, "SSH_AUTH_SOCK": str(socket_path)},
            capture_output=True,
            text=True,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        env = {**data_env(cli_env, api), "SSH_AUTH_SOCK": str(socket_path)}
        done = await provision(
            env,
            "--server",
            "agent-1",
            "--roles",
            "base",
            "--check",
            "--use-agent",
            "--user",
            "admin",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "agent-1: ok" in done.stdout and done.stdout.rstrip().endswith("succeeded")
        without = await provision(
            {k: v for k, v in env.items() if k != "SSH_AUTH_SOCK"},
            "--server",
            "agent-1",
            "--roles",
            "base",
            "--use-agent",
        )
        assert without.returncode == 1 and "SSH_AUTH_SOCK" in without.stderr
    finally:
        agent.kill()
        agent.wait()
    async with db.unit_of_work(write=False) as session:
        assert (await session.execute(text("SELECT count(*) FROM ssh_keys"))).scalar() == 0
        login = (
            await session.execute(
                text("SELECT changes FROM audit_records WHERE action = 'provisioning.run'")
            )
        ).scalar()
    assert "ssh-agent" in str(login)

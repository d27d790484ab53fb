"""The master key: no plaintext secret in a database dump, `infrawatch
keys rotate` while `serve` runs, and a start refused with a key that cannot
read the data."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from infrawatch.core.config import Settings
from infrawatch.core.keys import new_key
from tests.conftest import unavailable
from tests.live import admin_token, infrawatch, running_server

SECRET_VALUE = "db-password-Zq8vX1"
CHANNEL_TOKEN = "hook-token-9Kd2Lm"


def store_secrets(api: httpx.Client) -> dict[str, Any]:
    """One of each kind of encrypted value."""
    secret = api.post("/api/v1/secrets", json={"name": "db", "value": SECRET_VALUE})
    assert secret.status_code == 201, secret.text
    assert SECRET_VALUE not in secret.text
    channel = api.post(
        "/api/v1/notification-channels",
        json={"name": "ops", "url": f"json://127.0.0.1:9/{CHANNEL_TOKEN}"},
    )
    assert channel.status_code == 201, channel.text
    key = api.post("/api/v1/ssh-keys", json={"name": "deploy"})
    assert key.status_code == 201, key.text
    push = api.post(
        "/api/v1/monitors",
        json={"name": "cron", "type": "push", "target": "", "settings": {"period_seconds": 60}},
    )
    assert push.status_code == 201, push.text
    return {"push": push.json(), "key": key.json()}


def dump(settings: Settings, env: dict[str, str]) -> str:
    """Everything the database holds, as text."""
    if settings.is_sqlite:
        path = Path(env["INFRAWATCH_DATA_DIR"]) / "infrawatch.db"
        with sqlite3.connect(path) as conn:
            return "\n".join(conn.iterdump())
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        unavailable("pg_dump (Debian's postgresql-client)")
    url = make_url(settings.effective_database_url)
    result = subprocess.run(
        [
            pg_dump,
            "-h",
            url.host or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            "--data-only",
            url.database or "",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_a_database_dump_holds_no_secret_in_clear(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    token = admin_token(cli_env)
    with running_server(cli_env) as (base, _):
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        stored = store_secrets(api)
    text = dump(settings, cli_env)
    push_token = stored["push"]["settings"]["token"]
    for plaintext in (SECRET_VALUE, CHANNEL_TOKEN, push_token, "PRIVATE KEY", token):
        assert plaintext not in text, f"{plaintext[:12]}… found in the dump"
    assert stored["key"]["public_key"].split()[1] in text  # the public half is not secret


def test_keys_rotate_reencrypts_everything_while_serve_runs(cli_env: dict[str, str]) -> None:
    token = admin_token(cli_env)
    with running_server(cli_env) as (base, _):
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        stored = store_secrets(api)
        before = infrawatch(cli_env, "keys", "status").stdout.split()
        old_id = before[0]
        rotated = infrawatch(cli_env, "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert "re-encrypted 4 secret(s)" in rotated.stderr
        status = infrawatch(cli_env, "keys", "status").stdout.splitlines()
        new_id = status[0].split()[0]
        assert new_id != old_id
        assert status[0].split()[1:] == ["primary", "4", "secret(s)"]
        assert status[1].split() == [old_id, "older", "0", "secret(s)"]
        # The running service reads what was re-encrypted under the new key …
        push = api.get(f"/api/v1/monitors/{stored['push']['id']}").json()
        assert push["settings"]["token"] == stored["push"]["settings"]["token"]
        # … and encrypts new secrets with it.
        assert api.post("/api/v1/secrets", json={"name": "new", "value": "x"}).status_code == 201
    final = infrawatch(cli_env, "keys", "status").stdout.splitlines()
    assert final[0].split()[2] == "5"
    key_file = Path(cli_env["INFRAWATCH_DATA_DIR"]) / "master.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert len(key_file.read_text().split()) == 2


def test_start_is_refused_with_a_key_that_cannot_read_the_data(cli_env: dict[str, str]) -> None:
    token = admin_token(cli_env)
    with running_server(cli_env) as (base, _):
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        store_secrets(api)
    wrong = {**cli_env, "INFRAWATCH_MASTER_KEY": new_key()}
    refused = subprocess.run(
        [*_infrawatch_cmd(), "serve", "--port", "9"],
        env=wrong,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "encrypted with key id(s)" in message and "master key" in message
    worker = subprocess.run(
        [*_infrawatch_cmd(), "worker"], env=wrong, capture_output=True, text=True, timeout=60
    )
    assert worker.returncode == 1 and "encrypted with key id(s)" in " ".join(worker.stderr.split())


def _infrawatch_cmd() -> list[str]:
    import sys

    return [sys.executable, "-m", "infrawatch"]

"""The command line, run as a user would run it: a real process."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.live import admin_token, create_user, infrawatch, running_server


def test_users_and_tokens_are_created_from_the_command_line(cli_env: dict[str, str]) -> None:
    created = create_user(cli_env, "root")
    assert created.returncode == 0, created.stderr
    assert "created user root with the admin role" in created.stdout
    again = create_user(cli_env, "root", password="x" * 9)
    assert again.returncode == 1
    assert "already exists" in again.stderr

    token = infrawatch(cli_env, "tokens", "create", "root", "--name", "deploy", "--read-only")
    assert token.returncode == 0, token.stderr
    last_line = token.stdout.strip().splitlines()[-1]
    assert last_line.startswith("iw_") and " " not in last_line
    missing = infrawatch(cli_env, "tokens", "create", "nobody")
    assert missing.returncode == 1


def test_an_admin_locked_out_gets_back_in_from_the_command_line(
    cli_env: dict[str, str],
) -> None:
    assert create_user(cli_env, "root").returncode == 0
    assert create_user(cli_env, "ada", role="operator").returncode == 0
    with running_server(cli_env) as (base, _):

        def login(password: str) -> int:
            response = httpx.post(
                f"{base}/api/v1/auth/login",
                json={"username": "root", "password": password},
                timeout=10,
            )
            return response.status_code

        for _ in range(5):
            assert login("wrong password") == 401
        assert login("a long enough password") == 429
        unlocked = infrawatch(cli_env, "users", "unlock", "root")
        assert unlocked.returncode == 0 and "5 failed logins forgotten" in unlocked.stdout
        assert login("a long enough password") == 200
        reset = infrawatch(
            cli_env,
            "users",
            "reset-password",
            "root",
            "--password-stdin",
            stdin="another long password\n",
        )
        assert reset.returncode == 0, reset.stderr
        assert login("a long enough password") == 401 and login("another long password") == 200
        assert infrawatch(cli_env, "users", "disable", "ada").returncode == 0
        listed = infrawatch(cli_env, "users", "list")
        assert listed.returncode == 0
        rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]}
        assert rows["ada"][1:3] == ["operator", "no"] and rows["root"][1:3] == ["admin", "yes"]
        # The last admin cannot be disabled; nor can someone who does not exist.
        assert infrawatch(cli_env, "users", "disable", "root").returncode == 1
        assert infrawatch(cli_env, "users", "unlock", "nobody").returncode == 1


def test_import_and_export_from_the_command_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "servers.csv"
    source.write_text("name,region,tags\na,eu-1,env=prod\nb,eu-2,env=dev\n")
    dry = infrawatch(cli_env, "import", str(source), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would create 2" in dry.stdout
    done = infrawatch(cli_env, "import", str(source))
    assert "created 2" in done.stdout
    exported = infrawatch(cli_env, "export", "--format", "csv", "--q", "tag:env=prod")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines()[1].startswith("a,")
    assert len(exported.stdout.splitlines()) == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("name,ip_address\nc,not-an-ip\n")
    refused = infrawatch(cli_env, "import", str(bad))
    assert refused.returncode == 1
    assert "not a valid IPv4" in refused.stderr


def test_serve_starts_migrates_and_answers(cli_env: dict[str, str]) -> None:
    with running_server(cli_env) as (base, output):
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz").json()["checks"] == {
            "database": "ok",
            "migrations": "ok",
        }
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "InfraWatch"
        assert httpx.get(f"{base}/docs").status_code == 200
        assert httpx.get(f"{base}/api/v1/servers").status_code == 401

        headers = {"Authorization": f"Bearer {admin_token(cli_env)}"}
        created = httpx.post(
            f"{base}/api/v1/servers",
            json={"name": "web-01", "ip_address": "192.0.2.1"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert httpx.get(f"{base}/api/v1/servers", headers=headers).json()["total"] == 1
    text = "\n".join(output)
    assert base in text
    assert "infrawatch users create admin --role admin" in text
    data_dir = Path(cli_env["INFRAWATCH_DATA_DIR"])
    assert (data_dir / "master.key").exists()
    assert (data_dir / "session.key").exists()

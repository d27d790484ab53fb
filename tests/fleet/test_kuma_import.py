"""`infrawatch import-kuma` as a user runs it, on both engines and for
Kuma 1.23.16 and 2.0.2 databases: a dry run that changes nothing, one
import, a second that changes nothing, secrets stored encrypted and never
printed, and an imported notification that really delivers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.alerting.receiver import receiving
from tests.conftest import Clients
from tests.fleet.kuma import BASIC_PASSWORD, TELEGRAM_TOKEN, VERSIONS, KumaDb, fill_example
from tests.live import data_env, infrawatch, infrawatch_async


async def _total(api: Clients, path: str) -> int:
    response = await api.admin.get(path)
    assert response.status_code == 200, response.text
    body = response.json()
    return int(body["total"]) if isinstance(body, dict) else len(body)


@pytest.mark.parametrize("version", sorted(VERSIONS))
async def test_import_kuma_plans_imports_once_and_its_channels_deliver(
    api: Clients, cli_env: dict[str, str], tmp_path: Path, version: str
) -> None:
    env = data_env(cli_env, api)
    async with receiving() as receiver:
        kuma = KumaDb(tmp_path / "kuma.db", version)
        fill_example(kuma, f"http://{receiver.base}/kuma-hook")
        kuma.close()

        dry = await infrawatch_async(env, "import-kuma", str(kuma.path), "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "+ monitors Login page" in dry.stdout
        assert "not imported: monitor 'Container'" in dry.stdout
        assert dry.stdout.splitlines()[-1] == "18 to create, 0 to update; 5 not imported (dry run)"
        assert await _total(api, "/api/v1/monitors") == 0
        assert await _total(api, "/api/v1/secrets") == 0

        report = tmp_path / "report.json"
        done = await infrawatch_async(env, "import-kuma", str(kuma.path), "--report", str(report))
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "18 created, 0 updated; 5 not imported"
        for output in (dry.stdout + dry.stderr, done.stdout + done.stderr, report.read_text()):
            assert TELEGRAM_TOKEN not in output and BASIC_PASSWORD not in output
        written = json.loads(report.read_text())
        assert {(n["kind"], n["name"]) for n in written["notes"] if not n["imported"]} == {
            ("monitor", "Container"),
            ("monitor", "Inverted"),
            ("notification", "LINE"),
            ("tag", "env on SSH"),
            ("maintenance", "By hand"),
        }
        assert await _total(api, "/api/v1/monitors") == 8
        assert await _total(api, "/api/v1/servers") == 3
        secrets = (await api.admin.get("/api/v1/secrets")).json()
        names = sorted(s["name"] for s in secrets)
        assert names == ["kuma-monitor-2-password", "kuma-notification-1", "kuma-notification-2"]

        again = await infrawatch_async(env, "import-kuma", str(kuma.path))
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines()[-1] == "nothing to change; 5 not imported"

        monitors = (await api.admin.get("/api/v1/monitors?limit=100")).json()["items"]
        login = next(m for m in monitors if m["name"] == "Login page")
        assert BASIC_PASSWORD not in json.dumps(login) and login["target"].startswith(
            "http://probe:"
        )
        channels = (await api.admin.get("/api/v1/notification-channels")).json()
        listed = channels["items"] if isinstance(channels, dict) else channels
        hook = next(c for c in listed if c["name"] == "Ops webhook")
        sent = await api.admin.post(f"/api/v1/notification-channels/{hook['id']}/test")
        assert sent.json()["ok"] is True, sent.text
    [message] = receiver.on("/kuma-hook")
    assert message.json["event"] == "test"


def test_import_kuma_refuses_what_is_not_a_kuma_database(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert infrawatch(cli_env, "db", "upgrade").returncode == 0
    other = tmp_path / "notes.db"
    other.write_text("not a database")
    refused = infrawatch(cli_env, "import-kuma", str(other))
    assert refused.returncode != 0
    assert "not an SQLite database" in refused.stderr and "Traceback" not in refused.stderr
    assert "--dry-run" in infrawatch(cli_env, "import-kuma", "--help").stdout


async def test_a_server_already_in_the_inventory_is_referred_to_not_reset(
    api: Clients, cli_env: dict[str, str], tmp_path: Path
) -> None:
    created = await api.admin.post(
        "/api/v1/servers",
        json={"name": "127.0.0.1", "ip_address": "127.0.0.1", "tags": {"keep": "me"}},
    )
    assert created.status_code == 201, created.text
    kuma = KumaDb(tmp_path / "kuma.db", "2.0.2")
    fill_example(kuma, "http://127.0.0.1:9/hook")
    kuma.close()
    done = await infrawatch_async(data_env(cli_env, api), "import-kuma", str(kuma.path))
    assert done.returncode == 0, done.stderr
    assert "servers 127.0.0.1" not in done.stdout
    assert "server 127.0.0.1 exists; env=prod, team-web= not added" in done.stdout
    server = (await api.admin.get(f"/api/v1/servers/{created.json()['id']}")).json()
    assert server["tags"] == {"keep": "me"}
    monitors = (await api.admin.get("/api/v1/monitors?limit=100")).json()["items"]
    website = next(m for m in monitors if m["name"] == "Website")
    assert website["server_id"] == server["id"]

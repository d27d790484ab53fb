"""Uptime Kuma databases for the importer's tests, made from Kuma's own
schema (the .sql files beside this one: a new Kuma database's tables as
Kuma 1.23.16 and 2.0.2 make them) and filled the way Kuma's forms fill
them."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
VERSIONS = {"1.23.16": HERE / "schema-1.23.16.sql", "2.0.2": HERE / "schema-2.0.2.sql"}


class KumaDb:
    def __init__(self, path: Path, version: str) -> None:
        self.path = path
        self.version = version
        self.db = sqlite3.connect(path)
        self.db.executescript(VERSIONS[version].read_text())
        self.db.execute("INSERT INTO user (id, username, password) VALUES (1, 'admin', 'x')")

    def _insert(self, table: str, **columns: Any) -> int:
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        cursor = self.db.execute(
            f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(columns.values())
        )
        return int(cursor.lastrowid or 0)

    def monitor(self, name: str, type: str, **columns: Any) -> int:
        columns.setdefault("interval", 60)
        columns.setdefault("retry_interval", columns["interval"])
        return self._insert("monitor", name=name, type=type, user_id=1, **columns)

    def notification(self, name: str, config: dict[str, Any], active: int = 1) -> int:
        return self._insert(
            "notification",
            name=name,
            user_id=1,
            active=active,
            config=json.dumps({"name": name, **config}),
        )

    def notify(self, monitor_id: int, notification_id: int) -> None:
        self._insert("monitor_notification", monitor_id=monitor_id, notification_id=notification_id)

    def tag(self, name: str) -> int:
        return self._insert("tag", name=name, color="#2563eb")

    def tag_monitor(self, monitor_id: int, tag_id: int, value: str = "") -> None:
        self._insert("monitor_tag", monitor_id=monitor_id, tag_id=tag_id, value=value)

    def status_page(self, slug: str, title: str, **columns: Any) -> int:
        return self._insert(
            "status_page", slug=slug, title=title, icon="/icon.svg", theme="auto", **columns
        )

    def page_group(self, page_id: int, name: str, monitor_ids: list[int]) -> None:
        group = self._insert("group", name=name, public=1, status_page_id=page_id)
        for weight, monitor_id in enumerate(monitor_ids):
            self._insert("monitor_group", monitor_id=monitor_id, group_id=group, weight=weight)

    def maintenance(self, title: str, monitor_ids: list[int], **columns: Any) -> int:
        maintenance = self._insert(
            "maintenance", title=title, description=columns.pop("description", ""), **columns
        )
        for monitor_id in monitor_ids:
            self._insert("monitor_maintenance", monitor_id=monitor_id, maintenance_id=maintenance)
        return maintenance

    def close(self) -> None:
        self.db.commit()
        self.db.close()


TELEGRAM_TOKEN = "123456:kuma-bot-token-not-for-output"
BASIC_PASSWORD = "hunter2-kuma-basic"


def fill_example(kuma: KumaDb, webhook_url: str) -> None:
    """A small Kuma installation: every type we import and some we do not,
    notifications mapped and not, tags, a status page, maintenance."""
    site = kuma.monitor(
        "Website",
        "http",
        url="http://127.0.0.1:9/health",
        maxretries=2,
        retry_interval=20,
        headers='{"X-Probe": "kuma"}',
        accepted_statuscodes_json='["200-299", "301"]',
        expiry_notification=1,
    )
    login = kuma.monitor(
        "Login page",
        "keyword",
        url="http://127.0.0.1:9/login",
        keyword="Sign in",
        invert_keyword=1,
        basic_auth_user="probe",
        basic_auth_pass=BASIC_PASSWORD,
        ignore_tls=1,
        maxredirects=0,
    )
    api = kuma.monitor(
        "API status",
        "json-query",
        url="http://localhost:9/api",
        json_path="status",
        expected_value="ok",
        active=0,
    )
    ssh = kuma.monitor("SSH", "port", hostname="127.0.0.1", port=22, interval=30)
    kuma.monitor("Gateway", "ping", hostname="127.0.0.2")
    kuma.monitor(
        "Mail DNS",
        "dns",
        hostname="example.test",
        dns_resolve_type="MX",
        dns_resolve_server="127.0.0.1",
        port=5353,
    )
    kuma.monitor("Backup job", "push", interval=3600, push_token="kumapushtoken")
    container = kuma.monitor("Container", "docker", docker_container="web")
    kuma.monitor("Inverted", "http", url="http://127.0.0.1:9/", upside_down=1)
    kuma.monitor("Website", "http", url="http://127.0.0.1:9/again", method="HEAD")

    webhook = kuma.notification(
        "Ops webhook", {"type": "webhook", "webhookURL": webhook_url, "webhookContentType": "json"}
    )
    telegram = kuma.notification(
        "Telegram",
        {"type": "telegram", "telegramBotToken": TELEGRAM_TOKEN, "telegramChatID": "-100123"},
    )
    line = kuma.notification("LINE", {"type": "line", "lineChannelAccessToken": "x"})
    kuma.notify(site, webhook)
    kuma.notify(login, webhook)
    kuma.notify(ssh, telegram)
    kuma.notify(api, line)

    env = kuma.tag("env")
    team = kuma.tag("team web")
    kuma.tag_monitor(site, env, "prod")
    kuma.tag_monitor(login, team)
    kuma.tag_monitor(ssh, env, "staging")

    page = kuma.status_page("status", "Example status", footer_text="by Kuma", published=1)
    kuma.page_group(page, "Web", [site, login])
    kuma.page_group(page, "Infra", [ssh, container])

    kuma.maintenance(
        "Migration",
        [site],
        strategy="single",
        start_date="2026-12-24 02:00:00",
        end_date="2026-12-24 04:00:00",
        timezone="Europe/Berlin",
    )
    kuma.maintenance(
        "Sunday patching",
        [ssh],
        strategy="recurring-weekday",
        start_time="02:00",
        end_time="03:30",
        weekdays="[0]",
        timezone="UTC",
        # Kuma 1.21.2 and later keep the cron it derives; older ones did not.
        **({"cron": "0 2 * * 0", "duration": 5400} if kuma.version.startswith("2") else {}),
    )
    kuma.maintenance("By hand", [site], strategy="manual")

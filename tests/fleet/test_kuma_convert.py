"""Uptime Kuma databases of 1.23.16 and 2.0.2, made from Kuma's own schema,
read into a fleet document: what maps, how, and the report of what does not
(no engine: reading and converting touch only the Kuma file)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import apprise
import pytest

from infrawatch.core.errors import InvalidInput
from infrawatch.fleet.kuma import importer
from infrawatch.fleet.kuma.convert import Conversion
from infrawatch.fleet.kuma.notifications import Unmapped, channel_for
from tests.fleet.kuma import BASIC_PASSWORD, TELEGRAM_TOKEN, VERSIONS, KumaDb, fill_example


@pytest.fixture(params=sorted(VERSIONS))
def kuma(request: pytest.FixtureRequest, tmp_path: Path) -> KumaDb:
    return KumaDb(tmp_path / "kuma.db", request.param)


def _example(kuma: KumaDb) -> Conversion:
    fill_example(kuma, "http://127.0.0.1:9/hook")
    kuma.close()
    return importer.read(kuma.path)


def _skipped(conversion: Conversion) -> set[tuple[str, str]]:
    return {(n.kind, n.name) for n in conversion.skipped()}


def test_the_kuma_version_is_told_from_its_migrations(kuma: KumaDb) -> None:
    conversion = _example(kuma)
    if kuma.version.startswith("2"):
        assert conversion.kuma_version.startswith("2.x (migration 2025-10-15-0000-stat-table-fix")
    else:
        assert conversion.kuma_version == "1.x"


def test_monitors_of_the_types_we_have_keep_intervals_retries_codes_and_headers(
    kuma: KumaDb,
) -> None:
    monitors = _example(kuma).items["monitors"]
    assert monitors["Website"] == {
        "name": "Website",
        "type": "http",
        "target": "http://127.0.0.1:9/health",
        "interval_seconds": 60,
        "retry_interval_seconds": 20,
        "failure_threshold": 3,  # two retries after the first failure
        "settings": {
            "headers": {"X-Probe": "kuma"},
            "accepted_status_codes": ["200-299", "301"],
        },
        "server": "127.0.0.1",
    }
    login = monitors["Login page"]
    assert login["target"] == "http://probe:${secret:kuma-monitor-2-password}@127.0.0.1:9/login"
    assert login["settings"] == {
        "accepted_status_codes": ["200-299"],
        "follow_redirects": False,
        "verify_tls": False,
        "keyword_absent": "Sign in",
    }
    assert monitors["API status"]["paused"] is True
    assert monitors["API status"]["settings"]["json_path"] == "status"
    assert monitors["API status"]["settings"]["json_expected"] == "ok"
    assert monitors["SSH"]["type"] == "tcp" and monitors["SSH"]["target"] == "127.0.0.1:22"
    assert monitors["Gateway"]["type"] == "ping" and monitors["Gateway"]["target"] == "127.0.0.2"
    assert monitors["Mail DNS"]["settings"] == {"record_type": "MX", "resolver": "127.0.0.1:5353"}
    assert "server" not in monitors["Mail DNS"]  # the name resolved is no server of ours
    assert monitors["Backup job"]["settings"] == {"period_seconds": 3600}
    assert monitors["Website (2)"]["settings"]["method"] == "HEAD"


def test_what_cannot_be_mapped_is_reported_with_its_reason(kuma: KumaDb) -> None:
    conversion = _example(kuma)
    assert _skipped(conversion) == {
        ("monitor", "Container"),
        ("monitor", "Inverted"),
        ("notification", "LINE"),
        ("tag", "env on SSH"),
        ("maintenance", "By hand"),
    }
    reasons = {(n.kind, n.name): n.reason for n in conversion.notes}
    assert "docker" in reasons[("monitor", "Container")]
    assert "upside down" in reasons[("monitor", "Inverted")]
    assert "'line' has no mapping" in reasons[("notification", "LINE")]
    assert "new token" in reasons[("monitor", "Backup job")]
    assert "footer text" in " ".join(n.reason for n in conversion.notes if n.kind == "status page")


def test_notifications_become_channels_with_their_secrets_apart_and_a_rule_each(
    kuma: KumaDb,
) -> None:
    conversion = _example(kuma)
    channels = conversion.items["channels"]
    assert channels["Ops webhook"] == {
        "name": "Ops webhook",
        "kind": "webhook",
        "url": "${secret:kuma-notification-1}",
    }
    assert channels["Telegram"] == {"name": "Telegram", "url": "${secret:kuma-notification-2}"}
    assert (
        conversion.secrets["kuma-notification-2"]
        == f"tgram://{TELEGRAM_TOKEN.replace(':', '%3A')}/-100123"
    )
    assert conversion.secrets["kuma-monitor-2-password"] == BASIC_PASSWORD
    document = json.dumps(conversion.items)
    assert TELEGRAM_TOKEN not in document and BASIC_PASSWORD not in document
    rules = conversion.items["rules"]
    assert rules["kuma: Ops webhook"]["monitors"] == ["Login page", "Website"]
    assert rules["kuma: Telegram"] == {
        "name": "kuma: Telegram",
        "channels": ["Telegram"],
        "monitors": ["SSH"],
        "events": ["down", "recovered"],
    }


def test_tags_go_to_the_server_made_for_the_monitors_host(kuma: KumaDb) -> None:
    servers = _example(kuma).items["servers"]
    assert servers["127.0.0.1"] == {
        "name": "127.0.0.1",
        "ip_address": "127.0.0.1",
        "tags": {"env": "prod", "team-web": ""},
    }
    assert set(servers) == {"127.0.0.1", "127.0.0.2", "localhost"}


def test_without_servers_monitors_stand_alone_and_their_tags_are_reported(
    kuma: KumaDb,
) -> None:
    fill_example(kuma, "http://127.0.0.1:9/hook")
    kuma.close()
    conversion = importer.read(kuma.path, servers=False)
    assert "servers" not in conversion.items
    assert all("server" not in m for m in conversion.items["monitors"].values())
    assert ("tag", "env on Website") in _skipped(conversion)


def test_status_pages_keep_their_groups_as_sections(kuma: KumaDb) -> None:
    page = _example(kuma).items["status_pages"]["status"]
    assert page["title"] == "Example status" and page["published"] is True
    assert [s["name"] for s in page["sections"]] == ["Web", "Infra"]
    assert page["sections"][1]["monitors"] == [{"monitor": "SSH", "name": "SSH"}]


def test_maintenance_becomes_one_off_and_recurring_windows(kuma: KumaDb) -> None:
    windows = _example(kuma).items["windows"]
    assert windows["Migration"] == {
        "name": "Migration",
        "starts_at": "2026-12-24T01:00:00+00:00",  # 02:00 in Berlin
        "ends_at": "2026-12-24T03:00:00+00:00",
        "timezone": "Europe/Berlin",
        "monitors": ["Website"],
    }
    assert windows["Sunday patching"] == {
        "name": "Sunday patching",
        "cron": "0 2 * * 0",
        "duration_minutes": 90,
        "timezone": "UTC",
        "monitors": ["SSH"],
    }


@pytest.mark.parametrize(
    ("config", "url"),
    [
        (
            {"type": "discord", "discordWebhookUrl": "https://discord.com/api/webhooks/42/tok"},
            "discord://42/tok",
        ),
        (
            {
                "type": "slack",
                "slackwebhookURL": "https://hooks.slack.com/services/T1/B2/xyz",
                "slackchannel": "#ops",
            },
            "slack://T1/B2/xyz/%23ops",
        ),
        (
            {
                "type": "ntfy",
                "ntfyserverurl": "https://ntfy.example.test",
                "ntfytopic": "alerts",
                "ntfyPriority": 4,
                "ntfyAuthenticationMethod": "accessToken",
                "ntfyaccesstoken": "tk_abc",
            },
            "ntfys://ntfy.example.test/alerts?priority=4&token=tk_abc",
        ),
        (
            {
                "type": "gotify",
                "gotifyserverurl": "https://push.example.test/",
                "gotifyapplicationToken": "AbCdEf123",
                "gotifyPriority": 8,
            },
            "gotifys://push.example.test/AbCdEf123?priority=8",
        ),
        (
            {"type": "pushover", "pushoveruserkey": "u" * 30, "pushoverapptoken": "a" * 30},
            f"pover://{'u' * 30}@{'a' * 30}",
        ),
        (
            {
                "type": "smtp",
                "smtpHost": "mail.example.test",
                "smtpPort": 465,
                "smtpSecure": True,
                "smtpUsername": "kuma",
                "smtpPassword": "p@ss",
                "smtpFrom": "kuma@example.test",
                "smtpTo": "ops@example.test",
            },
            "mailtos://kuma:p%40ss@mail.example.test:465?from=kuma%40example.test"
            "&to=ops%40example.test&mode=ssl",
        ),
        (
            {
                "type": "mattermost",
                "mattermostWebhookUrl": "https://chat.example.test/hooks/abc123",
            },
            "mmosts://chat.example.test/abc123",
        ),
        ({"type": "apprise", "appriseNotificationURL": "json://127.0.0.1:9/x"}, None),
        ({"type": "pushbullet", "pushbulletAccessToken": "o.abc"}, "pbul://o.abc"),
    ],
)
def test_each_mapped_notification_type_makes_an_url_apprise_reads(
    config: dict[str, object], url: str | None
) -> None:
    channel = channel_for(json.dumps(config))
    assert channel.kind == "apprise"
    assert channel.url == (url or config["appriseNotificationURL"])
    assert apprise.Apprise().add(channel.url)


def test_a_notification_missing_its_fields_says_which() -> None:
    with pytest.raises(Unmapped, match="telegramChatID"):
        channel_for(json.dumps({"type": "telegram", "telegramBotToken": "1:x"}))
    with pytest.raises(Unmapped, match="not JSON"):
        channel_for("{nope")


def test_a_file_that_is_not_a_kuma_database_is_refused_by_name(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InvalidInput, match="not an SQLite database"):
        importer.read(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(InvalidInput, match="not an Uptime Kuma database"):
        importer.read(other)


def test_a_row_holding_what_kuma_never_writes_is_reported_not_a_crash(kuma: KumaDb) -> None:
    kuma.monitor("Odd", "port", hostname="127.0.0.1", port=22, interval="every minute")
    kuma.maintenance("Odd window", [], strategy="single", start_date="soon", end_date="later")
    kuma.close()
    reasons = {(n.kind, n.name): n.reason for n in importer.read(kuma.path).skipped()}
    assert "cannot be read" in reasons[("monitor", "Odd")]
    assert "cannot be read" in reasons[("maintenance", "Odd window")]

"""A whole Uptime Kuma database as a fleet document: monitors, a server for
each host they check (carrying the monitors' tags), channels and one rule
per notification, status pages with their groups as sections, and
maintenance windows. Secrets (notification URLs, basic-auth passwords)
come out apart, to be stored and referred to. Everything not imported, and
everything imported only in part, is listed with the reason."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from infrawatch.core.cron import check_cron
from infrawatch.core.validation import plain_message
from infrawatch.fleet.document import Items
from infrawatch.fleet.kuma import monitors, notifications
from infrawatch.fleet.kuma.reader import KumaData, Row
from infrawatch.inventory.schemas import TAG_KEY_PATTERN, ServerCreate
from infrawatch.monitoring.schemas import MonitorCreate

SECRET_PREFIX = "kuma-"  # noqa: S105 (the names of stored secrets, not one)
PAGE_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass
class Note:
    kind: str  # "monitor", "notification", "status page", "maintenance", "tag"
    name: str
    reason: str
    imported: bool  # True: imported, but not all of it


@dataclass
class Conversion:
    kuma_version: str
    items: Items
    secrets: dict[str, str]  # secret name → value, to be stored before applying
    notes: list[Note] = field(default_factory=list)

    def skipped(self) -> list[Note]:
        return [n for n in self.notes if not n.imported]


def secret_reference(name: str) -> str:
    return "${secret:" + name + "}"


def convert(data: KumaData, *, servers: bool = True) -> Conversion:
    out = Conversion(data.version, {}, {})
    names = _monitors(data, out, servers)
    _tags(data, out, names, servers)
    channels = _channels(data, out)
    _rules(data, out, names, channels)
    _pages(data, out, names)
    _windows(data, out, names)
    return out


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    taken.add(candidate)
    return candidate


def _monitors(data: KumaData, out: Conversion, servers: bool) -> dict[int, str]:
    """Monitor id → the name it is imported under."""
    imported: dict[int, str] = {}
    taken: set[str] = set()
    items = out.items.setdefault("monitors", {})
    hosts = out.items.setdefault("servers", {}) if servers else {}
    for row in data.monitors:
        label = str(row.get("name") or f"monitor {row['id']}").strip() or f"monitor {row['id']}"
        try:
            converted = monitors.convert(row)
        except monitors.Skipped as why:
            out.notes.append(Note("monitor", label, str(why), imported=False))
            continue
        except (ValueError, TypeError) as exc:  # a column holding what Kuma never writes
            out.notes.append(Note("monitor", label, f"a value cannot be read ({exc})", False))
            continue
        name = _unique(label[:128], taken)
        item = {"name": name, **converted.item}
        if converted.password is not None:
            secret = f"{SECRET_PREFIX}monitor-{row['id']}-password"
            out.secrets[secret] = converted.password
            item["target"] = item["target"].replace("{password}", secret_reference(secret))
        host = converted.host if servers else None
        server = _server_item(host) if host is not None else None
        if host is not None and server is not None:
            hosts.setdefault(host, server)
            item["server"] = host
        try:
            MonitorCreate.model_validate({k: v for k, v in item.items() if k != "server"})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            out.notes.append(
                Note("monitor", label, f"{where}: {plain_message(dict(first))}", imported=False)
            )
            taken.discard(name)
            continue
        if name != label:
            out.notes.append(Note("monitor", label, f"imported as {name!r}", imported=True))
        for note in converted.notes:
            out.notes.append(Note("monitor", name, note, imported=True))
        items[name] = item
        imported[row["id"]] = name
    used = {item.get("server") for item in items.values()}
    for host in [h for h in hosts if h not in used]:
        del hosts[host]
    if not hosts:
        out.items.pop("servers", None)
    return imported


def _server_item(host: str) -> dict[str, Any] | None:
    try:
        ipaddress.ip_address(host)
        item = {"name": host, "ip_address": host}
    except ValueError:
        item = {"name": host, "hostname": host}
    try:
        ServerCreate.model_validate(item)
    except ValidationError:
        return None
    return item


def _tag_key(name: str) -> str | None:
    key = re.sub(r"[^A-Za-z0-9_./-]+", "-", name.strip()).strip("-_./")[:63]
    return key if re.match(TAG_KEY_PATTERN, key) else None


def _tags(data: KumaData, out: Conversion, names: dict[int, str], servers: bool) -> None:
    """Kuma tags monitors; InfraWatch tags servers, which rules and windows
    select by. A monitor's tags go to the server made for its host."""
    tags = {t["id"]: t for t in data.tags}
    monitors_ = out.items.get("monitors", {})
    hosts = out.items.get("servers", {})
    for link in data.monitor_tags:
        tag = tags.get(link["tag_id"])
        monitor = names.get(link["monitor_id"])
        if tag is None or monitor is None:
            continue
        label = f"{tag['name']} on {monitor}"
        key = _tag_key(str(tag["name"]))
        server = monitors_[monitor].get("server")
        if key is None:
            out.notes.append(Note("tag", label, "its name makes no tag key", imported=False))
            continue
        if server is None:
            why = (
                "servers are not made (--no-servers)" if not servers else "its monitor has no host"
            )
            out.notes.append(Note("tag", label, f"not kept: {why}", imported=False))
            continue
        value = str(link.get("value") or "")
        kept = hosts[server].setdefault("tags", {})
        if key in kept and kept[key] != value:
            out.notes.append(
                Note(
                    "tag",
                    label,
                    f"server {server} has {key}={kept[key]!r} from another monitor; "
                    f"{value!r} not kept",
                    imported=False,
                )
            )
            continue
        kept[key] = value


def _channels(data: KumaData, out: Conversion) -> dict[int, str]:
    imported: dict[int, str] = {}
    taken: set[str] = set()
    for row in data.notifications:
        label = str(row.get("name") or f"notification {row['id']}").strip()
        try:
            channel = notifications.channel_for(row.get("config"))
        except notifications.Unmapped as why:
            out.notes.append(Note("notification", label, str(why), imported=False))
            continue
        name = _unique(label[:128], taken)
        secret = f"{SECRET_PREFIX}notification-{row['id']}"
        out.secrets[secret] = channel.url
        item: dict[str, Any] = {"name": name, "url": secret_reference(secret)}
        if channel.kind != "apprise":
            item["kind"] = channel.kind
        if not row.get("active", 1):
            item["enabled"] = False
        out.items.setdefault("channels", {})[name] = item
        imported[row["id"]] = name
    return imported


def _rules(
    data: KumaData, out: Conversion, monitor_names: dict[int, str], channels: dict[int, str]
) -> None:
    """Kuma sends a monitor's news to the notifications ticked on it: one rule
    per notification, for those monitors."""
    by_notification: dict[int, list[str]] = {}
    certificates: dict[int, bool] = {}
    # Kuma warns of expiring certificates on HTTPS monitors only.
    expiry = {
        m["id"]: bool(m.get("expiry_notification")) and str(m.get("url") or "").startswith("https:")
        for m in data.monitors
    }
    for link in data.monitor_notifications:
        monitor = monitor_names.get(link["monitor_id"])
        if monitor is None or link["notification_id"] not in channels:
            continue
        by_notification.setdefault(link["notification_id"], []).append(monitor)
        if expiry.get(link["monitor_id"]):
            certificates[link["notification_id"]] = True
    for notification_id, listed in by_notification.items():
        channel = channels[notification_id]
        name = f"kuma: {channel}"[:128]
        events = ["down", "recovered"] + (
            ["certificate"] if certificates.get(notification_id) else []
        )
        out.items.setdefault("rules", {})[name] = {
            "name": name,
            "channels": [channel],
            "monitors": sorted(set(listed)),
            "events": events,
        }


def _pages(data: KumaData, out: Conversion, monitor_names: dict[int, str]) -> None:
    groups: dict[int, list[Row]] = {}
    for group in data.page_groups:
        if group.get("status_page_id") is not None:
            groups.setdefault(group["status_page_id"], []).append(group)
    members: dict[int, list[int]] = {}
    for link in data.group_monitors:
        members.setdefault(link["group_id"], []).append(link["monitor_id"])
    kuma_names = {m["id"]: str(m.get("name") or m["id"]) for m in data.monitors}
    for page in data.status_pages:
        slug = str(page.get("slug") or "").lower()
        label = f"{page.get('title') or slug} ({slug})"
        if not PAGE_SLUG.match(slug):
            out.notes.append(
                Note("status page", label, "its slug is not a-z, 0-9 and -", imported=False)
            )
            continue
        sections = []
        for group in groups.get(page["id"], []):
            entries = []
            for monitor_id in members.get(group["id"], []):
                monitor = monitor_names.get(monitor_id)
                if monitor is None:
                    out.notes.append(
                        Note(
                            "status page",
                            label,
                            f"monitor {kuma_names.get(monitor_id, monitor_id)!r} of section "
                            f"{group['name']!r} was not imported",
                            imported=True,
                        )
                    )
                    continue
                entries.append({"monitor": monitor, "name": monitor})
            sections.append({"name": str(group["name"])[:128] or "Services", "monitors": entries})
        item: dict[str, Any] = {
            "slug": slug,
            "title": str(page.get("title") or slug)[:128],
            "published": bool(page.get("published", 1)),
            "sections": sections,
        }
        if page.get("description"):
            item["description"] = str(page["description"])
        for column, what in (
            ("footer_text", "footer text"),
            ("custom_css", "custom CSS"),
            ("google_analytics_tag_id", "analytics tag"),
            ("password", "password"),
        ):
            if page.get(column):
                out.notes.append(Note("status page", label, f"its {what} is not kept", True))
        out.items.setdefault("status_pages", {})[slug] = item


def _timezone(row: Row, data: KumaData, notes: list[str]) -> str:
    zone = str(row.get("timezone") or "")
    if zone in ("", "SAME_AS_SERVER"):
        zone = str(data.settings.get("serverTimezone") or "UTC").strip('"')
        notes.append(f"it followed Kuma's server time zone, taken as {zone}")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        notes.append(f"time zone {zone!r} is unknown here; UTC used")
        return "UTC"
    return zone


def _windows(data: KumaData, out: Conversion, monitor_names: dict[int, str]) -> None:
    members: dict[int, list[str]] = {}
    for link in data.maintenance_monitors:
        monitor = monitor_names.get(link["monitor_id"])
        if monitor is not None:
            members.setdefault(link["maintenance_id"], []).append(monitor)
    taken: set[str] = set()
    for row in data.maintenances:
        label = str(row.get("title") or f"maintenance {row['id']}")
        notes: list[str] = []
        try:
            schedule = _schedule(row, data, notes)
        except monitors.Skipped as why:
            out.notes.append(Note("maintenance", label, str(why), imported=False))
            continue
        except (ValueError, TypeError) as exc:
            out.notes.append(Note("maintenance", label, f"a value cannot be read ({exc})", False))
            continue
        if not row.get("active", 1):
            out.notes.append(Note("maintenance", label, "it is paused in Kuma", imported=False))
            continue
        listed = sorted(set(members.get(row["id"], [])))
        if not listed:
            out.notes.append(
                Note("maintenance", label, "none of its monitors was imported", imported=False)
            )
            continue
        name = _unique(label[:128], taken)
        item = {"name": name, **schedule, "monitors": listed}
        if row.get("description"):
            item["description"] = str(row["description"])
        out.items.setdefault("windows", {})[name] = item
        out.notes.extend(Note("maintenance", name, n, imported=True) for n in notes)


def _schedule(row: Row, data: KumaData, notes: list[str]) -> dict[str, Any]:
    strategy = str(row.get("strategy") or "single")
    if strategy == "manual":
        raise monitors.Skipped("it is switched on and off by hand, which windows are not")
    zone = _timezone(row, data, notes)
    if strategy == "single":
        if not row.get("start_date") or not row.get("end_date"):
            raise monitors.Skipped("a one-off window without its start and end")
        local = ZoneInfo(zone)
        starts, ends = (
            datetime.fromisoformat(str(row[c])).replace(tzinfo=local)
            for c in ("start_date", "end_date")
        )
        # Stored in UTC: written so, a second import compares equal.
        return {
            "starts_at": starts.astimezone(UTC).isoformat(),
            "ends_at": ends.astimezone(UTC).isoformat(),
            "timezone": zone,
        }
    if strategy == "recurring-interval" and int(row.get("interval_day") or 1) > 1:
        raise monitors.Skipped(
            f"it recurs every {row['interval_day']} days, which a cron schedule cannot say"
        )
    cron = str(row.get("cron") or "").strip() or _cron_from_times(row, strategy)
    duration = int(row.get("duration") or 0) // 60 or _minutes_between(row)
    if not duration:
        raise monitors.Skipped("it has no duration")
    try:
        check_cron(cron)
    except ValueError as exc:
        raise monitors.Skipped(f"its schedule {cron!r} is not one we read ({exc})") from None
    return {"cron": cron, "duration_minutes": duration, "timezone": zone}


def _hour_minute(text: Any) -> tuple[int, int]:
    hour, minute = str(text or "00:00").split(":")[:2]
    return int(hour), int(minute)


def _cron_from_times(row: Row, strategy: str) -> str:
    """Kuma before 1.21.2 kept recurring windows as times and lists, not cron."""
    hour, minute = _hour_minute(row.get("start_time"))
    if strategy == "recurring-weekday":
        weekdays = [d for d in monitors.json_or(row.get("weekdays"), []) if isinstance(d, int)]
        days = ",".join(str(d) for d in sorted(weekdays))
        return f"{minute} {hour} * * {days or '*'}"
    if strategy == "recurring-day-of-month":
        listed = [d for d in monitors.json_or(row.get("days_of_month"), []) if isinstance(d, int)]
        return f"{minute} {hour} {','.join(map(str, sorted(listed))) or '*'} * *"
    return f"{minute} {hour} * * *"


def _minutes_between(row: Row) -> int:
    if not row.get("start_time") or not row.get("end_time"):
        return 0
    start, end = _hour_minute(row["start_time"]), _hour_minute(row["end_time"])
    minutes = (end[0] * 60 + end[1]) - (start[0] * 60 + start[1])
    return minutes if minutes > 0 else minutes + 24 * 60

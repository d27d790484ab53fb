"""One Uptime Kuma monitor as a fleet document's monitor: the types we have
(http, keyword, json-query, port, ping, dns, push) with their intervals,
retries, accepted codes, headers and body. What Kuma does that we would
not do the same way (an inverted monitor, NTLM, client certificates) is
not imported at all rather than imported wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from infrawatch.probes.paths import ConditionError, json_path_parts

KUMA_TYPES = ("http", "keyword", "json-query", "port", "ping", "dns", "push")
DNS_TYPES = {"A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "PTR", "CAA"}
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class Skipped(Exception):
    """Why a monitor is not imported."""


@dataclass
class Converted:
    item: dict[str, Any]
    host: str | None  # the host a server is made for (None: push, dns)
    password: str | None = None  # basic auth: stored as a secret
    notes: list[str] = field(default_factory=list)  # imported, but not all of it


def json_or(text: Any, default: Any) -> Any:
    """Kuma keeps lists and maps as JSON text; unreadable or empty: `default`."""
    if text in (None, ""):
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def convert(row: dict[str, Any]) -> Converted:
    kind = str(row.get("type") or "")
    if kind not in KUMA_TYPES:
        raise Skipped(f"type {kind!r} has no InfraWatch equivalent")
    if row.get("upside_down"):
        raise Skipped("it is inverted (upside down mode), which InfraWatch has no equivalent of")
    interval = max(int(row.get("interval") or 60), 1)
    item: dict[str, Any] = {"interval_seconds": interval}
    timeout = float(row.get("timeout") or 0)
    if 0 < timeout <= min(interval, 120):
        item["timeout_seconds"] = timeout
    retry = int(row.get("retry_interval") or 0)
    if retry and retry != interval:
        item["retry_interval_seconds"] = retry
    # Kuma retries `maxretries` times before DOWN: the first failure and the
    # retries are our failures in a row.
    item["failure_threshold"] = min(int(row.get("maxretries") or 0) + 1, 100)
    if not row.get("active", 1):
        item["paused"] = True
    notes: list[str] = []
    if row.get("parent"):
        notes.append("its Kuma group (parent) is not kept; status page sections group monitors")
    if row.get("proxy_id"):
        notes.append("it went through a Kuma proxy; InfraWatch checks directly")
    if int(row.get("resend_interval") or 0):
        notes.append("its resend interval is not kept; set reminder_minutes on a rule")
    converter = {
        "http": _http,
        "keyword": _http,
        "json-query": _http,
        "port": _port,
        "ping": _ping,
        "dns": _dns,
        "push": _push,
    }[kind]
    converted = converter(row, item)
    converted.notes[:0] = notes
    return converted


def _http(row: dict[str, Any], item: dict[str, Any]) -> Converted:
    url = str(row.get("url") or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Skipped(f"its URL {url!r} is not http(s)://host/…")
    method = str(row.get("auth_method") or "")
    if method not in ("", "basic", "null"):
        raise Skipped(f"it authenticates with {method}, which InfraWatch checks do not")
    if row.get("tls_cert") or row.get("tls_key"):
        raise Skipped("it presents a client certificate, which InfraWatch checks do not")
    settings: dict[str, Any] = {}
    notes: list[str] = []
    verb = str(row.get("method") or "GET").upper()
    if verb not in METHODS:
        raise Skipped(f"its method {verb} is not one InfraWatch sends")
    if verb != "GET":
        settings["method"] = verb
    headers = json_or(row.get("headers"), {})
    if not isinstance(headers, dict):
        notes.append("its headers are not a JSON object and were left out")
    elif headers:
        settings["headers"] = {str(k): str(v) for k, v in headers.items()}
    if row.get("body"):
        settings["body"] = str(row["body"])
    codes = json_or(row.get("accepted_statuscodes_json"), ["200-299"])
    if isinstance(codes, list) and codes and codes != ["200-399"]:
        settings["accepted_status_codes"] = [str(c) for c in codes]
    redirects = int(row["maxredirects"]) if row.get("maxredirects") is not None else 10
    if redirects == 0:
        settings["follow_redirects"] = False
    elif redirects != 10:
        settings["max_redirects"] = min(redirects, 30)
    if row.get("ignore_tls"):
        settings["verify_tls"] = False
    if row["type"] == "keyword":
        keyword = str(row.get("keyword") or "")
        if not keyword:
            raise Skipped("it is a keyword monitor without a keyword")
        settings["keyword_absent" if row.get("invert_keyword") else "keyword"] = keyword
    if row["type"] == "json-query":
        path = str(row.get("json_path") or "").strip()
        operator = str(row.get("json_path_operator") or "==")
        if operator != "==":
            raise Skipped(f"its JSON query compares with {operator!r}; InfraWatch compares with ==")
        try:
            json_path_parts(path)
        except ConditionError:
            raise Skipped(f"its JSON query {path!r} is an expression, not a path") from None
        settings["json_path"] = path
        settings["json_expected"] = str(row.get("expected_value") or "")
    user = str(row.get("basic_auth_user") or "")
    password = str(row.get("basic_auth_pass") or "") if user else None
    if user:
        # The password goes in as a reference to a stored secret; the
        # importer fills in its name.
        netloc = f"{user}:{{password}}@{parts.netloc.rsplit('@', 1)[-1]}"
        url = urlunsplit(parts._replace(netloc=netloc))
    item.update(type="http", target=url)
    if settings:
        item["settings"] = settings
    return Converted(item, parts.hostname, password or None, notes)


def _port(row: dict[str, Any], item: dict[str, Any]) -> Converted:
    host = str(row.get("hostname") or "").strip()
    if not host or not row.get("port"):
        raise Skipped("it is a port monitor without a host and port")
    target = f"[{host}]:{row['port']}" if ":" in host else f"{host}:{row['port']}"
    item.update(type="tcp", target=target)
    return Converted(item, host)


def _ping(row: dict[str, Any], item: dict[str, Any]) -> Converted:
    host = str(row.get("hostname") or "").strip()
    if not host:
        raise Skipped("it is a ping monitor without a host")
    item.update(type="ping", target=host)
    return Converted(item, host)


def _dns(row: dict[str, Any], item: dict[str, Any]) -> Converted:
    name = str(row.get("hostname") or "").strip()
    if not name:
        raise Skipped("it is a DNS monitor without a name to resolve")
    record = str(row.get("dns_resolve_type") or "A").upper()
    if record not in DNS_TYPES:
        raise Skipped(f"it asks for {record} records, which InfraWatch does not")
    settings: dict[str, Any] = {}
    if record != "A":
        settings["record_type"] = record
    resolver = str(row.get("dns_resolve_server") or "").strip()
    port = int(row.get("port") or 53)
    if resolver:
        settings["resolver"] = resolver if port == 53 else f"{resolver}:{port}"
    item.update(type="dns", target=name)
    if settings:
        item["settings"] = settings
    return Converted(item, None)  # the name resolved is not a server


def _push(row: dict[str, Any], item: dict[str, Any]) -> Converted:
    # Kuma marks a push monitor down when no push came for an interval.
    item.update(type="push", settings={"period_seconds": max(item["interval_seconds"], 10)})
    item.pop("timeout_seconds", None)
    return Converted(
        item,
        None,
        notes=["its push URL changes: InfraWatch issues a new token (GET /api/v1/monitors/{id})"],
    )

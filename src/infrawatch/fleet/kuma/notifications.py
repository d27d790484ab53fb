"""Uptime Kuma notifications as InfraWatch channels: an Apprise URL where
Apprise has the same service (or our signed webhook for Kuma's JSON
webhook), built from the fields Kuma's forms store in `notification.config`.
What has no mapping says why; every URL made is checked by Apprise itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import apprise


@dataclass
class Channel:
    kind: str  # "apprise" or "webhook"
    url: str  # holds credentials: stored as a secret, never in the document


class Unmapped(Exception):
    """Why a notification cannot become a channel."""


def _q(value: Any) -> str:
    return quote(str(value), safe="")


def _need(config: dict[str, Any], *keys: str) -> list[str]:
    missing = [k for k in keys if not str(config.get(k) or "").strip()]
    if missing:
        raise Unmapped(f"its {', '.join(missing)} is empty")
    return [str(config[k]).strip() for k in keys]


def _query(**params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "", [])}
    return f"?{urlencode(kept)}" if kept else ""


def _webhook_path(url: str, marker: str) -> list[str]:
    """The parts after `marker` in a webhook URL (`/api/webhooks/ID/TOKEN`)."""
    path = urlsplit(url).path
    if marker not in path:
        raise Unmapped(f"its webhook URL is not of the form …{marker}…")
    return [p for p in path.split(marker, 1)[1].split("/") if p]


def _telegram(c: dict[str, Any]) -> Channel:
    token, chat = _need(c, "telegramBotToken", "telegramChatID")
    if str(c.get("telegramServerUrl") or "").rstrip("/") not in ("", "https://api.telegram.org"):
        raise Unmapped("it uses its own Telegram Bot API server, which Apprise cannot")
    thread = str(c.get("telegramMessageThreadID") or "").strip()
    target = f"{chat}:{thread}" if thread else chat
    return Channel("apprise", f"tgram://{_q(token)}/{_q(target)}")


def _discord(c: dict[str, Any]) -> Channel:
    (url,) = _need(c, "discordWebhookUrl")
    parts = _webhook_path(url, "/api/webhooks/")
    if len(parts) < 2:
        raise Unmapped("its webhook URL has no id and token")
    return Channel("apprise", f"discord://{_q(parts[0])}/{_q(parts[1])}")


def _slack(c: dict[str, Any]) -> Channel:
    (url,) = _need(c, "slackwebhookURL")
    parts = _webhook_path(url, "/services/")
    if len(parts) < 3:
        raise Unmapped("its webhook URL is not hooks.slack.com/services/T…/B…/…")
    channel = str(c.get("slackchannel") or "").strip().lstrip("#")
    tail = f"/{_q('#' + channel)}" if channel else ""
    return Channel("apprise", "slack://" + "/".join(_q(p) for p in parts[:3]) + tail)


def _webhook(c: dict[str, Any]) -> Channel:
    (url,) = _need(c, "webhookURL")
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise Unmapped("its URL is not http(s)")
    if str(c.get("webhookContentType") or "json") == "form-data":
        return Channel("apprise", ("forms" if scheme == "https" else "form") + url[len(scheme) :])
    # Kuma posts its own JSON; ours is signed and says the same (monitor,
    # status, message), so a receiver needs a small change either way.
    return Channel("webhook", url)


def _ntfy(c: dict[str, Any]) -> Channel:
    server, topic = _need(c, "ntfyserverurl", "ntfytopic")
    parts = urlsplit(server)
    scheme = "ntfys" if parts.scheme == "https" else "ntfy"
    auth = ""
    token = None
    method = str(c.get("ntfyAuthenticationMethod") or "")
    if method == "accessToken" or (not method and c.get("ntfyaccesstoken")):
        token = c.get("ntfyaccesstoken")
    elif c.get("ntfyusername"):
        auth = f"{_q(c['ntfyusername'])}:{_q(c.get('ntfypassword') or '')}@"
    path = parts.path.rstrip("/")
    query = _query(priority=c.get("ntfyPriority"), token=token)
    return Channel("apprise", f"{scheme}://{auth}{parts.netloc}{path}/{_q(topic)}{query}")


def _gotify(c: dict[str, Any]) -> Channel:
    server, token = _need(c, "gotifyserverurl", "gotifyapplicationToken")
    parts = urlsplit(server)
    scheme = "gotifys" if parts.scheme == "https" else "gotify"
    query = _query(priority=c.get("gotifyPriority"))
    return Channel(
        "apprise", f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/{_q(token)}{query}"
    )


def _pushover(c: dict[str, Any]) -> Channel:
    user, token = _need(c, "pushoveruserkey", "pushoverapptoken")
    device = str(c.get("pushoverdevice") or "").strip()
    query = _query(priority=c.get("pushoverpriority"), sound=c.get("pushoversounds"))
    return Channel(
        "apprise", f"pover://{_q(user)}@{_q(token)}" + (f"/{_q(device)}" if device else "") + query
    )


def _mattermost(c: dict[str, Any]) -> Channel:
    (url,) = _need(c, "mattermostWebhookUrl")
    parts = urlsplit(url)
    path = parts.path
    if "/hooks/" not in path:
        raise Unmapped("its webhook URL is not of the form …/hooks/TOKEN")
    prefix, token = path.rsplit("/hooks/", 1)
    scheme = "mmosts" if parts.scheme == "https" else "mmost"
    channel = str(c.get("mattermostchannel") or "").strip()
    query = _query(channel=channel)
    return Channel("apprise", f"{scheme}://{parts.netloc}{prefix}/{_q(token)}{query}")


def _teams(c: dict[str, Any]) -> Channel:
    (url,) = _need(c, "webhookUrl")
    return Channel("apprise", url)  # Apprise reads Teams' own webhook URLs


def _smtp(c: dict[str, Any]) -> Channel:
    host, sender, to = _need(c, "smtpHost", "smtpFrom", "smtpTo")
    port = c.get("smtpPort") or (465 if c.get("smtpSecure") else 587)
    user = str(c.get("smtpUsername") or "")
    auth = f"{_q(user)}:{_q(c.get('smtpPassword') or '')}@" if user else ""
    query = _query(
        **{"from": sender, "to": to, "cc": c.get("smtpCC"), "bcc": c.get("smtpBCC")},
        mode="ssl" if c.get("smtpSecure") else None,
    )
    scheme = "mailtos" if c.get("smtpSecure") else "mailto"
    return Channel("apprise", f"{scheme}://{auth}{host}:{port}{query}")


def _matrix(c: dict[str, Any]) -> Channel:
    server, room, token = _need(c, "homeserverUrl", "internalRoomId", "accessToken")
    parts = urlsplit(server)
    scheme = "matrixs" if parts.scheme == "https" else "matrix"
    return Channel("apprise", f"{scheme}://{_q(token)}@{parts.netloc}/{_q(room)}")


def _signal(c: dict[str, Any]) -> Channel:
    url, number, recipients = _need(c, "signalURL", "signalNumber", "signalRecipients")
    parts = urlsplit(url)
    scheme = "signals" if parts.scheme == "https" else "signal"
    to = "/".join(_q(r.strip()) for r in recipients.split(",") if r.strip())
    return Channel("apprise", f"{scheme}://{parts.netloc}/{_q(number)}/{to}")


def _google_chat(c: dict[str, Any]) -> Channel:
    (url,) = _need(c, "googleChatWebhookURL")
    return Channel("apprise", url)  # Apprise reads Google Chat's own webhook URLs


def _pushbullet(c: dict[str, Any]) -> Channel:
    (token,) = _need(c, "pushbulletAccessToken")
    return Channel("apprise", f"pbul://{_q(token)}")


def _apprise(c: dict[str, Any]) -> Channel:
    (url,) = _need(c, "appriseNotificationURL")
    return Channel("apprise", url)


MAPPERS: dict[str, Callable[[dict[str, Any]], Channel]] = {
    "apprise": _apprise,
    "telegram": _telegram,
    "discord": _discord,
    "slack": _slack,
    "webhook": _webhook,
    "ntfy": _ntfy,
    "gotify": _gotify,
    "pushover": _pushover,
    "mattermost": _mattermost,
    "teams": _teams,
    "smtp": _smtp,
    "matrix": _matrix,
    "signal": _signal,
    "GoogleChat": _google_chat,
    "pushbullet": _pushbullet,
}


def channel_for(config_text: str | None) -> Channel:
    """The channel a notification's stored config maps to, or Unmapped."""
    try:
        config = json.loads(config_text or "{}")
    except ValueError:
        raise Unmapped("its config is not JSON") from None
    if not isinstance(config, dict):
        raise Unmapped("its config is not a JSON object")
    kind = str(config.get("type") or "")
    mapper = MAPPERS.get(kind)
    if mapper is None:
        raise Unmapped(
            f"Kuma type {kind or '(none)'!r} has no mapping (mapped: {', '.join(sorted(MAPPERS))})"
        )
    channel = mapper(config)
    if channel.kind == "apprise" and not apprise.Apprise().add(channel.url):
        raise Unmapped(f"Apprise does not read the {kind} URL made from it")
    return channel

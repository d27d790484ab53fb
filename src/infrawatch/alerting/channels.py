"""Sending one message through one channel: Apprise for the 100+ services
it knows, or our signed webhook. Each send has its own time limit, so a
dead or slow channel holds up nothing but itself."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import apprise

SEND_TIMEOUT_SECONDS = 20.0
SIGNATURE_HEADER = "X-InfraWatch-Signature"


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Target:
    kind: str  # apprise, webhook
    url: str
    secret: str | None


class DeliveryError(Exception):
    pass


def url_hint(url: str) -> str:
    """Scheme and host only: Apprise URLs carry tokens in every other part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}"[:64] if parts.scheme else "(hidden)"


def apprise_supports(url: str) -> bool:
    return apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def send(target: Target, message: Message, timeout: float = SEND_TIMEOUT_SECONDS) -> None:
    """Raises DeliveryError with a reason that never contains the URL."""
    try:
        async with asyncio.timeout(timeout):
            if target.kind == "webhook":
                await _send_webhook(target, message)
            else:
                await _send_apprise(target, message)
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g} s") from None


async def _send_webhook(target: Target, message: Message) -> None:
    body = json.dumps(
        {"title": message.title, "body": message.body, **message.payload}, default=str
    ).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "InfraWatch-Webhook/1"}
    if target.secret:
        headers[SIGNATURE_HEADER] = signature(target.secret, body)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(target.url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            if response.status >= 300:
                raise DeliveryError(f"the webhook answered HTTP {response.status}")
    except aiohttp.ClientError as exc:
        raise DeliveryError(f"the webhook could not be reached: {type(exc).__name__}") from None


async def _send_apprise(target: Target, message: Message) -> None:
    notifier = apprise.Apprise()
    if not notifier.add(target.url):
        raise DeliveryError("Apprise does not understand this URL")
    logs: list[str] = []

    def collect(entry: Any) -> None:
        logs.append(str(getattr(entry, "message", entry)))

    result = await notifier.async_notify(
        body=message.body, title=message.title, log_callback=collect
    )
    if not result:
        detail = _redact("; ".join(logs[-3:]), target.url) if logs else ""
        raise DeliveryError(f"Apprise could not deliver ({result.status.name}) {detail}".strip())


def _redact(text: str, url: str) -> str:
    """Delivery errors are stored and shown: strip anything of the URL that
    could be a credential."""
    text = text.replace(url, "[channel url]")
    for piece in re.split(r"[/:@?&=#]+", url):
        if len(piece) >= 6:
            text = text.replace(piece, "[redacted]")
    return text[:500]

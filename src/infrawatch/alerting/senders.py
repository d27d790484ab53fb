"""Sending one message through one channel: Apprise for the 100+ services
it knows, or our signed webhook. Each send has its own time limit, so a
dead or slow channel holds up nothing but itself.

Apprise's plugins are blocking code. Each send runs in a thread of its own
(not Apprise's shared pool of a few threads, where a hung webhook queued
every other channel's sends behind it and a send that timed out while
queued went out later anyway, then again on retry). A send whose thread
outlives the time limit is reported as still in flight (`InFlight`): the
caller waits for it to end before deciding anything, so it is never
retried while it may still be going out."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import aiohttp
import apprise

SEND_TIMEOUT_SECONDS = 20.0
SIGNATURE_HEADER = "X-InfraWatch-Signature"
DELIVERY_HEADER = "X-InfraWatch-Delivery"


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    payload: dict[str, Any]
    delivery_id: str | None = None  # the outbox message, for receivers to deduplicate


def severity(payload: dict[str, Any]) -> str:
    """What a message means, for receivers that colour by it: failure,
    warning, success or info (Apprise's notify types; webhooks get it as
    `severity`)."""
    event = payload.get("event")
    if event == "location":
        return "warning" if payload.get("state") == "gone" else "success"
    return {
        "down": "failure",
        "degraded": "warning",
        "certificate": "warning",
        "recovered": "success",
    }.get(str(event), "info")


@dataclass(frozen=True)
class Target:
    kind: str  # apprise, webhook
    url: str
    secret: str | None


class DeliveryError(Exception):
    pass


class InFlight(DeliveryError):
    """The time limit passed while the send was still running: `finished`
    resolves (to None, or the DeliveryError) when it really ends."""

    def __init__(self, message: str, finished: asyncio.Future[DeliveryError | None]) -> None:
        super().__init__(message)
        self.finished = finished


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
    """Raises DeliveryError with a reason that never contains the URL, or
    InFlight if the send did not end within `timeout`."""
    if target.kind == "webhook":
        try:
            async with asyncio.timeout(timeout):
                await _send_webhook(target, message)
        except TimeoutError:
            # aiohttp's request is cancelled with the timeout: it has ended.
            raise DeliveryError(f"no answer within {timeout:g} s") from None
        return
    finished = _start_apprise(target, message, timeout)
    try:
        error = await asyncio.wait_for(asyncio.shield(finished), timeout)
    except TimeoutError:
        raise InFlight(f"no answer within {timeout:g} s; still sending", finished) from None
    if error is not None:
        raise error


async def _send_webhook(target: Target, message: Message) -> None:
    body = json.dumps(
        {
            "title": message.title,
            "body": message.body,
            "severity": severity(message.payload),
            **message.payload,
        },
        default=str,
    ).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "InfraWatch-Webhook/1"}
    if message.delivery_id:
        # A receiver that saw this id already has this message: a retry after
        # a lost answer can be told from a new alert.
        headers[DELIVERY_HEADER] = message.delivery_id
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


def _with_socket_timeouts(url: str, timeout: float) -> str:
    """Apprise reads `cto`/`rto` (connect and read timeouts) from any URL;
    its 4 s read timeout failed receivers that answer in 5 s, and the retry
    then sent the message twice. Left alone where the user set them."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    extra = {
        k: f"{v:g}" for k, v in (("cto", min(timeout, 10.0)), ("rto", timeout)) if k not in query
    }
    if not extra:
        return url
    joined = "&".join(filter(None, [parts.query, urlencode(extra)]))
    return urlunsplit(parts._replace(query=joined))


def _start_apprise(
    target: Target, message: Message, timeout: float
) -> asyncio.Future[DeliveryError | None]:
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[DeliveryError | None] = loop.create_future()
    notifier = apprise.Apprise()
    if not notifier.add(_with_socket_timeouts(target.url, timeout)):
        finished.set_result(DeliveryError("Apprise does not understand this URL"))
        return finished

    def settle(error: DeliveryError | None) -> None:
        if not finished.done():
            finished.set_result(error)

    def work() -> None:
        logs: list[str] = []

        def collect(entry: Any, *_: Any) -> None:
            logs.append(str(getattr(entry, "message", entry)))

        try:
            result = notifier.notify(
                body=message.body,
                title=message.title,
                notify_type=apprise.NotifyType(severity(message.payload)),
                log_callback=collect,
            )
            error = None
            if not result:
                detail = _redact("; ".join(logs[-3:]), target.url) if logs else ""
                status = getattr(getattr(result, "status", None), "name", "failed")
                error = DeliveryError(f"Apprise could not deliver ({status}) {detail}".strip())
        except Exception as exc:  # a plugin's bug is this channel's failure
            error = DeliveryError(f"Apprise failed: {type(exc).__name__}")
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=work, name="apprise-send", daemon=True).start()
    return finished


def _redact(text: str, url: str) -> str:
    """Delivery errors are stored and shown: strip anything of the URL that
    could be a credential."""
    text = text.replace(url, "[channel url]")
    for piece in re.split(r"[/:@?&=#]+", url):
        if len(piece) >= 6:
            text = text.replace(piece, "[redacted]")
    return text[:500]

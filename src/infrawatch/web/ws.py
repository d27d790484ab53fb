"""/ws: live updates for open pages. Authenticated by the session cookie
(same origin only: a cookie rides along on cross-site sockets too), by a
first message `{"type": "auth", "token": …}`, or by `?token=` (kept for old
scripts; masked in the logs). Clients subscribe to bus topics; see docs/console.md for the
protocol."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from infrawatch.accounts import service as accounts
from infrawatch.accounts.security import SESSION_COOKIE
from infrawatch.core.clock import utcnow
from infrawatch.core.errors import Forbidden, Unauthorized
from infrawatch.core.runtime import Runtime
from infrawatch.web.hub import ALLOWED_TOPICS, Client, Hub, allowed_pattern

log = logging.getLogger(__name__)
router = APIRouter()

PING_SECONDS = 25.0  # under the idle timeout of common proxies
RECHECK_SECONDS = 60.0  # a logged-out or deactivated user's socket closes within this
AUTH_SECONDS = 5.0  # a socket with no credential waits this long for an auth message
MAX_TOPICS = 20
MAX_MONITOR_IDS = 2000
UNAUTHORIZED, FORBIDDEN = 4401, 4403


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:  # not a browser: no ambient cookie to abuse
        return True
    return urlsplit(origin).netloc.lower() == ws.headers.get("host", "").lower()


async def _authenticate(runtime: Runtime, secret: str) -> accounts.Authenticated:
    async with runtime.db.unit_of_work(write=False) as session:
        return await accounts.authenticate(session, secret)


@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    runtime: Runtime = ws.app.state.runtime
    hub: Hub = ws.app.state.hub
    secret = ws.query_params.get("token")
    if secret is None:
        secret = ws.cookies.get(SESSION_COOKIE)
        if secret is not None and not _same_origin(ws):
            await ws.close(FORBIDDEN, "cross-origin connection with a session cookie")
            return
    await ws.accept()
    if not secret:
        secret = await _token_from_first_message(ws)
    if not secret:
        await ws.close(UNAUTHORIZED, 'log in, or send {"type": "auth", "token": …} first')
        return
    try:
        auth = await _authenticate(runtime, secret)
    except (Unauthorized, Forbidden) as exc:  # Forbidden: a session that must enrol first
        await ws.close(UNAUTHORIZED, exc.message)
        return
    with hub.connected() as client:
        await ws.send_json(
            {
                "type": "hello",
                "user": auth.actor.username,
                "role": auth.actor.role.value,
                "topics": list(ALLOWED_TOPICS),
                "server_time": utcnow().isoformat(),
            }
        )
        tasks = [
            asyncio.create_task(_send(ws, client)),
            asyncio.create_task(_keepalive(ws, client, runtime, secret)),
        ]
        try:
            await _receive(ws, client, hub)
        except WebSocketDisconnect:
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _token_from_first_message(ws: WebSocket) -> str | None:
    """Scripts authenticate with their first message, {"type": "auth",
    "token": "iw_…"}: unlike ?token= it appears in no URL, so in no access
    log or proxy log."""
    try:
        async with asyncio.timeout(AUTH_SECONDS):
            message = await ws.receive_json()
    except (TimeoutError, ValueError, WebSocketDisconnect):
        return None
    if isinstance(message, dict) and message.get("type") == "auth":
        token = message.get("token")
        return token if isinstance(token, str) and 0 < len(token) <= 256 else None
    return None


async def _send(ws: WebSocket, client: Client) -> None:
    while True:
        message = await client.queue.get()
        await ws.send_json(message)


async def _keepalive(ws: WebSocket, client: Client, runtime: Runtime, secret: str) -> None:
    checked = asyncio.get_running_loop().time()
    while True:
        await asyncio.sleep(PING_SECONDS)
        with contextlib.suppress(asyncio.QueueFull):
            client.queue.put_nowait({"type": "ping", "server_time": utcnow().isoformat()})
        if asyncio.get_running_loop().time() - checked >= RECHECK_SECONDS:
            checked = asyncio.get_running_loop().time()
            try:
                await _authenticate(runtime, secret)
            except (Unauthorized, Forbidden) as exc:
                await ws.close(UNAUTHORIZED, exc.message)
                return


async def _receive(ws: WebSocket, client: Client, hub: Hub) -> None:
    while True:
        try:
            message = await ws.receive_json()
        except ValueError:
            await ws.send_json({"type": "error", "message": "messages are JSON objects"})
            continue
        reply = _handle(client, hub, message)
        if reply is not None:
            await ws.send_json(reply)


def _since(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _handle(client: Client, hub: Hub, message: Any) -> dict[str, Any] | None:
    kind = message.get("type") if isinstance(message, dict) else None
    if kind == "ping":
        return {"type": "pong", "server_time": utcnow().isoformat()}
    if kind != "subscribe":
        return {"type": "error", "message": "type must be 'subscribe' or 'ping'"}
    topics = message.get("topics")
    if (
        not isinstance(topics, list)
        or len(topics) > MAX_TOPICS
        or not all(isinstance(t, str) and allowed_pattern(t) for t in topics)
    ):
        allowed = ", ".join(ALLOWED_TOPICS)
        return {
            "type": "error",
            "message": f"topics: a list of at most {MAX_TOPICS} patterns within {allowed}",
        }
    ids = message.get("monitor_ids")
    if ids is not None and (
        not isinstance(ids, list)
        or len(ids) > MAX_MONITOR_IDS
        or not all(isinstance(i, str) and len(i) <= 64 for i in ids)
    ):
        return {"type": "error", "message": f"monitor_ids: at most {MAX_MONITOR_IDS} ids"}
    since = message.get("since")
    if since is not None and _since(since) is None:
        return {"type": "error", "message": "since: an ISO 8601 time with a zone"}
    client.patterns = tuple(topics)
    client.monitor_ids = frozenset(ids) if ids is not None else None
    reply = {"type": "subscribed", "topics": topics, "monitor_ids": ids}
    found = _since(since)
    # What happened since the client's last look follows this reply (the
    # queue keeps the order); if the hub cannot know, the client reloads.
    if found is not None and not hub.replay(client, found):
        client.resync("events since then are no longer kept")
    return reply

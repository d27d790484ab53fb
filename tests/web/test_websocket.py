"""/ws against a real `infrawatch serve`: who may connect, what a client may
subscribe to, events within a second, and events across replicas (Redis)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import unavailable
from tests.live import admin_token, create_user, running_server

REDIS_URL = os.environ.get("INFRAWATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _next(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of this type (pings and other events are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return dict(message)


async def _event(ws: ClientConnection, topic: str, name: str, timeout: float) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = await _next(ws, "event", timeout)
            if message["topic"] == topic and message["payload"].get("name") == name:
                return message


def _create_server(base: str, token: str, name: str) -> None:
    response = httpx.post(
        f"{base}/api/v1/servers",
        json={"name": name},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


async def _closed_with(url: str, code: int, **options: Any) -> None:
    async with connect(url, **options) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_who_may_connect_and_subscribe(cli_env: dict[str, str]) -> None:
    token = admin_token(cli_env)
    with running_server(cli_env) as (base, output):
        url = base.replace("http://", "ws://") + "/ws"
        await _closed_with(url, 4401)
        await _closed_with(f"{url}?token=iw_not_a_token", 4401)
        async with httpx.AsyncClient(base_url=base) as http:
            login = await http.post(
                "/api/v1/auth/login",
                json={"username": "admin", "password": "a long enough password"},
            )
        session = login.json()["token"]
        cookie = {"Cookie": f"infrawatch_session={session}"}
        # A session cookie from a page on another site: refused at the handshake.
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={**cookie, "Origin": "http://evil.example"}):
                pass
        assert refused.value.response.status_code == 403
        host = base.removeprefix("http://")
        async with connect(url, additional_headers={**cookie, "Origin": f"http://{host}"}) as ws:
            hello = await _next(ws, "hello")
            assert hello["user"] == "admin" and hello["role"] == "admin"
            await ws.send(json.dumps({"type": "subscribe", "topics": ["*"]}))
            assert "topics" in (await _next(ws, "error"))["message"]
            await ws.send("not json")
            assert (await _next(ws, "error"))["message"] == "messages are JSON objects"
            await ws.send(json.dumps({"type": "ping"}))
            await _next(ws, "pong")

        # Scripts: the token in the first message, where no log sees it.
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            assert (await _next(ws, "hello"))["user"] == "admin"
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": "iw_not_a_token"}))
            with pytest.raises(ConnectionClosed) as closed:
                await _next(ws, "hello")
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401

        async with connect(f"{url}?token={token}") as ws:
            await _next(ws, "hello")
            await ws.send(json.dumps({"type": "subscribe", "topics": ["inventory.server.*"]}))
            await _next(ws, "subscribed")
            name = f"ws-{uuid.uuid4().hex[:8]}"
            await asyncio.to_thread(_create_server, base, token, name)
            event = await _event(ws, "inventory.server.created", name, timeout=1.0)
            assert event["payload"]["name"] == name

        # Logging out closes the session's sockets at their next check (the
        # check runs every minute; here the revoked cookie cannot connect).
        async with httpx.AsyncClient(base_url=base) as http:
            await http.post(
                "/api/v1/auth/logout",
                headers={**cookie, "X-CSRF-Token": login.json()["csrf_token"]},
            )
        await _closed_with(url, 4401, additional_headers=cookie)
    # The access log shows the request, not the token in its query.
    log = "\n".join(output)
    assert "/ws?token=***" in log, log[-2000:]
    assert token not in log and session not in log


async def test_events_reach_clients_of_every_replica(cli_env: dict[str, str]) -> None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception:
        unavailable(f"Redis at {REDIS_URL}")
    token = admin_token(cli_env)
    env = {**cli_env, "INFRAWATCH_REDIS_URL": REDIS_URL, "INFRAWATCH_JOBS_ENABLED": "false"}
    with running_server(env) as (first, _), running_server(env) as (second, _):
        url = second.replace("http://", "ws://") + f"/ws?token={token}"
        async with connect(url) as ws:
            await _next(ws, "hello")
            await ws.send(json.dumps({"type": "subscribe", "topics": ["inventory.*"]}))
            await _next(ws, "subscribed")
            name = f"replica-{uuid.uuid4().hex[:8]}"
            await asyncio.to_thread(_create_server, first, token, name)
            event = await _event(ws, "inventory.server.created", name, timeout=2.0)
            assert event["payload"]["name"] == name


async def test_a_session_that_must_enrol_two_factor_opens_no_live_stream(
    cli_env: dict[str, str],
) -> None:
    env = {**cli_env, "INFRAWATCH_TOTP_REQUIRED_ROLES": "operator"}
    assert create_user(env, "op", role="operator").returncode == 0
    with running_server(env) as (base, _):
        async with httpx.AsyncClient(timeout=10) as http:
            login = await http.post(
                f"{base}/api/v1/auth/login",
                json={"username": "op", "password": "a long enough password"},
            )
        assert login.status_code == 200 and login.json()["must_enrol_totp"] is True
        url = base.replace("http://", "ws://") + "/ws"
        await _closed_with(f"{url}?token={login.json()['token']}", 4401)

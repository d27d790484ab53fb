"""A local HTTP endpoint that records what notifications reach it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.monitoring.servers import serve_http


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Receiver:
    base: str = ""
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer 500 this many times
    delay: float = 0.0

    def app(self) -> web.Application:
        async def record(request: web.Request) -> web.Response:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.fail_next > 0:
                self.fail_next -= 1
                return web.Response(status=500, text="try later")
            self.received.append(
                Received(request.path, dict(request.headers), await request.read())
            )
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/{tail:.*}", record)
        return app

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serve_http(receiver.app()) as (_, port):
        receiver.base = f"127.0.0.1:{port}"
        yield receiver

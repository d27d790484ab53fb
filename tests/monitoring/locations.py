"""A target that answers by where the request comes from: each test
location's engine sends its checks from its own loopback address, so one
location's path can be made to fail while the others' work."""

from __future__ import annotations

from aiohttp import web

# location → the loopback address its checks leave from
SOURCES = {"eu-west": "127.0.0.2", "us-east": "127.0.0.3", "ap-south": "127.0.0.4"}


class PerSourceTarget:
    def __init__(self) -> None:
        self.failing: set[str] = set()  # locations whose requests get a 503
        self.seen: set[str] = set()  # source addresses that asked

    def fail(self, *locations: str) -> None:
        self.failing = {SOURCES[loc] for loc in locations}

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            source = request.remote or ""
            self.seen.add(source)
            if source in self.failing:
                return web.Response(status=503, text="the path from here is broken")
            return web.Response(text="fine")

        app = web.Application()
        app.router.add_get("/", handle)
        return app

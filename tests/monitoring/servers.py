"""Real servers on loopback for the probes to talk to."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.message
import dns.rcode
import dns.rrset
import trustme
from aiohttp import web


def target_app() -> web.Application:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "items": [1, 2, 3]})

    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=503, text="maintenance in progress")

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(float(_.query.get("s", "2")))
        return web.Response(text="finally")

    async def redirect(request: web.Request) -> web.Response:
        hops = int(request.match_info["n"])
        if hops == 0:
            raise web.HTTPFound("/ok")
        raise web.HTTPFound(f"/redirect/{hops - 1}")

    async def loop(_: web.Request) -> web.Response:
        raise web.HTTPFound("/loop-b")

    async def loop_b(_: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/loop-b", loop_b)
    return app


@contextlib.asynccontextmanager
async def serve_http(
    app: web.Application,
    ssl_context: ssl.SSLContext | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
) -> AsyncIterator[tuple[web.AppRunner, int]]:
    # Test servers stop at once: a handler left hanging on purpose (a hung
    # receiver) must not hold the test up for aiohttp's 60 s default.
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield runner, bound
    finally:
        await runner.cleanup()


class Certificates:
    """A private CA and leaf certificates in the states a monitor must tell apart."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = directory / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        now = datetime.now(UTC)
        self.valid = self.ca.issue_cert(
            "localhost", "127.0.0.1", not_after=now + timedelta(days=90)
        )
        self.expiring = self.ca.issue_cert(
            "localhost", "127.0.0.1", not_after=now + timedelta(days=3)
        )
        self.expired = self.ca.issue_cert(
            "localhost",
            "127.0.0.1",
            not_before=now - timedelta(days=30),
            not_after=now - timedelta(days=1),
        )
        self.wrong_host = self.ca.issue_cert(
            "elsewhere.example", not_after=now + timedelta(days=90)
        )

    def server_context(self, leaf: trustme.LeafCert) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        return context


class DnsServer(asyncio.DatagramProtocol):
    """Answers A and TXT for a few names, NXDOMAIN for the rest."""

    RECORDS = {
        ("app.test.", "A"): ["192.0.2.10", "192.0.2.11"],
        ("app.test.", "TXT"): ['"v=ok"'],
    }

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        kind = dns.rdatatype.to_text(question.rdtype)
        values = self.RECORDS.get((question.name.to_text(), kind))
        if values is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", kind, *values))
        self.transport.sendto(response.to_wire(), addr)  # type: ignore[attr-defined]


@contextlib.asynccontextmanager
async def serve_dns() -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(DnsServer, local_addr=("127.0.0.1", 0))
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def serve_banner(banner: bytes) -> AsyncIterator[int]:
    async def greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()

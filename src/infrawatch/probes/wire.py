"""One HTTP/1.1 request over one fresh connection, for monitors.

A check is a single request on a connection of its own (a monitor measures
the connect; it must not ride a pooled one), so a general client's machinery
(pools, cookies, streaming, middlewares, tracing callbacks) is cost without
use. This is the whole exchange on an asyncio Protocol and llhttp (the
parser behind httptools, which uvicorn already brings): at 50,000 monitors it
is the difference between the engine fitting on two cores or not (about a
third of aiohttp's client CPU per request; docs/benchmarks.md).

DNS still goes through aiohttp's resolver (aiodns where installed, with a
short cache); a name with several addresses connects through
aiohappyeyeballs, as aiohttp's own connector does.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import aiohappyeyeballs
import httptools
from aiohttp.resolver import DefaultResolver
from yarl import URL

from infrawatch.probes.certs import peer_der

MAX_BODY_BYTES = 1024 * 1024
DNS_CACHE_SECONDS = 10.0
USER_AGENT = "InfraWatch-Monitor/1"


class ResponseError(Exception):
    """The server answered with something that is not a valid HTTP response."""


class DnsError(Exception):
    """The name did not resolve; carries the resolver's error."""

    def __init__(self, host: str, error: OSError) -> None:
        super().__init__(f"{host}: {error.strerror or error}")
        self.error = error


@dataclass(slots=True)
class Exchange:
    """What one request saw: the response and when each phase finished."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    peer_ip: str | None = None
    peer_der: bytes | None = None
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def charset(self) -> str:
        _, _, params = self.headers.get("content-type", "").partition(";")
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.lower() == "charset" and value:
                return value.strip('"')
        return "utf-8"


class HttpClient:
    """Resolves names (cached for a few seconds: thousands of monitors on one
    host should not mean thousands of lookups) and runs exchanges."""

    def __init__(self, source_address: str | None = None) -> None:
        # A probe host with several addresses (or a location behind one):
        # connections leave from this one.
        self.source_address = source_address
        self._resolver: Any = None
        self._dns: dict[tuple[str, int], tuple[float, list[Any]]] = {}

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    async def addresses(self, host: str, port: int) -> list[Any]:
        """Address infos for aiohappyeyeballs, IP literals without a lookup."""
        family = _literal_family(host)
        if family is not None:
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
        now = time.monotonic()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        if self._resolver is None:
            self._resolver = DefaultResolver()
        try:
            found = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        except OSError as exc:
            raise DnsError(host, exc) from exc
        infos = [
            (
                entry["family"],
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (entry["host"], entry["port"]),
            )
            for entry in found
        ]
        if not infos:
            raise DnsError(host, OSError(f"{host} has no address"))
        if len(self._dns) > 10_000:
            self._dns.clear()
        self._dns[(host, port)] = (now + DNS_CACHE_SECONDS, infos)
        return infos

    async def exchange(
        self,
        url: URL,
        method: str,
        headers: dict[str, str] | None,
        body: str | None,
        tls: ssl.SSLContext | None,
    ) -> Exchange:
        """Send one request to `url` and read its response (at most
        MAX_BODY_BYTES of body, decoded from gzip or deflate)."""
        host, port = url.raw_host or "", url.port or 0
        request = encode_request(url, method, headers, body)
        loop = asyncio.get_running_loop()
        result = Exchange()
        marks = result.marks
        infos = await self.addresses(host, port)
        marks["dns"] = time.perf_counter()
        done: asyncio.Future[None] = loop.create_future()
        reader = _ResponseReader(method == "HEAD", result, done)
        transport = await _connect(loop, reader, infos, self.source_address)
        try:
            marks["connect"] = time.perf_counter()
            peer = transport.get_extra_info("peername")
            result.peer_ip = str(peer[0]) if peer else None
            if tls is not None:
                upgraded = await loop.start_tls(transport, reader, tls, server_hostname=host)
                if upgraded is None:  # the loop gave up on the handshake
                    raise ssl.SSLError("the TLS handshake did not complete")
                transport = upgraded
                marks["tls"] = time.perf_counter()
                result.peer_der = peer_der(transport.get_extra_info("ssl_object"))
            transport.write(request)
            await done
        finally:
            transport.close()
            # Nobody reads `done` after this (a failed handshake, a timeout):
            # settle it, or a late error would be logged as never retrieved.
            if not done.done():
                done.cancel()
            elif not done.cancelled():
                done.exception()
        marks["total"] = time.perf_counter()
        result.body = _decoded(result.headers.get("content-encoding", ""), result.body)
        return result


async def _connect(
    loop: asyncio.AbstractEventLoop,
    reader: _ResponseReader,
    infos: list[Any],
    source: str | None,
) -> asyncio.Transport:
    """A plain TCP connection. One address (the usual case, and every IP
    literal) goes straight to the loop, which connects in C; several go
    through happy eyeballs, as a browser would."""
    local = (source, 0) if source else None
    if len(infos) == 1:
        address = infos[0][4]
        transport, _ = await loop.create_connection(
            lambda: reader, address[0], address[1], local_addr=local
        )
        return transport
    local_infos = None
    if local is not None:
        family = _literal_family(local[0]) or socket.AF_INET
        local_infos = [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", local)]
        infos = [info for info in infos if info[0] == family] or infos
    sock = await aiohappyeyeballs.start_connection(infos, local_addr_infos=local_infos, loop=loop)
    try:
        transport, _ = await loop.create_connection(lambda: reader, sock=sock)
    except BaseException:
        sock.close()
        raise
    return transport


def _literal_family(host: str) -> int | None:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def encode_request(
    url: URL, method: str, headers: dict[str, str] | None, body: str | None
) -> bytes:
    """The request's bytes. Header names and values were validated by the
    monitor's schema; a line break is refused here too, since a request
    smuggled into another would be sent to a host the user named."""
    fields = {
        "host": ("Host", _host_header(url)),
        "user-agent": ("User-Agent", USER_AGENT),
        "accept": ("Accept", "*/*"),
        "accept-encoding": ("Accept-Encoding", "gzip, deflate"),
        "connection": ("Connection", "close"),
    }
    if url.raw_user is not None:
        credentials = f"{url.user or ''}:{url.password or ''}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode()
        fields["authorization"] = ("Authorization", authorization)
    payload = body.encode() if body is not None else None
    if payload is not None:
        fields["content-type"] = ("Content-Type", "text/plain; charset=utf-8")
    for name, value in (headers or {}).items():
        fields[name.lower()] = (name, value)
    if payload is not None:
        fields["content-length"] = ("Content-Length", str(len(payload)))
    target = url.raw_path_qs or "/"
    lines = [f"{method} {target} HTTP/1.1"]
    lines.extend(f"{name}: {value}" for name, value in fields.values())
    if any(c in line for line in lines for c in "\r\n\0"):
        raise ValueError("a line break in the URL or a header would split the request")
    head = "\r\n".join(lines)
    return (head + "\r\n\r\n").encode("latin-1", errors="strict") + (payload or b"")


def _host_header(url: URL) -> str:
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    return host if url.is_default_port() else f"{host}:{url.port}"


def _decoded(encoding: str, body: bytes) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity") or not body:
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # "deflate" is zlib-wrapped by the standard, raw in some servers.
        wbits = zlib.MAX_WBITS if body[0] & 0x0F == 8 else -zlib.MAX_WBITS
    else:
        raise ResponseError(f"the response is encoded with {encoding!r}, which was not asked for")
    try:
        return zlib.decompressobj(wbits).decompress(body, MAX_BODY_BYTES)
    except zlib.error as exc:
        raise ResponseError(f"the {encoding} body cannot be decompressed: {exc}") from None


class _ResponseReader(asyncio.Protocol):
    """Feeds what arrives to llhttp and resolves `done` when the response is
    complete (or the body cap is hit)."""

    def __init__(self, head_only: bool, result: Exchange, done: asyncio.Future[None]) -> None:
        self._head_only = head_only
        self._result = result
        self._done = done
        self._parser = httptools.HttpResponseParser(self)
        self._chunks: list[bytes] = []
        self._size = 0
        self._headers_complete = False
        self._length_known = False

    def data_received(self, data: bytes) -> None:
        if self._done.done():
            return
        self._result.marks.setdefault("first_byte", time.perf_counter())
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish()
        except httptools.HttpParserError as exc:
            self._fail(ResponseError(f"malformed response: {exc}"))

    def eof_received(self) -> bool:
        # A body with neither a length nor chunks ends when the server closes.
        if self._headers_complete and not self._length_known:
            self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            exc = ConnectionResetError(
                "the server closed the connection before the response was complete"
                if self._headers_complete or self._size
                else "the server closed the connection without a response"
            )
        self._fail(exc)

    # llhttp's callbacks

    def on_message_begin(self) -> None:
        self._result.headers = {}

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._result.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            return  # an interim response; the real one follows
        self._result.status = status
        self._headers_complete = True
        headers = self._result.headers
        self._length_known = (
            "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
        )
        if self._head_only or status in (204, 304):
            self._finish()

    def on_body(self, chunk: bytes) -> None:
        if self._done.done():
            return
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size >= MAX_BODY_BYTES:
            self._finish()  # enough to judge; the rest is not read

    def on_message_complete(self) -> None:
        if self._headers_complete:
            self._finish()

    def _finish(self) -> None:
        if not self._done.done():
            self._result.body = b"".join(self._chunks)[:MAX_BODY_BYTES]
            self._done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if not self._done.done():
            self._done.set_exception(exc)

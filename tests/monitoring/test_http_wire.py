"""The monitor's own HTTP/1.1 exchange against real sockets on loopback:
what it sends, and every way a response can end (length, chunks, close,
compression, interim responses, HEAD, truncation, garbage)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import socket
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiohttp import web
from yarl import URL

from infrawatch.probes import ProbeResult
from infrawatch.probes.certs import client_context
from infrawatch.probes.http import HttpClient, probe_http
from infrawatch.probes.wire import MAX_BODY_BYTES, encode_request
from tests.monitoring.servers import Certificates, serve_http, target_app


class RawServer:
    """Answers every connection with fixed bytes, after reading the request
    head (and its body, by Content-Length); keeps what it was sent."""

    def __init__(self, answer: bytes, close: bool = True) -> None:
        self.answer = answer
        self.close = close
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        self.requests.append(head + (await reader.readexactly(length) if length else b""))
        writer.write(self.answer)
        await writer.drain()
        if self.close:
            writer.close()
        else:
            await asyncio.sleep(30)  # holds the connection open, as a server may


@contextlib.asynccontextmanager
async def raw_server(answer: bytes, close: bool = True) -> AsyncIterator[RawServer]:
    server = RawServer(answer, close)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(listener.wait_closed(), 1)


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient() as http:
        yield http


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # no zlib header, as some servers send
    return packer.compress(data) + packer.flush()


# mtime=0: the same bytes in every process, or pytest-xdist's workers name the case differently.
GZIPPED = gzip.compress(b'{"a": 1}', mtime=0)
RAW_DEFLATED = _raw_deflate(b'{"a": 1}')


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = "\r\n".join([f"HTTP/1.1 {status}", *headers])
    return head.encode() + b"\r\n\r\n" + body


async def test_the_request_carries_method_path_host_headers_body_and_url_credentials(
    client: HttpClient,
) -> None:
    async with raw_server(response(b"ok", "Content-Length: 2")) as server:
        url = f"http://monitor:s3cret@127.0.0.1:{server.port}/health?full=1"
        settings = {
            "method": "POST",
            "headers": {"X-Probe": "yes", "user-agent": "Custom/2"},
            "body": '{"ping": true}',
        }
        result = await probe_http(client, url, settings, 5)
    assert result.ok, result.error
    sent = server.requests[0].decode()
    head, _, body = sent.partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == "POST /health?full=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "X-Probe: yes" in lines
    assert "user-agent: Custom/2" in lines and not any(
        line.startswith("User-Agent: InfraWatch") for line in lines
    )
    assert "Authorization: Basic bW9uaXRvcjpzM2NyZXQ=" in lines  # monitor:s3cret
    assert "Content-Length: 14" in lines and "Connection: close" in lines
    assert body == '{"ping": true}'


async def test_a_line_break_in_a_header_is_refused_before_anything_is_sent(
    client: HttpClient,
) -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_request(URL("http://127.0.0.1:1/"), "GET", {"X-Evil": "a\r\nHost: elsewhere"}, None)
    async with raw_server(response(b"", "Content-Length: 0")) as server:
        result = await probe_http(
            client, f"http://127.0.0.1:{server.port}/", {"headers": {"X": "a\nb"}}, 5
        )
    assert not result.ok and "invalid request" in (result.error or "")
    assert server.requests == []


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("content-length", response(b'{"a": 1}', "Content-Length: 8")),
        (
            "chunked",
            response(b'3\r\n{"a\r\n5\r\n": 1}\r\n0\r\n\r\n', "Transfer-Encoding: chunked"),
        ),
        ("until close", response(b'{"a": 1}', "Content-Type: application/json")),
        (
            "gzip",
            response(GZIPPED, "Content-Encoding: gzip", f"Content-Length: {len(GZIPPED)}"),
        ),
        ("deflate (zlib)", response(zlib.compress(b'{"a": 1}'), "Content-Encoding: deflate")),
        ("deflate (raw)", response(RAW_DEFLATED, "Content-Encoding: deflate")),
        (
            "after 100 Continue",
            b"HTTP/1.1 100 Continue\r\n\r\n" + response(b'{"a": 1}', "Content-Length: 8"),
        ),
    ],
)
async def test_every_way_a_body_can_be_framed_reads_the_same_document(
    client: HttpClient, name: str, answer: bytes
) -> None:
    async with raw_server(answer) as server:
        result = await probe_http(
            client,
            f"http://127.0.0.1:{server.port}/",
            {"json_path": "a", "json_expected": "1"},
            5,
        )
    assert result.ok, (name, result.error)
    assert result.status_code == 200


async def test_head_finishes_at_the_headers_even_with_a_length_and_an_open_connection(
    client: HttpClient,
) -> None:
    async with raw_server(response(b"", "Content-Length: 5000"), close=False) as server:
        result = await probe_http(client, f"http://127.0.0.1:{server.port}/", {"method": "HEAD"}, 3)
    assert result.ok, result.error
    assert server.requests[0].startswith(b"HEAD / HTTP/1.1")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (response(b"short", "Content-Length: 100"), "before the response was complete"),
        (b"", "without a response"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "malformed response"),
        (response(b"xyz", "Content-Encoding: br"), "'br'"),
        (response(b"not gzip", "Content-Encoding: gzip"), "cannot be decompressed"),
    ],
)
async def test_broken_responses_fail_with_a_message_that_says_how(
    client: HttpClient, answer: bytes, message: str
) -> None:
    async with raw_server(answer) as server:
        result = await probe_http(client, f"http://127.0.0.1:{server.port}/", {}, 5)
    assert not result.ok
    assert message in (result.error or ""), result.error


async def test_a_huge_body_is_read_up_to_the_cap_and_judged(client: HttpClient) -> None:
    body = b"a" * (3 * MAX_BODY_BYTES)
    async with raw_server(response(body, f"Content-Length: {len(body)}")) as server:
        result = await probe_http(client, f"http://127.0.0.1:{server.port}/", {"keyword": "a"}, 5)
    assert result.ok, result.error
    assert len(result.facts["BODY"]) == MAX_BODY_BYTES


async def test_the_declared_charset_decodes_the_body(client: HttpClient) -> None:
    body = "Grüße".encode("latin-1")
    answer = response(body, "Content-Type: text/plain; charset=ISO-8859-1", "Content-Length: 5")
    async with raw_server(answer) as server:
        result = await probe_http(client, f"http://127.0.0.1:{server.port}/", {"keyword": "ü"}, 5)
    assert result.ok, result.error
    assert result.facts["BODY"] == "Grüße"


async def test_a_redirect_away_from_http_is_named(client: HttpClient) -> None:
    answer = response(b"", "Location: ftp://127.0.0.1/file", "Content-Length: 0", status="302 X")
    async with raw_server(answer) as server:
        result = await probe_http(client, f"http://127.0.0.1:{server.port}/", {}, 5)
    assert not result.ok and "not an http(s) URL" in (result.error or "")


async def test_ipv6_loopback_gets_a_bracketed_host_header(client: HttpClient) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not configured on this machine")
    seen: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        seen.append(request.headers["Host"])
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", echo)
    async with serve_http(app, host="::1") as (_, port):
        result = await probe_http(client, f"http://[::1]:{port}/", {}, 5)
    assert result.ok, result.error
    assert result.facts["IP"] == "::1"
    assert seen == [f"[::1]:{port}"]


async def test_names_resolve_once_per_cache_period(
    client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await client.addresses("localhost", 80)
    assert first and all(info[4][1] == 80 for info in first)
    lookups: list[str] = []

    async def counted(host: str, port: int, family: int) -> list[dict[str, object]]:
        lookups.append(host)
        return []

    monkeypatch.setattr(client._resolver, "resolve", counted)
    assert await client.addresses("localhost", 80) == first  # from the cache
    assert lookups == []
    assert (await client.addresses("127.0.0.1", 80))[0][4] == ("127.0.0.1", 80)
    assert lookups == []  # a literal needs no lookup


def test_on_uvloop_as_workers_run_it_tls_succeeds_fails_and_leaks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certs = Certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_file))
    client_context.cache_clear()
    unhandled: list[dict[str, Any]] = []

    async def scenario() -> list[ProbeResult]:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unhandled.append(ctx))
        results = []
        async with HttpClient() as http:
            for leaf in (certs.valid, certs.wrong_host):
                async with serve_http(target_app(), certs.server_context(leaf)) as (_, port):
                    results.append(await probe_http(http, f"https://localhost:{port}/ok", {}, 5))
        gc.collect()  # a failed future nobody read would be reported now
        await asyncio.sleep(0.1)
        return results

    try:
        good, bad = uvloop.run(scenario())
    finally:
        client_context.cache_clear()
    assert good.ok, good.error
    assert {"connect", "tls", "first_byte"} <= set(good.details["timings_ms"])
    assert not bad.ok and "certificate verification failed" in (bad.error or "")
    assert unhandled == []


async def test_a_name_without_addresses_is_a_dns_failure(
    client: HttpClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await client.addresses("localhost", 80)  # makes the resolver

    async def nothing(host: str, port: int, family: int) -> list[dict[str, object]]:
        return []

    monkeypatch.setattr(client._resolver, "resolve", nothing)
    result = await probe_http(client, "http://no-addresses.test/", {}, 5)
    assert not result.ok and (result.error or "").startswith("DNS failure")

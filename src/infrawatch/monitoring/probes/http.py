"""The HTTP probe: one fresh connection per check (a monitor measures the
connect, it must not ride a pooled one), redirects followed hop by hop,
timings per phase, the certificate read on the way."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohappyeyeballs
import aiohttp
from aiohttp.abc import ResolveResult
from yarl import URL

from infrawatch.monitoring.conditions import ConditionError, parse_path, resolve_path
from infrawatch.monitoring.probes import ProbeResult, Stopwatch, describe_os_error
from infrawatch.monitoring.probes.certs import certificate_facts, client_context, peer_der

MAX_BODY_BYTES = 1024 * 1024


@dataclass
class _Trace:
    marks: dict[str, float] = field(default_factory=dict)
    peer_der: bytes | None = None
    peer_ip: str | None = None


# What the connection of the check running in this task saw. The connector
# below runs inside the caller's task, so it can write here without aiohttp's
# tracing machinery (several callbacks per request), and it sees the TLS
# session before aiohttp releases a connection whose body was small.
_trace: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar(
    "http_probe_trace", default=None
)


class TimedConnector(aiohttp.TCPConnector):
    """Marks when DNS, TCP and TLS finish. Leans on two private methods of
    aiohttp's connector (checked by the probe's tests on upgrade)."""

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        result = await super()._resolve_host(host, port, traces)
        _mark("dns")
        return result

    async def _wrap_create_connection(
        self,
        *args: Any,
        addr_infos: list[Any],
        req: Any,
        timeout: aiohttp.ClientTimeout,
        client_error: type[Exception] = aiohttp.ClientConnectorError,
        **kwargs: Any,
    ) -> Any:
        try:
            async with asyncio.timeout(timeout.sock_connect):
                sock = await aiohappyeyeballs.start_connection(
                    addr_infos=addr_infos, loop=self._loop
                )
                _mark("connect")
                connection = await self._loop.create_connection(*args, **kwargs, sock=sock)
                trace = _trace.get()
                if trace is not None:
                    transport = connection[0]
                    peer = transport.get_extra_info("peername")
                    trace.peer_ip = str(peer[0]) if peer else None
                    if kwargs.get("ssl"):
                        trace.marks.setdefault("tls", time.perf_counter())
                        trace.peer_der = peer_der(transport.get_extra_info("ssl_object"))
                return connection
        except aiohttp.client_exceptions.cert_errors as exc:
            raise aiohttp.ClientConnectorCertificateError(req.connection_key, exc) from exc
        except aiohttp.client_exceptions.ssl_errors as exc:
            raise aiohttp.ClientConnectorSSLError(req.connection_key, exc) from exc
        except OSError as exc:
            if exc.errno is None and isinstance(exc, asyncio.TimeoutError):
                raise
            raise client_error(req.connection_key, exc) from exc


def _mark(phase: str) -> None:
    trace = _trace.get()
    if trace is not None:
        trace.marks.setdefault(phase, time.perf_counter())


def make_session(limit: int = 0) -> aiohttp.ClientSession:
    connector = TimedConnector(force_close=True, limit=limit, ttl_dns_cache=10)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
        headers={"User-Agent": "InfraWatch-Monitor/1"},
    )


@functools.lru_cache(maxsize=4096)
def _ranges(accepted: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    ranges = []
    for spec in accepted:
        low, _, high = spec.partition("-")
        ranges.append((int(low), int(high or low)))
    return tuple(ranges)


def status_accepted(code: int, accepted: list[str]) -> bool:
    return any(low <= code <= high for low, high in _ranges(tuple(accepted)))


# Parsed once per target, not once per check (yarl URLs are immutable).
parse_url = functools.lru_cache(maxsize=200_000)(URL)


async def probe_http(
    session: aiohttp.ClientSession, target: str, settings: dict[str, Any], timeout: float
) -> ProbeResult:
    watch = Stopwatch()
    hops: list[dict[str, Any]] = []
    result = ProbeResult(ok=True, latency_ms=0.0, details={"hops": hops})
    try:
        async with asyncio.timeout(timeout):
            await _follow(session, parse_url(target), settings, result, hops, watch)
    except TimeoutError:
        result.fail(f"timed out after {timeout:g} s")
    except aiohttp.ClientConnectorCertificateError as exc:
        result.fail(f"certificate verification failed: {exc.certificate_error}")
    except aiohttp.ClientSSLError as exc:
        result.fail(f"TLS error: {exc}")
    except aiohttp.ClientConnectorDNSError as exc:
        result.fail(f"DNS failure: {exc.os_error}")
    except aiohttp.ClientConnectorError as exc:
        result.fail(describe_os_error(exc.os_error))
    except (aiohttp.ClientError, ValueError) as exc:
        result.fail(f"{type(exc).__name__}: {exc}")
    result.latency_ms = watch.ms()
    result.facts.setdefault("CONNECTED", result.status_code is not None)
    result.facts["RESPONSE_TIME"] = result.latency_ms
    if len(hops) <= 1:  # no redirect: the hop list would only repeat the URL
        result.details.pop("hops", None)
    return result


async def _follow(
    session: aiohttp.ClientSession,
    url: URL,
    settings: dict[str, Any],
    result: ProbeResult,
    hops: list[dict[str, Any]],
    watch: Stopwatch,
) -> None:
    follow = settings.get("follow_redirects", True)
    max_redirects = int(settings.get("max_redirects", 10))
    method = settings.get("method", "GET")
    seen = {str(url)}
    while True:
        response_status, location = await _one_request(session, url, method, settings, result)
        hops.append({"url": str(url), "status": response_status, "at_ms": watch.ms()})
        if not (follow and location and 300 <= response_status < 400):
            break
        next_url = url.join(URL(location))
        if str(next_url) in seen:
            result.fail(f"redirect loop: {next_url} was already visited")
            return
        if len(hops) > max_redirects:
            result.fail(f"too many redirects (more than {max_redirects})")
            return
        seen.add(str(next_url))
        url = next_url
        if response_status == 303 or (response_status in (301, 302) and method == "POST"):
            method = "GET"  # as browsers do
    _judge(result, settings)


async def _one_request(
    session: aiohttp.ClientSession,
    url: URL,
    method: str,
    settings: dict[str, Any],
    result: ProbeResult,
) -> tuple[int, str | None]:
    verify = settings.get("verify_tls", True)
    trace = _Trace()
    _trace.set(trace)
    marks = trace.marks
    started = time.perf_counter()
    async with session.request(
        method,
        url,
        headers=settings.get("headers") or None,
        data=settings.get("body"),
        allow_redirects=False,
        ssl=client_context(bool(verify)) if url.scheme == "https" else False,
    ) as response:
        marks["first_byte"] = time.perf_counter()
        if trace.peer_der is not None:
            _read_certificate(trace.peer_der, result)
        body = await response.content.read(MAX_BODY_BYTES)
        marks["total"] = time.perf_counter()
        result.status_code = response.status
        result.facts["STATUS"] = response.status
        result.facts["IP"] = trace.peer_ip
        result.facts["BODY"] = body.decode(response.charset or "utf-8", errors="replace")
        result.details["timings_ms"] = _timings(started, marks)
        return response.status, response.headers.get("Location")


def _read_certificate(der: bytes, result: ProbeResult) -> None:
    facts = certificate_facts(der)
    result.details["certificate"] = facts
    result.facts["CERTIFICATE_EXPIRATION"] = facts["expires_in_ms"]

    result.cert_expires_at = datetime.fromisoformat(facts["not_after"])


def _timings(started: float, marks: dict[str, float]) -> dict[str, float]:
    timings: dict[str, float] = {}
    previous = started
    for phase in ("dns", "connect", "tls", "first_byte", "total"):
        if phase in marks:
            point = marks[phase]
            timings[phase] = round((point - (started if phase == "total" else previous)) * 1000, 3)
            if phase != "total":
                previous = point
    return timings


def _judge(result: ProbeResult, settings: dict[str, Any]) -> None:
    code = result.status_code
    accepted = settings.get("accepted_status_codes") or ["200-399"]
    if code is not None and not status_accepted(code, accepted):
        result.fail(f"status {code} is not one of {', '.join(accepted)}")
    body = str(result.facts.get("BODY", ""))
    keyword = settings.get("keyword")
    if keyword and keyword not in body:
        result.fail(f"keyword {keyword!r} not found in the response")
    absent = settings.get("keyword_absent")
    if absent and absent in body:
        result.fail(f"keyword {absent!r} found in the response, it should be absent")
    path = settings.get("json_path")
    if path:
        _check_json_path(result, body, path, settings.get("json_expected"))


def _check_json_path(result: ProbeResult, body: str, path: str, expected: Any) -> None:

    try:
        document = json.loads(body)
    except ValueError:
        result.fail("the response is not JSON, so the JSON path cannot be checked")
        return
    try:
        parts = parse_path(path if path.startswith((".", "[")) else "." + path, path)
    except ConditionError:
        result.fail(f"JSON path {path!r} cannot be read")
        return
    found, value = resolve_path(document, parts)
    if not found:
        result.fail(f"JSON path {path} not found in the response")
    elif expected is not None and str(value) != str(expected) and value != expected:
        result.fail(f"JSON path {path} is {json.dumps(value)[:100]}, expected {expected!r}")

"""The HTTP probe: one fresh connection per check (probes/wire.py),
redirects followed hop by hop, timings per phase, the certificate read on
the way, then the response judged against the monitor's settings."""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
from datetime import datetime
from typing import Any

from yarl import URL

from infrawatch.probes import ProbeResult, Stopwatch, describe_os_error
from infrawatch.probes.certs import certificate_facts, client_context
from infrawatch.probes.paths import ConditionError, json_path_parts, resolve_path
from infrawatch.probes.wire import DnsError, HttpClient, ResponseError

__all__ = ["HttpClient", "probe_http", "status_accepted"]


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
    client: HttpClient, target: str, settings: dict[str, Any], timeout: float
) -> ProbeResult:
    watch = Stopwatch()
    hops: list[dict[str, Any]] = []
    result = ProbeResult(ok=True, latency_ms=0.0, details={"hops": hops})
    try:
        async with asyncio.timeout(timeout):
            await _follow(client, parse_url(target), settings, result, hops, watch)
    except TimeoutError:
        result.fail(f"timed out after {timeout:g} s")
    except ssl.SSLCertVerificationError as exc:
        result.fail(f"certificate verification failed: {exc}")
    except ssl.SSLError as exc:
        result.fail(f"TLS error: {exc}")
    except DnsError as exc:
        result.fail(f"DNS failure: {exc}")
    except OSError as exc:
        result.fail(describe_os_error(exc))
    except ResponseError as exc:
        result.fail(str(exc))
    except ValueError as exc:
        result.fail(f"invalid request: {exc}")
    result.latency_ms = watch.ms()
    result.facts.setdefault("CONNECTED", result.status_code is not None)
    result.facts["RESPONSE_TIME"] = result.latency_ms
    if len(hops) <= 1:  # no redirect: the hop list would only repeat the URL
        result.details.pop("hops", None)
    return result


async def _follow(
    client: HttpClient,
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
        response_status, location = await _one_request(client, url, method, settings, result)
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
        if next_url.scheme not in ("http", "https"):
            result.fail(f"redirect to {next_url}, which is not an http(s) URL")
            return
        seen.add(str(next_url))
        url = next_url
        if response_status == 303 or (response_status in (301, 302) and method == "POST"):
            method = "GET"  # as browsers do
    _judge(result, settings)


async def _one_request(
    client: HttpClient,
    url: URL,
    method: str,
    settings: dict[str, Any],
    result: ProbeResult,
) -> tuple[int, str | None]:
    verify = bool(settings.get("verify_tls", True))
    started = time.perf_counter()
    seen = await client.exchange(
        url,
        method,
        settings.get("headers"),
        settings.get("body"),
        client_context(verify) if url.scheme == "https" else None,
    )
    if seen.peer_der is not None:
        _read_certificate(seen.peer_der, result)
    result.status_code = seen.status
    result.facts["STATUS"] = seen.status
    result.facts["IP"] = seen.peer_ip
    result.facts["BODY"] = _text(seen.body, seen.charset)
    result.details["timings_ms"] = _timings(started, seen.marks)
    return seen.status, seen.headers.get("location")


def _text(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


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
        parts = json_path_parts(path)
    except ConditionError:
        result.fail(f"JSON path {path!r} cannot be read")
        return
    found, value = resolve_path(document, parts)
    if not found:
        result.fail(f"JSON path {path} not found in the response")
    elif expected is not None and str(value) != str(expected) and value != expected:
        result.fail(f"JSON path {path} is {json.dumps(value)[:100]}, expected {expected!r}")

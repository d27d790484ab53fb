"""DNS: one query to a chosen (or the system's first) resolver, so the
answer's rcode is seen as it is, not folded into an exception."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver

from infrawatch.probes import ProbeResult, Stopwatch, split_host_port

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "PTR", "CAA")


def system_resolver() -> str:
    try:
        return str(dns.resolver.Resolver().nameservers[0])
    except (dns.resolver.NoResolverConfiguration, IndexError):
        return "127.0.0.1"


async def probe_dns(target: str, settings: dict[str, Any], timeout: float) -> ProbeResult:
    record_type = settings.get("record_type", "A")
    server, port = split_host_port(settings.get("resolver") or system_resolver(), 53)
    query = dns.message.make_query(target, dns.rdatatype.from_text(record_type))
    watch = Stopwatch()
    try:
        async with asyncio.timeout(timeout):
            if settings.get("protocol") == "tcp":
                response = await dns.asyncquery.tcp(query, server, port=port)
            else:
                response = await dns.asyncquery.udp(query, server, port=port)
    except (TimeoutError, dns.exception.Timeout):
        return _failed(f"no answer from {server}:{port} within {timeout:g} s", watch)
    except (OSError, dns.exception.DNSException) as exc:
        return _failed(f"DNS query failed: {exc}", watch)
    latency = watch.ms()
    rcode = dns.rcode.to_text(response.rcode())
    wanted = query.question[0].rdtype
    values = sorted(_value(i) for rrset in response.answer if rrset.rdtype == wanted for i in rrset)
    result = ProbeResult(
        ok=True,
        latency_ms=latency,
        facts={"DNS_RCODE": rcode, "RESPONSE_TIME": latency, "CONNECTED": True, "BODY": values},
        details={"rcode": rcode, "answers": values, "resolver": f"{server}:{port}"},
    )
    expected = settings.get("expected") or []
    expected_rcode = settings.get("expected_rcode", "NOERROR")
    if rcode != expected_rcode:
        result.fail(f"{target} {record_type}: {rcode} (expected {expected_rcode})")
    elif expected and not set(expected) <= set(values):
        missing = sorted(set(expected) - set(values))
        result.fail(f"{target} {record_type}: expected {missing} among {values}")
    return result


def _value(item: Any) -> str:
    text: str = item.to_text()
    return text.strip('"') if item.rdtype == dns.rdatatype.TXT else text.rstrip(".")


def _failed(message: str, watch: Stopwatch) -> ProbeResult:
    return ProbeResult.failed(message, watch.ms())

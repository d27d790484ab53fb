"""The scan job: addresses in chunks, each chunk's hosts written and a
checkpoint saved, so a scan whose worker died resumes where it was."""

from __future__ import annotations

import asyncio
import ipaddress
import uuid
from typing import Any

from infrawatch.discovery import repository
from infrawatch.discovery.scanner import Finding, ScanLimits, Scanner, addresses_of
from infrawatch.jobs.context import JobContext
from infrawatch.jobs.registry import JobType, PermanentError

CHUNK = 32


async def scan(ctx: JobContext) -> dict[str, Any]:
    scan_id = uuid.UUID(ctx.arguments["scan_id"])
    async with ctx.db.unit_of_work(write=False) as session:
        row = await repository.get_scan(session, scan_id)
        if row is None:
            raise PermanentError(f"scan {scan_id} no longer exists")
        cidr, ports = row.cidr, list(row.ports)
        limits = ScanLimits(row.concurrency, row.rate_per_second, row.timeout)
    addresses = list(addresses_of(ipaddress.ip_network(cidr)))
    start = int((ctx.checkpoint or {}).get("next_index", 0))
    found = int((ctx.checkpoint or {}).get("found", 0))
    scanner = Scanner(limits)
    if start:
        await ctx.log(f"resuming at address {start + 1} of {len(addresses)}")
    for index in range(start, len(addresses), CHUNK):
        chunk = addresses[index : index + CHUNK]
        findings = [
            f
            for f in await asyncio.gather(*(scanner.host(a, ports) for a in chunk))
            if f is not None
        ]
        await _store(ctx, scan_id, findings)
        found += len(findings)
        done = index + len(chunk)
        for finding in findings:
            await ctx.log(
                _describe(finding), {"address": finding.address, "ports": finding.open_ports}
            )
        await ctx.save_checkpoint({"next_index": done, "found": found})
        await ctx.progress(
            100 * done / len(addresses),
            f"{done} of {len(addresses)} addresses, {found} host(s) found",
            force=done == len(addresses),
        )
    return {
        "cidr": cidr,
        "addresses": len(addresses),
        "ports": ports,
        "hosts_found": found,
        "probes": scanner.probes,
    }


async def _store(ctx: JobContext, scan_id: uuid.UUID, findings: list[Finding]) -> None:
    if not findings:
        return
    async with ctx.db.unit_of_work() as session:
        # A resumed chunk may have been written before the crash.
        known = await repository.known_addresses(session, scan_id)
        await repository.add_hosts(
            session,
            [
                {
                    "scan_id": scan_id,
                    "address": f.address,
                    "open_ports": f.open_ports,
                    "reverse_dns": f.reverse_dns,
                    "ssh_banner": f.ssh_banner,
                    "ssh_port": f.ssh_port,
                    "http_banner": f.http_banner,
                    "os_guess": f.os_guess,
                    "latency_ms": f.latency_ms,
                }
                for f in findings
                if f.address not in known
            ],
        )


def _describe(finding: Finding) -> str:
    parts = [f"{finding.address}: ports {', '.join(map(str, finding.open_ports))}"]
    if finding.reverse_dns:
        parts.append(finding.reverse_dns)
    if finding.os_guess:
        parts.append(finding.os_guess)
    return "; ".join(parts)


SCAN = JobType(
    "discovery.scan",
    scan,
    concurrency=2,
    max_attempts=3,
    backoff_seconds=5,
    timeout_seconds=6 * 3600,
)
JOB_TYPES = (SCAN,)

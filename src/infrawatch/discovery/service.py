"""Discovery: start a scan (guardrails first), read what it found, import
chosen hosts as servers."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.audit import service as audit
from infrawatch.core.clock import utcnow
from infrawatch.core.config import Settings
from infrawatch.core.context import OperationContext
from infrawatch.core.errors import InvalidInput, NotFound
from infrawatch.discovery import repository
from infrawatch.discovery.models import DiscoveryScan
from infrawatch.discovery.scanner import addresses_of
from infrawatch.discovery.schemas import HostOut, ImportRequest, ImportResult, ScanCreate, ScanOut
from infrawatch.inventory import service as inventory
from infrawatch.jobs import service as jobs
from infrawatch.jobs.registry import JobType

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def check_range(cidr: str, settings: Settings) -> Network:
    """The guardrails: a real range, inside the allow-list, not too large."""
    loc = ("body", "cidr")
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise InvalidInput(
            "not a network in CIDR notation (e.g. 192.168.1.0/24)", loc=loc
        ) from None
    allowed = [ipaddress.ip_network(n, strict=False) for n in settings.discovery_allowed_networks]
    if not any(
        network.version == a.version and network.subnet_of(a)  # type: ignore[arg-type]
        for a in allowed
    ):
        raise InvalidInput(
            f"{network} is outside the networks discovery may scan "
            f"({', '.join(settings.discovery_allowed_networks) or 'none'}; "
            "INFRAWATCH_DISCOVERY_ALLOWED_NETWORKS)",
            loc=loc,
        )
    if network.num_addresses > settings.discovery_max_addresses:
        raise InvalidInput(
            f"{network} has {network.num_addresses} addresses; the limit is "
            f"{settings.discovery_max_addresses} (INFRAWATCH_DISCOVERY_MAX_ADDRESSES)",
            loc=loc,
        )
    return network


async def create_scan(
    session: AsyncSession,
    ctx: OperationContext,
    body: ScanCreate,
    settings: Settings,
    job_type: JobType,
    idempotency_key: str | None,
) -> ScanOut:
    network = check_range(body.cidr, settings)
    ports = sorted(set(body.ports))
    request = jobs.request_fingerprint(body)
    existing = await jobs.replayed(session, idempotency_key, job_type, request)
    if existing is not None:
        return await get_scan(session, uuid.UUID(existing.arguments["scan_id"]))
    scan = DiscoveryScan(
        id=uuid.uuid4(),
        cidr=str(network),
        ports=ports,
        concurrency=body.concurrency,
        rate_per_second=body.rate_per_second,
        timeout=body.timeout,
        tags=dict(body.tags),
        addresses=sum(1 for _ in addresses_of(network)),
        created_by=ctx.actor.username,
        created_at=utcnow(),
    )
    await repository.add(session, scan)
    job, _ = await jobs.enqueue(
        session,
        ctx,
        job_type,
        {"scan_id": str(scan.id), "request": request},
        idempotency_key=idempotency_key,
        subject=("discovery_scan", str(scan.id)),
    )
    scan.job_id = job.id
    await audit.record(
        session,
        ctx,
        audit.Change(
            "discovery.scan", "discovery_scan", scan.id, after={"cidr": scan.cidr, "ports": ports}
        ),
    )
    await session.flush()
    return await _scan_out(session, scan)


async def require_scan(session: AsyncSession, scan_id: uuid.UUID) -> DiscoveryScan:
    scan = await repository.get_scan(session, scan_id)
    if scan is None:
        raise NotFound(f"scan {scan_id} not found")
    return scan


async def _scan_out(session: AsyncSession, scan: DiscoveryScan) -> ScanOut:
    return (await _scans_out(session, [scan]))[0]


async def _scans_out(session: AsyncSession, scans: list[DiscoveryScan]) -> list[ScanOut]:
    counts = await repository.host_counts(session, [s.id for s in scans])
    scan_jobs = await jobs.jobs_by_ids(session, [s.job_id for s in scans if s.job_id])
    out = []
    for scan in scans:
        job = scan_jobs.get(scan.job_id) if scan.job_id else None
        out.append(
            ScanOut(
                id=scan.id,
                cidr=scan.cidr,
                ports=list(scan.ports),
                concurrency=scan.concurrency,
                rate_per_second=scan.rate_per_second,
                timeout=scan.timeout,
                tags=dict(scan.tags),
                job_id=scan.job_id,
                status=job.status if job else "unknown",
                progress=job.progress if job else 0,
                progress_message=job.progress_message if job else None,
                addresses=scan.addresses,
                hosts_found=counts.get(scan.id, 0),
                created_by=scan.created_by,
                created_at=scan.created_at,
                finished_at=job.finished_at if job else None,
            )
        )
    return out


async def get_scan(session: AsyncSession, scan_id: uuid.UUID) -> ScanOut:
    return await _scan_out(session, await require_scan(session, scan_id))


async def list_scans(session: AsyncSession, limit: int) -> list[ScanOut]:
    return await _scans_out(session, await repository.list_scans(session, limit))


async def scan_hosts(session: AsyncSession, scan_id: uuid.UUID) -> list[HostOut]:
    await require_scan(session, scan_id)
    rows = await repository.hosts(session, scan_id)
    inventory_at = await inventory.live_servers_at(session, [h.address for h in rows])
    return [
        HostOut(
            address=h.address,
            open_ports=list(h.open_ports),
            reverse_dns=h.reverse_dns,
            ssh_banner=h.ssh_banner,
            http_banner=h.http_banner,
            os_guess=h.os_guess,
            latency_ms=h.latency_ms,
            server_id=inventory_at[h.address][0] if h.address in inventory_at else None,
            server_name=inventory_at[h.address][1] if h.address in inventory_at else None,
            imported_server_id=h.imported_server_id,
        )
        for h in rows
    ]


def _server_name(reverse_dns: str | None, address: str) -> str:
    if reverse_dns and reverse_dns not in ("localhost", address):
        return reverse_dns[:128]
    return "host-" + address.replace(".", "-").replace(":", "-")


async def import_hosts(
    session: AsyncSession, ctx: OperationContext, scan_id: uuid.UUID, body: ImportRequest
) -> ImportResult:
    """All or nothing for the hosts that can be imported; the others are
    listed with the reason they were skipped."""
    scan = await require_scan(session, scan_id)
    found = {h.address: h for h in await repository.hosts(session, scan_id)}
    wanted: list[str] = []
    for raw in dict.fromkeys(body.addresses):
        try:
            wanted.append(ipaddress.ip_address(raw.strip()).compressed)
        except ValueError:
            raise InvalidInput(f"{raw!r} is not an IP address", loc=("body", "addresses")) from None
    in_inventory = await inventory.live_servers_at(session, wanted)
    skipped: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for address in wanted:
        host = found.get(address)
        if host is None:
            skipped.append({"address": address, "reason": "this scan did not find it"})
        elif address in in_inventory:
            skipped.append(
                {
                    "address": address,
                    "reason": f"already in the inventory as {in_inventory[address][1]}",
                }
            )
        else:
            names[address] = _server_name(host.reverse_dns, address)
    # Two hosts with the same reverse name, or a name already taken, fall
    # back to the address-based name so nothing collides.
    taken = await inventory.live_names_taken(session, list(names.values()))
    seen: set[str] = set()
    for address, name in names.items():
        if name in taken or name in seen:
            name = _server_name(None, address)
        seen.add(name)
        host = found[address]
        rows.append(
            {
                "name": name,
                "hostname": host.reverse_dns
                if host.reverse_dns and "." in host.reverse_dns
                else None,
                "ip_address": address,
                "ssh_port": host.ssh_port or 22,
                "os": host.os_guess,
                "lifecycle": "active",
                "tags": {**scan.tags, **body.tags, "discovered-by": f"scan-{str(scan.id)[:8]}"},
                "attributes": {
                    "discovery": {
                        "scan_id": str(scan.id),
                        "open_ports": list(host.open_ports),
                        "ssh_banner": host.ssh_banner,
                        "http_banner": host.http_banner,
                    }
                },
            }
        )
    created = await inventory.create_servers(session, ctx, rows) if rows else []
    for row, server_id in zip(rows, created, strict=True):
        found[row["ip_address"]].imported_server_id = server_id
    await session.flush()
    return ImportResult(created=created, skipped=skipped)

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from infrawatch.core.validation import NullMeansUnset
from infrawatch.inventory.schemas import Port, Tags, normalize_hostname

Timeout = Annotated[float, Field(gt=0, le=30)]


def _host(value: str) -> str:
    """An IP address or an RFC 1123 hostname, nothing else: what reaches the
    resolver and the socket layer must be something they can take."""
    candidate = value.strip()
    try:
        return ipaddress.ip_address(candidate.strip("[]")).compressed
    except ValueError:
        pass
    try:
        return normalize_hostname(candidate)
    except ValueError:
        raise ValueError("must be an IP address or a hostname (RFC 1123)") from None


Host = Annotated[str, StringConstraints(min_length=1, max_length=253), AfterValidator(_host)]


class Strict(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")


# --- validation tools -------------------------------------------------------------


class ValueRequest(Strict):
    value: Annotated[str, StringConstraints(min_length=1, max_length=253)]


class HostnameRequest(ValueRequest):
    resolve: bool = True
    timeout: Timeout = 5.0


class TcpRequest(Strict):
    host: Host
    port: Port
    timeout: Timeout = 5.0


def _http_url(value: str) -> str:
    if not value.lower().startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class HttpRequest(Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_http_url)]
    method: Literal["GET", "HEAD"] = "GET"
    follow_redirects: bool = True
    verify_tls: bool = True
    timeout: Timeout = 10.0


class TlsRequest(Strict):
    host: Host
    port: Port = 443
    server_name: Annotated[str, AfterValidator(normalize_hostname)] | None = None
    timeout: Timeout = 10.0


class IpResult(BaseModel):
    value: str
    valid: bool
    version: int | None = None
    normalized: str | None = None
    # private, public, loopback, link_local, multicast, reserved, unspecified
    classification: str | None = None
    reverse_pointer: str | None = None
    error: str | None = None


class HostnameResult(BaseModel):
    value: str
    valid: bool
    error: str | None = None
    a: list[str] = Field(default_factory=list)
    aaaa: list[str] = Field(default_factory=list)
    resolution_error: str | None = None
    latency_ms: float | None = None


class ProbeOut(BaseModel):
    """The shape every network tool answers in: ok or a named error, the
    latency, and what the probe learned (timings, certificate, hops)."""

    ok: bool
    latency_ms: float
    error: str | None
    status_code: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)


# --- scans ------------------------------------------------------------------------


class ScanCreate(Strict):
    cidr: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    ports: Annotated[list[Port], Field(min_length=1, max_length=100)] = Field(
        default_factory=lambda: [22, 80, 443]
    )
    # Probes in flight at once, and new probes a second.
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 100
    rate_per_second: Annotated[int, Field(ge=1, le=10_000)] = 500
    timeout: Annotated[float, Field(gt=0, le=10)] = 1.0
    # Given to every server imported from this scan.
    tags: Tags = Field(default_factory=dict)


class ScanOut(BaseModel):
    id: uuid.UUID
    cidr: str
    ports: list[int]
    concurrency: int
    rate_per_second: int
    timeout: float
    tags: dict[str, str]
    job_id: uuid.UUID | None
    status: str
    progress: int
    progress_message: str | None
    addresses: int
    hosts_found: int
    created_by: str | None
    created_at: datetime
    finished_at: datetime | None


class HostOut(BaseModel):
    address: str
    open_ports: list[int]
    reverse_dns: str | None
    ssh_banner: str | None
    http_banner: str | None
    os_guess: str | None
    latency_ms: float | None
    # The live server with this address, if the inventory has one.
    server_id: uuid.UUID | None
    server_name: str | None
    imported_server_id: uuid.UUID | None


class ImportRequest(Strict):
    addresses: Annotated[
        list[Annotated[str, StringConstraints(max_length=64)]], Field(min_length=1, max_length=1024)
    ]
    # Extra tags on top of the scan's own.
    tags: Tags = Field(default_factory=dict)


class ImportResult(BaseModel):
    created: list[uuid.UUID]
    skipped: list[dict[str, str]]

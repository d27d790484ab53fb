from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)
from yarl import URL

from infrawatch.core.errors import InvalidInput
from infrawatch.core.validation import Name, NullMeansUnset, ShortText, plain_message
from infrawatch.monitoring import conditions
from infrawatch.probes import split_host_port
from infrawatch.probes.dns import RECORD_TYPES
from infrawatch.probes.paths import ConditionError, json_path_parts

MonitorType = Literal["http", "tcp", "ping", "dns", "tls", "push", "ssh", "agent", "node_exporter"]
MonitorStatus = Literal["pending", "up", "degraded", "down", "paused", "maintenance"]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")]
HeaderValue = Annotated[
    str, StringConstraints(max_length=4096, pattern=r"^[^\x00-\x08\x0a-\x1f]*$")
]
StatusRange = Annotated[str, StringConstraints(pattern=r"^[1-5]\d\d(-[1-5]\d\d)?$")]
Condition = Annotated[str, StringConstraints(min_length=1, max_length=500)]
# monitoring/quorum.py LOCATION_NAME: kept in step (a test compares them).
LocationName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpSettings(_Settings):
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: Annotated[dict[HeaderName, HeaderValue], Field(max_length=50)] = Field(
        default_factory=dict
    )
    body: Annotated[str, StringConstraints(max_length=65536)] | None = None
    accepted_status_codes: Annotated[list[StatusRange], Field(min_length=1, max_length=20)] = Field(
        default_factory=lambda: ["200-399"]
    )
    keyword: ShortText | None = None
    keyword_absent: ShortText | None = None
    json_path: ShortText | None = None
    json_expected: ShortText | None = None
    follow_redirects: bool = True
    max_redirects: Annotated[int, Field(ge=0, le=30)] = 10
    verify_tls: bool = True

    @field_validator("json_path")
    @classmethod
    def _readable_path(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                json_path_parts(value)
            except ConditionError:
                raise ValueError("not a JSON path; write $.key, $.items[0].id or key.sub") from None
        return value


class TcpSettings(_Settings):
    expect_banner: ShortText | None = None


class PingSettings(_Settings):
    count: Annotated[int, Field(ge=1, le=10)] = 3
    interval_seconds: Annotated[float, Field(ge=0.05, le=1)] = 0.2


class DnsSettings(_Settings):
    record_type: Literal[RECORD_TYPES] = "A"  # type: ignore[valid-type]
    resolver: Annotated[str, StringConstraints(max_length=64)] | None = None
    expected: Annotated[list[ShortText], Field(max_length=50)] = Field(default_factory=list)
    expected_rcode: Literal["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"] = "NOERROR"
    protocol: Literal["udp", "tcp"] = "udp"


class TlsSettings(_Settings):
    server_name: ShortText | None = None
    verify_chain: bool = True


class SshSettings(_Settings):
    expected_fingerprint: ShortText | None = None


class PushSettings(_Settings):
    period_seconds: Annotated[int, Field(ge=10, le=31 * 86400)] = 300
    grace_seconds: Annotated[int, Field(ge=0, le=31 * 86400)] = 60


Percent = Annotated[float, Field(ge=0, le=100)]


class AgentSettings(_Settings):
    """Thresholds on the server's agent reports; any crossed is DOWN with
    what crossed it. Silence for period + grace is DOWN too."""

    period_seconds: Annotated[int, Field(ge=5, le=86400)] = 30
    grace_seconds: Annotated[int, Field(ge=0, le=86400)] = 60
    disk_percent: Percent | None = 90
    memory_percent: Percent | None = 95
    swap_percent: Percent | None = None
    cpu_percent: Percent | None = None
    load_per_core: Annotated[float, Field(gt=0, le=1000)] | None = 2.0


class NodeExporterSettings(_Settings):
    """The agent's thresholds on a scrape (no CPU: one scrape has no share)."""

    disk_percent: Percent | None = 90
    memory_percent: Percent | None = 95
    swap_percent: Percent | None = None
    load_per_core: Annotated[float, Field(gt=0, le=1000)] | None = 2.0
    verify_tls: bool = True


SETTINGS_MODELS: dict[str, type[_Settings]] = {
    "http": HttpSettings,
    "tcp": TcpSettings,
    "ping": PingSettings,
    "dns": DnsSettings,
    "tls": TlsSettings,
    "ssh": SshSettings,
    "push": PushSettings,
    "agent": AgentSettings,
    "node_exporter": NodeExporterSettings,
}


class MonitorFields(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Name
    target: Annotated[str, StringConstraints(max_length=2048)] = ""
    interval_seconds: Annotated[int, Field(ge=1, le=86400)] = 30
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] | None = None
    retry_interval_seconds: Annotated[int, Field(ge=1, le=86400)] | None = None
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    success_threshold: Annotated[int, Field(ge=1, le=100)] = 1
    degraded_threshold_ms: Annotated[int, Field(ge=1, le=600_000)] | None = None
    conditions: Annotated[list[Condition], Field(max_length=20)] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    server_id: uuid.UUID | None = None
    critical: bool = False
    paused: bool = False
    # Checked from each of these (workers started with --location); empty:
    # from any one. Two or more decide its state by quorum.
    locations: Annotated[list[LocationName], Field(max_length=16)] = Field(default_factory=list)
    # Locations that must see it down for DOWN; null: a majority of those
    # with a live worker.
    quorum: Annotated[int, Field(ge=1, le=16)] | None = None


class MonitorCreate(MonitorFields):
    type: MonitorType


class MonitorUpdate(BaseModel):
    """PATCH: only what is sent changes; the type is fixed at creation."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    target: Annotated[str, StringConstraints(max_length=2048)] | None = None
    interval_seconds: Annotated[int, Field(ge=1, le=86400)] | None = None
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] | None = None
    retry_interval_seconds: Annotated[int, Field(ge=1, le=86400)] | None = None
    failure_threshold: Annotated[int, Field(ge=1, le=100)] | None = None
    success_threshold: Annotated[int, Field(ge=1, le=100)] | None = None
    degraded_threshold_ms: Annotated[int, Field(ge=1, le=600_000)] | None = None
    conditions: Annotated[list[Condition], Field(max_length=20)] | None = None
    settings: dict[str, Any] | None = None
    server_id: uuid.UUID | None = None
    critical: bool | None = None
    paused: bool | None = None
    locations: Annotated[list[LocationName], Field(max_length=16)] | None = None
    quorum: Annotated[int, Field(ge=1, le=16)] | None = None


class MonitorOut(BaseModel):
    id: uuid.UUID
    name: str
    type: MonitorType
    target: str
    interval_seconds: int
    timeout_seconds: float
    retry_interval_seconds: int
    failure_threshold: int
    success_threshold: int
    degraded_threshold_ms: int | None
    conditions: list[str]
    settings: dict[str, Any]
    push_url: str | None = None
    server_id: uuid.UUID | None
    critical: bool
    paused: bool
    locations: list[str]
    quorum: int | None
    status: MonitorStatus
    status_changed_at: datetime | None
    last_checked_at: datetime | None
    cert_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CheckResultOut(BaseModel):
    monitor_id: uuid.UUID
    checked_at: datetime
    ok: bool
    outcome: Literal["up", "degraded", "down"]
    latency_ms: float
    status_code: int | None
    error: str | None
    details: dict[str, Any] | None


class StoredResultOut(BaseModel):
    id: int
    checked_at: datetime
    ok: bool
    outcome: str
    state: str
    latency_ms: float
    status_code: int | None
    error: str | None
    details: dict[str, Any] | None
    location: str | None  # where the worker that checked stood


class LocationStateOut(BaseModel):
    """One location's latest word on a monitor checked from several."""

    location: str
    state: str
    latency_ms: float
    checked_at: datetime
    error: str | None
    counted: bool  # the location has a live worker: its word counts


class ProbeLocationOut(BaseModel):
    name: str
    state: Literal["up", "gone"]
    since: datetime
    live_workers: int


class SeriesPointOut(BaseModel):
    at: datetime
    latency_avg_ms: float | None = Field(description="of the answered checks; null if none")
    uptime_percent: float | None
    checks: int


class FleetPointOut(BaseModel):
    at: datetime
    checks: int
    uptime_percent: float | None = Field(description="up and degraded checks of all checks")
    latency_avg_ms: float | None = Field(description="of the answered checks; null if none")
    latency_p95_ms: float | None = Field(description="within a histogram bucket, 10 s at most")
    went_down: int = Field(description="monitors that went down in the bucket")
    went_degraded: int
    recovered: int = Field(description="monitors back up from down or degraded")


class UptimeWindow(BaseModel):
    uptime_percent: float | None
    checks: int
    up: int
    down: int
    degraded: int
    latency_avg_ms: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class TransitionOut(BaseModel):
    id: int
    from_state: str
    to_state: str
    at: datetime
    reason: str | None
    kind: str


# --- validation that needs more than one field ---------------------------------


def validate_monitor(
    monitor_type: str, target: str, settings: dict[str, Any], conds: list[str]
) -> tuple[str, dict[str, Any]]:
    """Normalized (target, settings), or a 422 naming the field."""
    model = SETTINGS_MODELS[monitor_type]
    clean = {k: v for k, v in settings.items() if not (monitor_type == "push" and k == "token")}
    try:
        parsed = model.model_validate(clean).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise InvalidInput(
            "invalid settings",
            errors=[
                {
                    "loc": ["body", "settings", *e["loc"]],
                    "msg": plain_message(dict(e)),
                    "type": e["type"],
                }
                for e in exc.errors(include_url=False)
            ],
        ) from None
    for index, text in enumerate(conds):
        try:
            conditions.parse(text, monitor_type)
        except ConditionError as exc:
            raise InvalidInput(str(exc), loc=("body", "conditions", index)) from None
    return _validate_target(monitor_type, target.strip()), parsed


def _validate_target(monitor_type: str, target: str) -> str:
    def refuse(message: str) -> InvalidInput:
        return InvalidInput(message, loc=("body", "target"))

    if monitor_type in ("push", "agent"):
        return ""
    if not target or any(c.isspace() or ord(c) < 32 for c in target):
        raise refuse(f"a {monitor_type} monitor needs a target without spaces")
    if monitor_type in ("http", "node_exporter"):
        try:
            url = URL(target)
        except ValueError as exc:
            raise refuse(f"not a URL: {exc}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise refuse(f"a {monitor_type} monitor needs an absolute http:// or https:// URL")
        return target
    try:
        host, port = split_host_port(target, 0)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    if monitor_type == "tcp" and not port:
        raise refuse("a tcp monitor needs host:port")
    if monitor_type in ("ping", "dns") and port:
        raise refuse(f"a {monitor_type} target is a host name, without a port")
    if not _is_host(host):
        raise refuse(f"{host!r} is neither a host name nor an IP address")
    return target


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(
        0 < len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
        for label in labels
    )


# --- the host agent ---------------------------------------------------------------

Bytes = Annotated[int, Field(ge=0, le=2**63 - 1)]


class _Reading(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MemoryReading(_Reading):
    total_bytes: Bytes
    used_bytes: Bytes
    percent: Percent


class DiskReading(_Reading):
    mount: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    total_bytes: Bytes
    used_bytes: Bytes
    percent: Percent


class NetworkReading(_Reading):
    bytes_sent: Bytes
    bytes_received: Bytes


class AgentReportIn(_Reading):
    """What `infrawatch agent` sends; newer agents may send more (ignored)."""

    agent_version: Annotated[str, StringConstraints(max_length=32)] = ""
    hostname: Annotated[str, StringConstraints(max_length=255)] = ""
    cpu_percent: Percent
    cpu_count: Annotated[int, Field(ge=1, le=100_000)]
    load: Annotated[list[Annotated[float, Field(ge=0, le=1e6)]], Field(min_length=3, max_length=3)]
    memory: MemoryReading
    swap: MemoryReading
    disks: Annotated[list[DiskReading], Field(max_length=64)]
    network: NetworkReading
    uptime_seconds: Annotated[int, Field(ge=0, le=10**10)]
    processes: Annotated[int, Field(ge=0, le=10**7)]


class AgentReportAccepted(BaseModel):
    server_id: uuid.UUID
    next_report_in_seconds: int


class AgentTokenOut(BaseModel):
    server_id: uuid.UUID
    token: str = Field(description="shown once; give it to `infrawatch agent --token`")

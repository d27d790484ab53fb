"""Provider accounts, server builds and hibernation schedules on the API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from infrawatch.core.validation import NullMeansUnset

Kind = Literal["ec2", "digitalocean", "linode", "vultr", "lab"]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,254}$")]
ServerName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]{1,2040}$")]
CredentialValue = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class ProviderAccountCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: Kind
    credentials: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")], CredentialValue
    ] = Field(
        default_factory=dict,
        max_length=8,
        description="ec2: access_key_id, secret_access_key; digitalocean, linode: token; "
        "vultr: api_key; lab: none. Stored encrypted, never returned.",
    )
    api_url: Url | None = Field(None, description="the provider's API base URL (default: its own)")
    region: Slug | None = Field(None, description="default region (EC2: the region's endpoint)")
    hibernation: Literal["stop", "snapshot"] = Field(
        "stop",
        description="how servers of this account sleep: stop (DigitalOcean, Linode and Vultr "
        "still bill a stopped server) or snapshot (snapshot, destroy, re-create on waking)",
    )
    rate_per_second: float = Field(5.0, gt=0, le=100, description="API calls a second at most")
    burst: int = Field(10, ge=1, le=100)


class ProviderAccountUpdate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    credentials: (
        dict[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,64}$")], CredentialValue] | None
    ) = Field(None, max_length=8, description="replaces the stored credentials as a whole")
    api_url: Url | None = None
    region: Slug | None = None
    hibernation: Literal["stop", "snapshot"] | None = None
    rate_per_second: float | None = Field(None, gt=0, le=100)
    burst: int | None = Field(None, ge=1, le=100)


class ProviderAccountOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    api_url: str | None
    region: str | None
    hibernation: str
    bills_when_stopped: bool
    rate_per_second: float
    burst: int
    credential_fields: list[str] = Field(description="which credentials are stored (not them)")
    created_at: datetime
    updated_at: datetime


class RegionOut(BaseModel):
    id: str
    name: str


class SizeOut(BaseModel):
    id: str
    vcpus: int
    memory_mb: int
    disk_gb: int
    hourly_price: float | None
    regions: list[str]


class NodeOut(BaseModel):
    id: str
    name: str
    state: str
    provider_state: str
    region: str
    size: str
    image: str
    public_ip: str | None
    private_ip: str | None
    tags: list[str]


class ServerCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    provider_account: Name = Field(description="the account's name (or id)")
    region: Slug | None = Field(None, description="default: the account's region")
    size: Slug
    image: Slug
    name: ServerName | None = Field(None, description="one server; or name_pattern + count")
    name_pattern: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9{}:-]{0,62}$")] | None = (
        Field(None, description="e.g. web-{n:02}, with count")
    )
    count: int = Field(1, ge=1, le=100)
    start: int = Field(1, ge=0, le=100_000, description="the first {n}")
    key_id: uuid.UUID | None = Field(
        None, description="the vault login key put on the server (default: the newest active one)"
    )
    template: Name | None = Field(None, description="a server template: its fields and monitors")
    stack: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")] | None = None
    vars: dict[str, Any] = Field(
        default_factory=dict,
        description="the stack's variables (a stack runs the base and hardening roles first)",
    )
    base: bool = Field(True, description="the base role: admin user, sudo, timezone, packages")
    harden: bool = Field(True, description="ssh_hardening, firewall, fail2ban, auto_updates")
    ssh_port: int = Field(22, ge=1, le=65535, description="where the image's sshd listens")
    tags: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=64)],
        Annotated[str, StringConstraints(max_length=255)],
    ] = Field(default_factory=dict, max_length=32)

    @field_validator("vars")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 64:
            raise ValueError("at most 64 variables")
        return value


class BuildOut(BaseModel):
    id: uuid.UUID
    action: str
    name: str
    provider_account: str
    region: str
    size: str
    image: str
    status: str
    step: str
    steps: list[str]
    steps_done: dict[str, str]
    error: str | None
    node_id: str | None
    server_id: uuid.UUID | None
    run_id: uuid.UUID | None
    job_id: uuid.UUID | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class BuildsOut(BaseModel):
    items: list[BuildOut]


Cron = Annotated[str, StringConstraints(min_length=9, max_length=128)]


class ScheduleCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Name
    server_id: uuid.UUID | None = Field(None, description="one server; or q")
    q: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        None, description="every live server the search finds, e.g. tag:env=dev"
    )
    stop: Cron = Field(description="cron of the stops, e.g. 0 20 * * 1-5")
    start: Cron = Field(description="cron of the starts, e.g. 0 7 * * 1-5")
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    enabled: bool = True


class ScheduleUpdate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    server_id: uuid.UUID | None = None
    q: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None
    stop: Cron | None = None
    start: Cron | None = None
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    enabled: bool | None = None


class ScheduleOut(BaseModel):
    id: uuid.UUID
    name: str
    server_id: uuid.UUID | None
    q: str | None
    stop: str
    start: str
    timezone: str
    enabled: bool
    asleep_hours_per_week: float = Field(description="hours a week the servers sleep")
    servers: int = Field(description="servers it covers now")
    estimated_hours_saved_per_week: float = Field(description="server-hours a week not run")
    next_stop_at: datetime | None
    next_start_at: datetime | None
    last_action: str | None
    last_action_at: datetime | None
    created_at: datetime
    updated_at: datetime

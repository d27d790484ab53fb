from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from infrawatch.core.validation import JSONObject, LongText, Name, NullMeansUnset, ShortText, Slug
from infrawatch.inventory.lifecycle import Health, Lifecycle

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def normalize_hostname(value: str) -> str:
    """RFC 1123: dot-separated labels of letters, digits and inner hyphens."""
    name = value.rstrip(".").lower()
    if not name or len(name) > 253 or not all(_HOSTNAME_LABEL.match(p) for p in name.split(".")):
        raise ValueError("not a valid hostname (RFC 1123)")
    return name


def _ip(value: str) -> str:
    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError:
        raise ValueError("not a valid IPv4 or IPv6 address") from None


Hostname = Annotated[str, StringConstraints(max_length=253), AfterValidator(normalize_hostname)]
IPAddress = Annotated[str, StringConstraints(max_length=45), AfterValidator(_ip)]
Port = Annotated[int, Field(ge=1, le=65535)]
TAG_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$"
TagKey = Annotated[str, StringConstraints(pattern=TAG_KEY_PATTERN)]
TagValue = Annotated[str, StringConstraints(max_length=255, pattern=r"^[^\x00-\x1f]*$")]
Tags = Annotated[dict[TagKey, TagValue], Field(max_length=64)]
# Group names appear in search queries (`group:edge`), so they are one token.
GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")]
GroupNames = Annotated[list[GroupName], Field(max_length=100)]
Label = Annotated[ShortText, StringConstraints(max_length=64)]
Owner = Annotated[ShortText, StringConstraints(max_length=128)]

# Fields a client may read but never write.
READ_ONLY_FIELDS = {
    "id": "is assigned by the server",
    "health": "is derived by the monitoring engine and cannot be set",
    "health_changed_at": "is derived by the monitoring engine",
    "created_at": "is set by the server",
    "updated_at": "is set by the server",
    "deleted_at": "is changed with DELETE and /restore",
}


class _RefusesReadOnly(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _refuse_read_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, why in READ_ONLY_FIELDS.items():
                if name in data:
                    raise ValueError(f"{name} is read-only: it {why}")
        return data


class ServerFields(_RefusesReadOnly):
    model_config = ConfigDict(extra="forbid")

    hostname: Hostname | None = None
    ip_address: IPAddress | None = None
    ssh_port: Port = 22
    provider: Label | None = None
    region: Label | None = None
    os: Label | None = None
    environment: Label | None = None
    owner: Owner | None = None
    description: LongText | None = None
    tags: Tags = Field(default_factory=dict)
    groups: GroupNames = Field(default_factory=list)
    attributes: JSONObject = Field(default_factory=dict)


class ServerCreate(ServerFields):
    name: Name
    lifecycle: Lifecycle = Lifecycle.active


class ServerReplace(ServerCreate):
    """PUT: the whole writable representation; what is left out is reset."""


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be left out but not set to null")
    return value


class _OptionalServerFields(BaseModel):
    """What a PATCH and a bulk `update` may both set; unset means unchanged."""

    model_config = ConfigDict(extra="forbid")

    hostname: Hostname | None = None
    ssh_port: Port | None = None
    provider: Label | None = None
    region: Label | None = None
    os: Label | None = None
    environment: Label | None = None
    owner: Owner | None = None
    description: LongText | None = None
    attributes: JSONObject | None = None

    @field_validator("ssh_port", "attributes", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _refuse_null(value)


class ServerUpdate(_RefusesReadOnly, _OptionalServerFields):
    """PATCH: only the fields sent change. `tags` and `groups` replace."""

    name: Name | None = None
    ip_address: IPAddress | None = None
    tags: Tags | None = None
    groups: GroupNames | None = None
    lifecycle: Lifecycle | None = None

    @field_validator("name", "tags", "groups", "lifecycle", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _refuse_null(value)


class ServerOut(BaseModel):
    id: uuid.UUID
    name: str
    hostname: str | None
    ip_address: str | None
    ssh_port: int
    provider: str | None
    region: str | None
    os: str | None
    environment: str | None
    owner: str | None
    description: str | None
    tags: dict[str, str]
    groups: list[str]
    attributes: dict[str, Any]
    lifecycle: Lifecycle
    health: Health
    health_changed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


# --- dependencies -----------------------------------------------------------


class DependencyCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    server_id: uuid.UUID = Field(description="the upstream server this one depends on")
    kind: Slug = "depends"


class DependencyOut(BaseModel):
    server: ServerOut
    kind: str
    depth: int = 1
    via: uuid.UUID | None = Field(
        default=None, description="the server one step closer to the root"
    )
    created_at: datetime


class HealthTransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    from_state: Health
    to_state: Health
    at: datetime
    reason: str | None


# --- groups -----------------------------------------------------------------


class GroupCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: GroupName
    description: LongText | None = None
    query: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, description="a search-language query: makes the group dynamic"
    )


class GroupUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: GroupName | None = None
    description: LongText | None = None
    query: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = None


class GroupOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    query: str | None
    dynamic: bool
    member_count: int
    created_at: datetime
    updated_at: datetime


# --- templates --------------------------------------------------------------


class TemplateDefaults(ServerFields):
    lifecycle: Lifecycle = Lifecycle.planned


class TemplateCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: LongText | None = None
    defaults: TemplateDefaults = Field(default_factory=TemplateDefaults)


class TemplateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: LongText | None = None
    defaults: TemplateDefaults | None = None


class TemplateOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    defaults: TemplateDefaults
    created_at: datetime
    updated_at: datetime


NamePattern = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]*\{n(:0?[1-9])?\}[^\x00-\x1f]*$"
    ),
]


class InstantiateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: Annotated[int, Field(ge=1, le=10_000)]
    name_pattern: NamePattern = Field(description="{n} is the number; {n:03} pads it to 3 digits")
    start: Annotated[int, Field(ge=0, le=1_000_000_000)] = 1
    overrides: ServerFields | None = None


# --- bulk -------------------------------------------------------------------

BulkActionName = Literal[
    "set_lifecycle",
    "add_tags",
    "remove_tags",
    "add_group",
    "remove_group",
    "update",
    "delete",
    "restore",
]


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: BulkActionName
    ids: Annotated[list[uuid.UUID], Field(max_length=10_000)] | None = None
    q: Annotated[str, StringConstraints(max_length=2000)] | None = None
    params: JSONObject = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_selector(self) -> BulkRequest:
        if (self.ids is None) == (self.q is None):
            raise ValueError("give exactly one of ids or q")
        return self


class BulkResult(BaseModel):
    action: str
    request_id: str
    matched: int
    changed: int
    changed_ids: list[uuid.UUID]


class SetLifecycleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lifecycle: Lifecycle


class TagsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: Tags


class RemoveTagsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: Annotated[list[TagKey], Field(min_length=1, max_length=64)]


class GroupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: GroupName


class UpdateParams(_OptionalServerFields):
    """Bulk `update`: fields that may be the same on many servers (not name, IP or tags)."""


class EmptyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- import -----------------------------------------------------------------


class ImportRowReport(BaseModel):
    row: int
    name: str | None
    action: Literal["create", "update", "unchanged", "error"]
    errors: list[str] = Field(default_factory=list)
    changes: list[str] = Field(default_factory=list)


class ImportReport(BaseModel):
    dry_run: bool
    request_id: str
    created: int
    updated: int
    unchanged: int
    errors: int
    groups_created: list[str] = Field(
        default_factory=list,
        description="groups made for the rows (create_groups); in a dry run: would be",
    )
    rows: list[ImportRowReport]


class HostMapGroup(BaseModel):
    name: str | None = Field(description="the tag's value; null: servers without the tag")
    count: int
    states: dict[str, int] = Field(description="cells per state")


class HostMapOut(BaseModel):
    """Columnar: cell i is names[i], its state states[int(cells[i])]."""

    total: int
    tag: str | None
    states: list[str]
    groups: list[HostMapGroup] = Field(description="in order; their cells follow each other")
    names: list[str]
    cells: str = Field(description="one digit per server, an index into states")

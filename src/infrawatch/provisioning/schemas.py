from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from infrawatch.core.validation import NullMeansUnset

RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
SecretName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class RunCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    servers: list[uuid.UUID] | None = Field(
        None, max_length=1000, description="server ids; or `q`, not both"
    )
    q: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        None, description="search language: every live server it matches"
    )
    roles: list[RoleName] | None = Field(
        None, min_length=1, max_length=32, description="roles shipped with InfraWatch, in order"
    )
    stack: RoleName | None = Field(None, description="a stack (a named set of roles); or `roles`")
    project: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="a project's name, with `playbook`"
    )
    playbook: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = Field(
        None, description="a playbook of `project` (its path in the project); or roles or stack"
    )
    vars: dict[str, Any] = Field(
        default_factory=dict, description="plain variables; secrets go in `secrets`"
    )
    secrets: list[SecretName] = Field(
        default_factory=list,
        max_length=64,
        description="names of /api/v1/secrets, each given to the roles as a variable of that name",
    )
    check: bool = Field(False, description="Ansible's check mode: report, change nothing")
    limit_hosts: list[Annotated[str, StringConstraints(min_length=1, max_length=255)]] | None = (
        Field(
            None,
            max_length=1000,
            description="only these of the targets, by server name (Ansible's --limit)",
        )
    )
    snapshot: bool | None = Field(
        None, description="snapshot each host first (default: on for hardening roles)"
    )
    on_failure: Literal["keep", "rollback"] = "keep"


class HostState(BaseModel):
    server_id: uuid.UUID
    host: str
    status: str  # pending, running, ok, failed, unreachable, rolled_back
    start_at: str | None = None
    done_roles: list[str] = []
    failed_task: str | None = None
    failed_role: str | None = None
    message: str | None = None
    recap: dict[str, int] | None = None
    snapshot: str | None = None


class RunOut(BaseModel):
    id: uuid.UUID
    job_id: uuid.UUID | None
    status: str
    waiting_reason: str | None
    stack: str | None
    project_id: uuid.UUID | None
    playbook: str | None
    project_revision: str | None
    roles: list[str]
    server_ids: list[uuid.UUID]
    vars: dict[str, Any]
    secrets: list[str]
    check: bool
    snapshot: bool
    on_failure: str
    progress: int
    hosts: list[HostState]
    retry_of: uuid.UUID | None
    error: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


GitSource = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=2048,
        # No white space and no control characters (PostgreSQL stores no NUL).
        pattern=r"^((https?|ssh|git|file)://[^\s\x00-\x1f\x7f]+"
        r"|[\w.-]+@[\w.-]+:[^\s\x00-\x1f\x7f]+|/[^\s\x00-\x1f\x7f]*)$",
    ),
]


class ProjectCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\w.-]+$")]
    source: GitSource = Field(
        description="a git URL (https://, ssh://, git://, file://, user@host:path) "
        "or an absolute folder path on the machines that run it"
    )
    branch: Annotated[str, StringConstraints(max_length=255, pattern=r"^[\w./-]+$")] | None = None


class ProjectOut(BaseModel):
    id: uuid.UUID
    name: str
    source: str
    branch: str | None
    revision: str | None
    playbooks: list[str]
    synced_at: datetime | None
    sync_error: str | None
    created_at: datetime
    updated_at: datetime


class StackOut(BaseModel):
    name: str
    description: str
    roles: list[str]
    # The variable form (JSON Schema), as the console draws it.
    form: dict[str, Any]
    tested: str


class RoleOut(BaseModel):
    name: str
    description: str
    variables: dict[str, Any]


class LabHostCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}$")]
    flavour: Literal["debian12", "ubuntu2404"] = Field(
        default="debian12", description="debian12 (bookworm) or ubuntu2404 (noble)"
    )
    key_id: uuid.UUID = Field(description="the vault key that logs in (as `admin`)")
    tags: dict[str, str] = Field(default_factory=dict)


class LabHostOut(BaseModel):
    name: str
    flavour: str
    address: str
    running: bool
    server_id: uuid.UUID | None
    snapshots: list[str]

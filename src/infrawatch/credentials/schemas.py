from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from infrawatch.core.validation import NullMeansUnset, ShortText

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$", re.IGNORECASE)


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            "1-128 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    return value


def _username(value: str) -> str:
    if not _USER.match(value):
        raise ValueError("not a valid login name (letters, digits, '_', '.', '-')")
    return value


Name = Annotated[str, AfterValidator(_name)]
Username = Annotated[str, AfterValidator(_username)]
PrivateKeyText = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]


class Strict(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")


class SshKeyCreate(Strict):
    """Generate a key (no private_key) or import one (private_key given)."""

    name: Name
    type: Literal["ed25519", "rsa"] | None = None
    private_key: PrivateKeyText | None = None
    passphrase: Annotated[str, StringConstraints(max_length=1024)] | None = None
    # "ca": a certificate authority that signs short-lived user certificates.
    purpose: Literal["login", "ca"] = "login"
    rotation_interval_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class SshKeyUpdate(Strict):
    name: Name | None = None
    rotation_interval_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class SshKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    type: str
    algorithm: str
    bits: int | None
    fingerprint: str
    public_key: str
    origin: str
    purpose: str
    status: str
    replaced_by_id: uuid.UUID | None
    rotation_interval_days: int | None
    next_rotation_at: datetime | None
    last_rotated_at: datetime | None
    last_used_at: datetime | None
    retired_at: datetime | None
    assigned_servers: int
    created_at: datetime
    updated_at: datetime


class AssignmentCreate(Strict):
    server_id: uuid.UUID
    username: Username
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    # Log in with a certificate from this CA (the server trusts the CA)
    # instead of an authorized_keys line.
    ca_id: uuid.UUID | None = None


class AssignmentOut(BaseModel):
    server_id: uuid.UUID
    server_name: str
    key_id: uuid.UUID
    username: str
    port: int
    ca_id: uuid.UUID | None
    address: str | None
    host_key_fingerprint: str | None
    last_test_at: datetime | None
    last_test_ok: bool | None
    last_test_error: str | None
    last_test_latency_ms: float | None


class ConnectionTestRequest(Strict):
    server_id: uuid.UUID


class JobStarted(BaseModel):
    job_id: uuid.UUID
    status: str
    # False when an Idempotency-Key matched an earlier request.
    created: bool


class CertificateRequest(Strict):
    """Sign a key from the vault (`key_id`) or anyone's public key."""

    key_id: uuid.UUID | None = None
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=16_384)] | None = None
    principals: Annotated[list[Username], Field(min_length=1, max_length=32)]
    valid_seconds: Annotated[int, Field(ge=60, le=7 * 86400)] = 3600


class CertificateOut(BaseModel):
    ca_id: uuid.UUID
    certificate: str
    serial: int
    principals: list[str]
    valid_after: datetime
    valid_before: datetime


class KnownHostOut(BaseModel):
    server_id: uuid.UUID
    port: int
    algorithm: str
    fingerprint: str
    first_seen_at: datetime
    last_verified_at: datetime


class SecretCreate(Strict):
    name: Name
    value: Annotated[str, StringConstraints(min_length=1, max_length=65_536)]
    description: ShortText | None = None


class SecretUpdate(Strict):
    value: Annotated[str, StringConstraints(min_length=1, max_length=65_536)] | None = None
    description: ShortText | None = None


class SecretOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    value_length: int
    version: int
    created_at: datetime
    updated_at: datetime


def rotation_result(servers: list[dict[str, Any]]) -> dict[str, Any]:
    done = sum(1 for s in servers if s["ok"])
    return {"servers": servers, "rotated": done, "failed": len(servers) - done}

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from infrawatch.core.context import Role
from infrawatch.core.validation import Name, NullMeansUnset

Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
PASSWORD_MIN_LENGTH = 8
Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN_LENGTH, max_length=1024)]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    totp_enabled_at: datetime | None = Field(
        default=None, description="when two-factor was turned on; null: off"
    )


class UserCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    username: Username
    role: Role
    password: Password


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None
    password: Password | None = None


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    user_id: uuid.UUID
    username: str
    name: str
    prefix: str
    read_only: bool
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreate(NullMeansUnset):
    model_config = ConfigDict(extra="forbid")

    username: Username
    name: Name = "api"
    read_only: bool = False
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class TokenCreated(TokenOut):
    token: str = Field(description="The secret. Shown once; only its hash is stored.")


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    otp: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="the TOTP code, or a recovery code, where two-factor is on"
    )


class LoginResponse(BaseModel):
    token: str
    csrf_token: str
    expires_at: datetime
    user: UserOut
    must_enrol_totp: bool = Field(
        default=False,
        description="the role requires two-factor: this session may only enrol "
        "(POST /api/v1/auth/totp, then /confirm)",
    )


class TotpEnrolment(BaseModel):
    secret: str = Field(description="for typing into an authenticator; shown this once")
    otpauth_uri: str
    qr_svg: str = Field(description="the otpauth URI as a QR code (inline SVG)")


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(min_length=6, max_length=64)]


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(description="one-time codes; shown this once")


class UnlockOut(BaseModel):
    forgotten: int = Field(description="failed logins forgotten")

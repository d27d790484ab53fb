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


class LoginResponse(BaseModel):
    token: str
    csrf_token: str
    expires_at: datetime
    user: UserOut


class UnlockOut(BaseModel):
    forgotten: int = Field(description="failed logins forgotten")

"""Who is acting, from where, under which request: what every audit record
and every authorization decision needs. Built at the request/job/CLI boundary
and passed down explicitly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "operator": 1, "admin": 2}[self.value]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    username: str
    role: Role
    token_name: str | None = None
    read_only: bool = False

    @property
    def can_write(self) -> bool:
        """May change things, and so see what changing needs (push URLs)."""
        return not self.read_only and self.role.allows(Role.operator)


SYSTEM_ACTOR = Actor(user_id=None, username="system", role=Role.admin)


@dataclass(frozen=True)
class OperationContext:
    actor: Actor
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    source_ip: str | None = None

    def with_actor(self, actor: Actor) -> OperationContext:
        return OperationContext(actor=actor, request_id=self.request_id, source_ip=self.source_ip)


def cli_context(username: str = "cli") -> OperationContext:
    return OperationContext(actor=Actor(user_id=None, username=username, role=Role.admin))

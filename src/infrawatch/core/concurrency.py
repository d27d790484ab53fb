"""Optimistic concurrency, one way for every object that has a version:
services return `Versioned(out, version)`, routers send it with its ETag
(`core.runtime.with_etag`), updates take If-Match (`check_if_match`) and
change the row through `apply_changes`, which bumps the version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from infrawatch.core.clock import utcnow
from infrawatch.core.errors import PreconditionFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """An object as read or written, and the version its ETag names."""

    value: T
    version: int

    @property
    def etag(self) -> str:
        return etag(self.version)


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(if_match: str | None, version: int) -> None:
    """412 when the client's copy is older than ours. No header: last write wins."""
    if if_match is None:
        return
    offered = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in offered or etag(version) in offered:
        return
    raise PreconditionFailed(
        f"the object changed since you read it (now at ETag {etag(version)}); fetch it again"
    )


def bump_version(row: Any) -> None:
    """A row was changed: its next ETag differs, its updated_at is now."""
    row.version += 1
    row.updated_at = utcnow()


def apply_changes(row: Any, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Set each field and bump the version; the old values, for the audit
    record beside the changes."""
    before = {key: getattr(row, key) for key in changes}
    for key, value in changes.items():
        setattr(row, key, value)
    bump_version(row)
    return before

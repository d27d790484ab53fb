"""Optimistic concurrency: ETag out, If-Match in."""

from __future__ import annotations

from infrawatch.core.errors import PreconditionFailed


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

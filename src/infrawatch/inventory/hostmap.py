"""The host map: every live server as one cell, coloured by health and
grouped by a tag's value, for the console's overview.

Columnar on purpose: at 100,000 servers a list of objects is ~9 MB of JSON
and its parse dominates the page; names in one array and states as one
character each is ~1.6 MB, a fifth of that gzip'd. Ids are left out (random,
so they would not compress): a cell opens `/servers/by-name/{name}`, names
being unique among live servers. Built again only when the inventory's
generation moves, so a page refreshed by events costs a lookup."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.counts import CountCache
from infrawatch.inventory import repository

# A cell's state is one character of `cells`, an index into STATES. Resting
# servers (maintenance, decommissioning) are not expected to answer: they
# show as maintenance whatever their last health, as their monitors do.
STATES = ("down", "degraded", "unknown", "maintenance", "healthy")


@dataclass(frozen=True)
class HostMap:
    generation: int
    body: bytes  # the JSON document
    gzipped: bytes

    @property
    def etag(self) -> str:
        return f'W/"hostmap-{self.generation}-{len(self.body)}"'


async def host_map(session: AsyncSession, cache: CountCache, tag: str | None) -> HostMap:
    generation = await repository.inventory_generation(session)

    async def build() -> HostMap:
        return HostMap(
            generation, *_encode(tag, await repository.host_map_rows(session, tag, STATES))
        )

    return await cache.get(f"hostmap:{tag or ''}", generation, build)


def _encode(tag: str | None, rows: list[tuple[str | None, str, int]]) -> tuple[bytes, bytes]:
    groups: list[tuple[str | None, list[int]]] = []  # (value, cells per state code)
    for group, _, state in rows:
        if not groups or groups[-1][0] != group:
            groups.append((group, [0] * len(STATES)))
        groups[-1][1][state] += 1
    document = {
        "total": len(rows),
        "tag": tag or None,
        "states": list(STATES),
        "groups": [
            {"name": name, "count": sum(counts), "states": dict(zip(STATES, counts, strict=True))}
            for name, counts in groups
        ],
        "names": [name for _, name, _ in rows],
        "cells": "".join(str(state) for _, _, state in rows),
    }
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return body, gzip.compress(body, compresslevel=5)


async def tag_keys(session: AsyncSession, limit: int = 100) -> list[str]:
    """The tag keys in use, for the map's \"group by\" choice."""
    return await repository.tag_keys(session, limit)

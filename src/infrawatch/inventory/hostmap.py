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

from sqlalchemy import and_, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.counts import CountCache
from infrawatch.inventory import repository
from infrawatch.inventory.lifecycle import RESTING, Health, Lifecycle
from infrawatch.inventory.models import Server, ServerTag

# A cell's state is one character of `cells`, an index into STATES. Resting
# servers (maintenance, decommissioning) are not expected to answer: they
# show as maintenance whatever their last health, as their monitors do.
STATES = ("down", "degraded", "unknown", "maintenance", "healthy")
_CODE = {state: str(i) for i, state in enumerate(STATES)}


@dataclass(frozen=True)
class HostMap:
    generation: int
    body: bytes  # the JSON document
    gzipped: bytes

    @property
    def etag(self) -> str:
        return f'W/"hostmap-{self.generation}-{len(self.body)}"'


def _state(lifecycle: str, health: str) -> str:
    if lifecycle in RESTING:
        return "maintenance"
    return health if health in _CODE else Health.unknown.value


async def host_map(session: AsyncSession, cache: CountCache, tag: str | None) -> HostMap:
    generation = await repository.inventory_generation(session)

    async def build() -> HostMap:
        return HostMap(generation, *_encode(tag, await _rows(session, tag)))

    return await cache.get(f"hostmap:{tag or ''}", generation, build)


async def _rows(session: AsyncSession, tag: str | None) -> list[tuple[str | None, str, str]]:
    """(group, name, state) of every live server still in service, one
    scan (with the tag's rows joined by its index when grouping)."""
    group = ServerTag.value if tag else null().label("value")
    query = select(Server.name, Server.lifecycle, Server.health, group)
    if tag:
        query = query.outerjoin(
            ServerTag, and_(ServerTag.server_id == Server.id, ServerTag.key == tag)
        )
    query = query.where(
        Server.deleted_at.is_(None), Server.lifecycle != Lifecycle.decommissioned.value
    )
    connection = await session.connection()  # plain rows: no ORM objects per server
    return [
        (value, name, _state(lifecycle, health))
        for name, lifecycle, health, value in await connection.execute(query)
    ]


def _encode(tag: str | None, rows: list[tuple[str | None, str, str]]) -> tuple[bytes, bytes]:
    # Groups by value (untagged last); inside one, the worst first so trouble
    # sits at the top-left of its group, then by name so cells stay put.
    rows.sort(key=lambda r: (r[0] is None, r[0] or "", _CODE[r[2]], r[1].lower()))
    groups: list[tuple[str | None, dict[str, int]]] = []  # (value, cells per state)
    for group, _, state in rows:
        if not groups or groups[-1][0] != group:
            groups.append((group, dict.fromkeys(STATES, 0)))
        groups[-1][1][state] += 1
    document = {
        "total": len(rows),
        "tag": tag or None,
        "states": list(STATES),
        "groups": [
            {"name": name, "count": sum(states.values()), "states": states}
            for name, states in groups
        ],
        "names": [name for _, name, _ in rows],
        "cells": "".join(_CODE[state] for _, _, state in rows),
    }
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return body, gzip.compress(body, compresslevel=5)


async def tag_keys(session: AsyncSession, limit: int = 100) -> list[str]:
    """The tag keys in use, for the map's "group by" choice."""
    query = select(ServerTag.key).distinct().order_by(ServerTag.key).limit(limit)
    return [str(key) for key in await session.scalars(query)]

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

from sqlalchemy import and_, case, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.counts import CountCache
from infrawatch.inventory import repository
from infrawatch.inventory.lifecycle import RESTING, Lifecycle
from infrawatch.inventory.models import Server, ServerTag

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
        return HostMap(generation, *_encode(tag, await _rows(session, tag)))

    return await cache.get(f"hostmap:{tag or ''}", generation, build)


async def _rows(session: AsyncSession, tag: str | None) -> list[tuple[str | None, str, int]]:
    """(group, name, state code) of every live server still in service, in
    the map's order: by the tag's value (untagged last), the worst first
    inside a group so trouble sits at its top-left, then by name so cells
    stay put. One scan, sorted by the database: a sort of 100,000 tuples in
    Python cost as much as the query."""
    group = ServerTag.value if tag else null().label("value")
    code = case(
        (Server.lifecycle.in_([r.value for r in RESTING]), STATES.index("maintenance")),
        *[(Server.health == state, i) for i, state in enumerate(STATES) if state != "maintenance"],
        else_=STATES.index("unknown"),
    )
    query = select(group, Server.name, code)
    if tag:
        query = query.outerjoin(
            ServerTag, and_(ServerTag.server_id == Server.id, ServerTag.key == tag)
        )
    query = query.where(
        Server.deleted_at.is_(None), Server.lifecycle != Lifecycle.decommissioned.value
    ).order_by(group.is_(None), group, code, func.lower(Server.name))
    connection = await session.connection()  # plain rows: no ORM objects per server
    return [(value, name, int(state)) for value, name, state in await connection.execute(query)]


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
    """The tag keys in use, for the map's "group by" choice."""
    query = select(ServerTag.key).distinct().order_by(ServerTag.key).limit(limit)
    return [str(key) for key in await session.scalars(query)]

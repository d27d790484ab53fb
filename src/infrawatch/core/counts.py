"""Totals of list queries, cached under a generation number.

Counting 30,000 matches among 100,000 rows costs tens of milliseconds on
either engine, and a person paging through results, or a console refreshing
a view, asks for the same total again and again. A cached total is served
only while the data's generation number (read from the database, so every
replica agrees) is the one it was counted at."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class CountCache:
    def __init__(self, size: int = 512) -> None:
        self._entries: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._size = size
        self.hits = 0
        self.misses = 0

    async def get(self, key: str, generation: int, count: Callable[[], Awaitable[T]]) -> T:
        """`count` again only if the generation moved since it was counted
        (a total, or any other figure of the same data)."""
        cached = self._entries.get(key)
        if cached is not None and cached[0] == generation:
            self._entries.move_to_end(key)
            self.hits += 1
            found: T = cached[1]
            return found
        self.misses += 1
        total = await count()
        self._entries[key] = (generation, total)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return total

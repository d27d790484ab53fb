"""Lookups every editable alerting object shares: by id (404 naming what
was asked for), and a name not taken yet (409)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository
from infrawatch.core.errors import Conflict, NotFound


async def require(session: AsyncSession, model: Any, row_id: uuid.UUID, what: str) -> Any:
    row = await repository.get(session, model, row_id)
    if row is None:
        raise NotFound(f"no such {what}")
    return row


async def name_free(session: AsyncSession, model: Any, name: str, what: str) -> None:
    if await repository.by_name(session, model, name) is not None:
        raise Conflict(f"a {what} named {name!r} already exists")

"""Keyset pagination with an opaque cursor, and the sort parameter parser.

A cursor holds the sort-key values of the last row served, so a page picks up
after that row even while rows are inserted or deleted in front of it (an
OFFSET would skip or repeat rows)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, or_

from infrawatch.core.errors import InvalidInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class SortKey:
    name: str
    column: ColumnElement[Any]
    descending: bool = False


def parse_sort(
    raw: str | None, allowed: Mapping[str, ColumnElement[Any]], default: str, tiebreak: str = "id"
) -> list[SortKey]:
    """`-created_at,name` → sort keys, always ending on a unique tiebreak."""
    keys: list[SortKey] = []
    for part in (raw or default).split(","):
        part = part.strip()
        if not part:
            continue
        descending = part.startswith("-")
        name = part.lstrip("-+")
        if name not in allowed:
            raise InvalidInput(
                f"cannot sort by {name!r}; sortable fields: {', '.join(sorted(allowed))}",
                loc=("query", "sort"),
            )
        if any(k.name == name for k in keys):
            continue
        keys.append(SortKey(name, allowed[name], descending))
    if not any(k.name == tiebreak for k in keys):
        keys.append(SortKey(tiebreak, allowed[tiebreak], keys[-1].descending if keys else False))
    return keys


def order_by(keys: Sequence[SortKey]) -> list[ColumnElement[Any]]:
    return [k.column.desc() if k.descending else k.column.asc() for k in keys]


def after_cursor(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in the order given by `keys`:
    a > x OR (a = x AND (b > y OR (b = y AND ...)))."""
    condition: ColumnElement[bool] | None = None
    for key, value in reversed(list(zip(keys, values, strict=True))):
        beyond = key.column < value if key.descending else key.column > value
        condition = (
            beyond if condition is None else or_(beyond, and_(key.column == value, condition))
        )
    assert condition is not None
    return condition


def before_id(cursor: str | None) -> int | None:
    """An id cursor, for tables read newest first whose ids only grow
    (audit records, results): the last id served. Digits only, and short
    enough for a 64-bit id, so a crafted one is a 422, not a database error."""
    if not cursor:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidInput("the cursor is not one this server issued", loc=("query", "cursor"))
    return int(cursor)


def next_id_cursor(rows: Sequence[Any], limit: int) -> str | None:
    """`rows` read with limit + 1: the cursor of the next page, if any."""
    return str(rows[limit - 1].id) if len(rows) > limit else None


def encode_cursor(keys: Sequence[SortKey], values: Sequence[Any]) -> str:
    payload = {
        "k": [("-" if k.descending else "") + k.name for k in keys],
        "v": [_encode_value(v) for v in values],
    }
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


# A cursor this server issues is a few hundred bytes; a longer one is not
# ours, and refusing it early keeps a crafted one from costing parse time.
MAX_CURSOR_LENGTH = 2048


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("cursor too long")
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        names = payload["k"]
        values = [_decode_value(v) for v in payload["v"]]
    # RecursionError: json nested deep enough to exhaust the parser's stack.
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise InvalidInput(
            "the cursor is not one this server issued", loc=("query", "cursor")
        ) from exc
    expected = [("-" if k.descending else "") + k.name for k in keys]
    if names != expected or len(values) != len(keys):
        raise InvalidInput(
            "the cursor belongs to a different sort order; start again without a cursor",
            loc=("query", "cursor"),
        )
    # The cursor came from outside: each value must have its column's type
    # before it goes near a query.
    for key, value in zip(keys, values, strict=True):
        if not _fits(key.column, value):
            raise InvalidInput("the cursor is not one this server issued", loc=("query", "cursor"))
    return values


def _fits(column: ColumnElement[Any], value: Any) -> bool:
    try:
        expected = column.type.python_type
    except NotImplementedError:
        return isinstance(value, str)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31
    if expected is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    return isinstance(value, expected)


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": value.hex}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return {"s": str(value)}


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "dt" in value:
            return datetime.fromisoformat(value["dt"])
        if "u" in value:
            return uuid.UUID(value["u"])
        if "s" in value:
            return str(value["s"])
        raise ValueError("unknown cursor value")
    return value

"""The inventory search language, parsed into terms (no SQL here).

    web-* lifecycle:active health:!healthy tag:env=prod tag:role region:eu-*
    group:edge created:>2026-01-01 ssh_port:>=2200 "free text"

Terms are AND-ed; `!` before a term or a value negates it; `*` globs (case
does not matter); other values match exactly. A bare word with * globs the
name; other bare words and quoted text are searched for in name, hostname, IP
and description.
Errors say where (a 0-based character position) and why."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from infrawatch.inventory.lifecycle import Health, Lifecycle

MAX_QUERY_LENGTH = 2000
MAX_TERMS = 50

TEXT_FIELDS = (
    "name",
    "hostname",
    "ip_address",
    "provider",
    "region",
    "os",
    "environment",
    "owner",
    "description",
)
ALIASES = {"ip": "ip_address", "env": "environment"}
ENUM_FIELDS: dict[str, tuple[str, ...]] = {
    "lifecycle": tuple(x.value for x in Lifecycle),
    "health": tuple(x.value for x in Health),
}
DATE_FIELDS = ("created", "updated")
NUMBER_FIELDS = ("ssh_port",)
FIELDS = (*TEXT_FIELDS, *ENUM_FIELDS, *DATE_FIELDS, *NUMBER_FIELDS, "tag", "group", "id")

Operator = Literal["=", ">", ">=", "<", "<="]


class SearchError(ValueError):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})")
        self.reason = message
        self.position = position


@dataclass(frozen=True)
class TextMatch:
    field: str  # a column name from TEXT_FIELDS, or lifecycle/health
    value: str  # may contain * globs
    negated: bool = False


@dataclass(frozen=True)
class TagMatch:
    key: str
    value: str | None  # None: the key is present, whatever its value
    negated: bool = False


@dataclass(frozen=True)
class GroupMatch:
    name: str  # may contain * globs
    negated: bool = False


@dataclass(frozen=True)
class Comparison:
    field: str  # created_at, updated_at, ssh_port
    op: Operator
    value: datetime | int
    upper: datetime | None = None  # `created:2026-01-01` means that whole day
    negated: bool = False


@dataclass(frozen=True)
class IdMatch:
    value: uuid.UUID
    negated: bool = False


@dataclass(frozen=True)
class FreeText:
    text: str
    glob_names: bool  # a bare word with * globs the name
    negated: bool = False


Term = TextMatch | TagMatch | GroupMatch | Comparison | IdMatch | FreeText

_FIELD_PREFIX = re.compile(r"([a-z_]+):")
TAG_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$")
_OPERATOR = re.compile(r"^(>=|<=|>|<|=)")


def parse(query: str) -> list[Term]:
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchError(
            f"the query is longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH
        )
    if "\x00" in query:
        raise SearchError("NUL characters are not allowed", query.index("\x00"))
    terms: list[Term] = []
    pos = 0
    while pos < len(query):
        if query[pos].isspace():
            pos += 1
            continue
        term, pos = _parse_term(query, pos)
        terms.append(term)
        if len(terms) > MAX_TERMS:
            raise SearchError(f"more than {MAX_TERMS} terms", pos)
    return terms


def _read_value(query: str, pos: int) -> tuple[str, bool, int]:
    """A bare run up to whitespace, or a double-quoted string. Returns
    (text, was_quoted, next position)."""
    if pos < len(query) and query[pos] == '"':
        end = query.find('"', pos + 1)
        if end == -1:
            raise SearchError("unterminated quote", pos)
        return query[pos + 1 : end], True, end + 1
    end = pos
    while end < len(query) and not query[end].isspace():
        if query[end] == '"':
            raise SearchError("a quote must start a value", end)
        end += 1
    return query[pos:end], False, end


def _parse_term(query: str, start: int) -> tuple[Term, int]:
    pos = start
    negated = False
    if query[pos] == "!":
        negated, pos = True, pos + 1
    if pos >= len(query) or query[pos].isspace():
        raise SearchError("'!' must be followed by a term", start)
    field_match = _FIELD_PREFIX.match(query, pos)
    if field_match is None or query[pos] == '"':
        text, quoted, end = _read_value(query, pos)
        if not text.strip():
            raise SearchError("empty search text", pos)
        return FreeText(text, glob_names=not quoted and "*" in text, negated=negated), end
    field = ALIASES.get(field_match.group(1), field_match.group(1))
    value_pos = field_match.end()
    if field not in FIELDS:
        raise SearchError(
            f"unknown field {field_match.group(1)!r}; known fields: {', '.join(sorted(FIELDS))}",
            pos,
        )
    if value_pos < len(query) and query[value_pos] == "!":
        negated, value_pos = not negated, value_pos + 1
    raw, _quoted, end = _read_value(query, value_pos)
    if raw == "":
        raise SearchError(f"{field}: needs a value", value_pos)
    return _field_term(field, raw, negated, value_pos), end


def _field_term(field: str, raw: str, negated: bool, pos: int) -> Term:
    if field in TEXT_FIELDS:
        return TextMatch(field, raw, negated)
    if field in ENUM_FIELDS:
        allowed = ENUM_FIELDS[field]
        if raw not in allowed:
            raise SearchError(f"{field} must be one of {', '.join(allowed)}; got {raw!r}", pos)
        return TextMatch(field, raw, negated)
    if field == "tag":
        key, has_value, value = raw.partition("=")
        if not TAG_KEY.match(key):
            raise SearchError(f"invalid tag key {key!r}", pos)
        return TagMatch(key, value if has_value else None, negated)
    if field == "group":
        return GroupMatch(raw, negated)
    if field == "id":
        try:
            return IdMatch(uuid.UUID(raw), negated)
        except ValueError:
            raise SearchError(f"id: {raw!r} is not a UUID", pos) from None
    op, operand = _split_operator(raw)
    if field in NUMBER_FIELDS:
        if not operand.isdigit() or len(operand) > 9:
            raise SearchError(f"{field}: expected a number, got {operand!r}", pos)
        return Comparison(field, op, int(operand), negated=negated)
    column = f"{field}_at"
    moment, day_end = _parse_moment(operand, field, pos)
    if op == "=" and day_end is not None:
        return Comparison(column, ">=", moment, upper=day_end, negated=negated)
    if op in (">", "<=") and day_end is not None:
        # `created:>2026-01-01` means after that day, not after its midnight.
        return Comparison(column, ">=" if op == ">" else "<", day_end, negated=negated)
    return Comparison(column, op, moment, negated=negated)


def _split_operator(raw: str) -> tuple[Operator, str]:
    match = _OPERATOR.match(raw)
    if match is None:
        return "=", raw
    op: Operator = match.group(1)  # type: ignore[assignment]
    return op, raw[match.end() :]


def _parse_moment(text: str, field: str, pos: int) -> tuple[datetime, datetime | None]:
    """A date (the whole day, UTC) or an ISO timestamp."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start, datetime.fromordinal(day.toordinal() + 1).replace(tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SearchError(f"{field}: expected a date like 2026-01-31, got {text!r}", pos) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), None

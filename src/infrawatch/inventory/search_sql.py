"""Search terms → one SQLAlchemy condition on `servers`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.inventory import repository, search
from infrawatch.inventory.models import Group, Server, ServerGroup, ServerTag

# A dynamic group's query may name other groups; this bounds the nesting and
# catches a group that (through others) contains itself.
MAX_GROUP_NESTING = 5


class GroupQueryError(ValueError):
    pass


# SQLite: an FTS5 trigram index over these columns (migration 0001) answers
# substring searches without reading every row. It needs 3 characters.
SQLITE_SEARCH_TABLE = "servers_search"
TRIGRAM = 3


def glob_to_like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _like(column: Any, pattern: str, dialect: str) -> ColumnElement[bool]:
    # SQLite's LIKE already ignores ASCII case; lower() on both sides would
    # only cost time. PostgreSQL needs ILIKE (and its trigram indexes serve it).
    condition: ColumnElement[bool] = (
        column.like(pattern, escape="\\")
        if dialect == "sqlite"
        else column.ilike(pattern, escape="\\")
    )
    return condition


def _text_condition(column: Any, value: str, dialect: str) -> ColumnElement[bool]:
    if "*" in value:
        return _like(column, glob_to_like(value), dialect)
    equal: ColumnElement[bool] = column == value
    return equal


def _name_glob(value: str, dialect: str) -> ColumnElement[bool]:
    """A name glob, plus the range its literal prefix spans on the
    lower(name) index, so `web-*` reads the web- servers, not all of them.
    Only for ASCII prefixes: both engines lower-case ASCII the same way."""
    condition = _like(Server.name, glob_to_like(value), dialect)
    prefix = value.split("*", 1)[0].lower()
    if not prefix or not prefix.isascii():
        return condition
    key = repository.name_key(dialect)
    beyond = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(key >= prefix, key < beyond, condition)


def _negate(condition: ColumnElement[bool], nullable_column: Any = None) -> ColumnElement[bool]:
    # NOT (NULL LIKE 'x') is NULL, which would hide servers that simply have
    # no value; "region is not eu-*" should include servers with no region.
    if nullable_column is not None:
        return or_(nullable_column.is_(None), not_(condition))
    return not_(condition)


def _free_text(term: search.FreeText, dialect: str, *, null_safe: bool) -> ColumnElement[bool]:
    if dialect == "sqlite" and not term.glob_names and len(term.text) >= TRIGRAM:
        phrase = '"' + term.text.replace('"', '""') + '"'
        matching: Select[tuple[Any]] = (
            select(literal_column("rowid"))
            .select_from(text(SQLITE_SEARCH_TABLE))
            .where(literal_column(SQLITE_SEARCH_TABLE).op("MATCH")(phrase))
        )
        return literal_column("servers.rowid").in_(matching)

    # Negated, NULL columns must read as "" or NOT(...) would drop the row.
    def col(column: Any) -> Any:
        return func.coalesce(column, "") if null_safe and column.nullable else column

    if term.glob_names:
        return _name_glob(term.text, dialect)
    pattern = f"%{glob_to_like(term.text)}%"
    columns = (Server.name, Server.hostname, Server.ip_address, Server.description)
    return or_(*(_like(col(c), pattern, dialect) for c in columns))


def _tag(term: search.TagMatch, dialect: str, counting: bool) -> ColumnElement[bool]:
    conditions = [ServerTag.key == term.key]
    if term.value is not None:
        conditions.append(_text_condition(ServerTag.value, term.value, dialect))
    return _member(
        Server.id, select(ServerTag.server_id).where(*conditions), ServerTag.server_id, counting
    )


def _member(
    server_id: Any, matching: Select[Any], matching_id: Any, counting: bool
) -> ColumnElement[bool]:
    """A page walks a few hundred servers in order: a correlated EXISTS probes
    the index once for each. A count visits all of them: IN (subquery) reads
    the matching set once. (PostgreSQL plans both as semi-joins.)"""
    condition: ColumnElement[bool] = (
        server_id.in_(matching) if counting else matching.where(matching_id == server_id).exists()
    )
    return condition


def _comparison(term: search.Comparison) -> ColumnElement[bool]:
    column = getattr(Server, term.field)
    ops = {
        "=": column == term.value,
        ">": column > term.value,
        ">=": column >= term.value,
        "<": column < term.value,
        "<=": column <= term.value,
    }
    condition: ColumnElement[bool] = ops[term.op]
    if term.upper is not None:
        condition = and_(condition, column < term.upper)
    return condition


async def _group(
    session: AsyncSession, term: search.GroupMatch, trail: tuple[str, ...], counting: bool
) -> ColumnElement[bool]:
    groups = await repository.groups_where(
        session, _text_condition(Group.name, term.name, session.get_bind().dialect.name)
    )
    static_ids = [g.id for g in groups if g.query is None]
    members: list[ColumnElement[bool]] = []
    if static_ids:
        in_groups = select(ServerGroup.server_id).where(ServerGroup.group_id.in_(static_ids))
        members.append(_member(Server.id, in_groups, ServerGroup.server_id, counting))
    for group in groups:
        if group.query is None:
            continue
        if group.name in trail:
            raise GroupQueryError(
                f"group {group.name!r} contains itself through {' → '.join(trail)}"
            )
        if len(trail) >= MAX_GROUP_NESTING:
            raise GroupQueryError(f"groups nest deeper than {MAX_GROUP_NESTING} levels")
        members.append(
            await compile_query(session, group.query, (*trail, group.name), counting=counting)
        )
    return or_(*members) if members else false()


async def compile_terms(
    session: AsyncSession,
    terms: Sequence[search.Term],
    trail: tuple[str, ...] = (),
    *,
    counting: bool = False,
) -> ColumnElement[bool]:
    dialect = session.get_bind().dialect.name
    conditions: list[ColumnElement[bool]] = []
    for term in terms:
        condition: ColumnElement[bool]
        nullable: Any = None
        match term:
            case search.TextMatch(field="name", value=value) if "*" in value:
                condition = _name_glob(value, dialect)
            case search.TextMatch(field=field, value=value):
                column = getattr(Server, field)
                condition = _text_condition(column, value, dialect)
                nullable = column if column.nullable else None
            case search.TagMatch():
                condition = _tag(term, dialect, counting)
            case search.GroupMatch():
                condition = await _group(session, term, trail, counting)
            case search.Comparison():
                condition = _comparison(term)
            case search.IdMatch(value=value):
                condition = Server.id == value
            case search.FreeText():
                condition = _free_text(term, dialect, null_safe=term.negated)
        conditions.append(_negate(condition, nullable) if term.negated else condition)
    return and_(true(), *conditions)


async def compile_query(
    session: AsyncSession, query: str, trail: tuple[str, ...] = (), *, counting: bool = False
) -> ColumnElement[bool]:
    return await compile_terms(session, search.parse(query), trail, counting=counting)

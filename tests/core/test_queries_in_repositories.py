"""Queries run only in a domain's repository.py: a reader looking for what
a domain asks of the database finds all of it in one file, and a service
cannot grow a query nobody reviews for its indexes."""

from __future__ import annotations

import ast
from pathlib import Path

import infrawatch

SOURCE = Path(infrawatch.__file__).parent
# Infrastructure, not domains: the database layer itself, schema migrations.
NOT_DOMAINS = {"core", "migrations"}
RUNS_A_QUERY = {"execute", "scalars", "scalar", "stream", "stream_scalars", "exec_driver_sql"}
# Not our database: the Uptime Kuma importer reads Kuma's own SQLite file
# (read-only, with the standard library), and all of that is in this file.
OTHER_DATABASES = {Path("fleet/kuma/reader.py")}


def _queries_outside_repositories() -> list[str]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if (
            relative.parts[0] in NOT_DOMAINS
            or path.name == "repository.py"
            or relative in OTHER_DATABASES
        ):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in RUNS_A_QUERY
            ):
                found.append(f"{relative}:{node.lineno} .{node.func.attr}()")
    return found


def test_queries_run_only_in_repository_modules() -> None:
    assert _queries_outside_repositories() == []


def test_the_check_sees_a_query_where_one_is() -> None:
    # The walk above must recognise a query when it meets one.
    sample = ast.parse("async def f(session):\n    await session.scalars(q)\n")
    calls = [
        n.func.attr
        for n in ast.walk(sample)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    ]
    assert set(calls) & RUNS_A_QUERY == {"scalars"}

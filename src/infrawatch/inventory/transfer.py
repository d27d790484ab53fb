"""Import (create-or-update by name, with a dry run) and export, CSV/YAML/JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.context import OperationContext
from infrawatch.core.errors import Conflict, InvalidInput
from infrawatch.core.validation import plain_message
from infrawatch.inventory import groups, repository, service
from infrawatch.inventory.lifecycle import check_transition
from infrawatch.inventory.schemas import (
    GroupCreate,
    ImportReport,
    ImportRowReport,
    ServerCreate,
    ServerOut,
    ServerUpdate,
)

Format = Literal["csv", "yaml", "json"]
Progress = Callable[[int, int], None]

COLUMNS = (
    *(field for field in service.SCALAR_FIELDS if field != "attributes"),
    "lifecycle",
    "tags",
    "groups",
    "attributes",
)
EXPORT_BATCH = 1000


class RowError(ValueError):
    pass


# --- parsing ------------------------------------------------------------------


def _csv_tags(text: str) -> dict[str, str]:
    tags = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, value = part.partition("=")
        if not key.strip():
            raise RowError(f"tags: {part!r} has no key (write key=value; key2=value2)")
        tags[key.strip()] = value.strip() if sep else ""
    return tags


def _csv_row(raw: dict[str | None, Any]) -> dict[str, Any]:
    if None in raw:
        raise RowError("more cells than columns in the header")
    row: dict[str, Any] = {}
    for column, cell in raw.items():
        assert column is not None
        text = (cell or "").strip()
        if column == "tags":
            row["tags"] = _csv_tags(text)
        elif column == "groups":
            row["groups"] = [g.strip() for g in text.split(";") if g.strip()]
        elif column == "attributes":
            try:
                row["attributes"] = json.loads(text) if text else {}
            except json.JSONDecodeError as exc:
                raise RowError(f"attributes: not valid JSON ({exc.msg})") from None
        elif column in ("ssh_port", "lifecycle"):
            if text:  # an empty cell keeps the default (or the current value)
                row[column] = text
        else:
            row[column] = text or None
    return row


def parse(body: bytes, fmt: Format) -> list[dict[str, Any] | RowError]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", loc=("body",)) from None
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        unknown = [c for c in header if c not in COLUMNS]
        if "name" not in header or unknown:
            problem = f"unknown columns: {', '.join(unknown)}" if unknown else "no 'name' column"
            raise InvalidInput(f"{problem}; columns are {', '.join(COLUMNS)}", loc=("body",))
        rows: list[dict[str, Any] | RowError] = []
        try:
            for raw in reader:
                try:
                    rows.append(_csv_row(raw))
                except RowError as exc:
                    rows.append(exc)
        except csv.Error as exc:
            raise InvalidInput(f"CSV line {reader.line_num}: {exc}", loc=("body",)) from None
        return rows
    try:
        document = yaml.safe_load(text) if fmt == "yaml" else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"not valid {fmt.upper()}: {exc}", loc=("body",)) from None
    if isinstance(document, dict) and "servers" in document:
        document = document["servers"]
    if not isinstance(document, list):
        raise InvalidInput(
            "expected a list of servers (or a mapping with a 'servers' list)", loc=("body",)
        )
    return [
        item if isinstance(item, dict) else RowError("each entry must be a mapping of fields")
        for item in document
    ]


# --- planning -----------------------------------------------------------------


async def _dynamic_group_names(session: AsyncSession) -> set[str]:
    return {g.name for g in await repository.dynamic_groups(session)}


def _messages(exc: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {plain_message(dict(e))}"
        for e in exc.errors()
    ]


@dataclass
class Plan:
    rows: list[ImportRowReport]
    creates: list[dict[str, Any]]
    updates: list[tuple[Any, dict[str, Any]]]
    new_groups: set[str]


async def plan(
    session: AsyncSession,
    rows: list[dict[str, Any] | RowError],
    *,
    create_groups: bool = False,
    progress: Progress | None = None,
) -> Plan:
    """Decide every row without writing. Groups a row names that do not
    exist are an error, or with `create_groups` made as static groups."""
    names = [
        r["name"].strip() for r in rows if isinstance(r, dict) and isinstance(r.get("name"), str)
    ]
    existing = await repository.live_servers_by_name(session, names)
    shown = {s.id: s for s in await service.present(session, list(existing.values()))}
    reports: list[ImportRowReport] = []
    creates: list[dict[str, Any]] = []
    updates: list[tuple[Any, dict[str, Any]]] = []
    seen: set[str] = set()
    known_groups: set[str] = set()
    new_groups: set[str] = set()
    dynamic = await _dynamic_group_names(session)
    for number, row in enumerate(rows, start=1):
        if progress and (number % 100 == 0 or number == len(rows)):
            progress(number, len(rows))
        name = row.get("name") if isinstance(row, dict) else None
        report = ImportRowReport(
            row=number, name=name if isinstance(name, str) else None, action="error"
        )
        reports.append(report)
        if isinstance(row, RowError):
            report.errors.append(str(row))
            continue
        try:
            created = ServerCreate.model_validate(row)
        except ValidationError as exc:
            report.errors.extend(_messages(exc))
            continue
        report.name = created.name
        if created.name in seen:
            report.errors.append(f"name: {created.name!r} appears on an earlier row too")
            continue
        seen.add(created.name)
        unseen = set(created.groups) - known_groups - new_groups
        if unseen:
            found = await repository.groups_by_name(session, sorted(unseen))
            problem = _group_problem(found, unseen, create_groups)
            if problem is not None:
                report.errors.append(f"groups: {problem}")
                continue
            known_groups |= set(found)
            new_groups |= unseen - set(found)
        current = existing.get(created.name)
        if current is None:
            report.action = "create"
            creates.append(created.model_dump())
            continue
        try:
            patch = ServerUpdate.model_validate({k: v for k, v in row.items() if k != "name"})
        except ValidationError as exc:
            report.errors.extend(_messages(exc))
            continue
        changes = patch.model_dump(exclude_unset=True)
        before = shown[current.id].model_dump()
        before["groups"] = [g for g in before["groups"] if g not in dynamic]
        differing = {k: v for k, v in changes.items() if before.get(k) != v}
        if "lifecycle" in differing:
            try:
                check_transition(current.lifecycle, differing["lifecycle"], current.name)
            except Conflict as exc:
                report.errors.append(f"lifecycle: {exc.message}")
                continue
        report.action = "update" if differing else "unchanged"
        report.changes = sorted(differing)
        if differing:
            updates.append((current.id, differing))
    return Plan(reports, creates, updates, new_groups)


def _group_problem(found: dict[str, Any], names: set[str], create: bool) -> str | None:
    dynamic = sorted(n for n, g in found.items() if g.query is not None)
    if dynamic:
        return f"group {dynamic[0]!r} is dynamic: its members come from its query"
    missing = sorted(names - set(found))
    if missing and not create:
        return f"no such group: {', '.join(missing)} (import with create_groups to make them)"
    return None


async def import_servers(
    session: AsyncSession,
    ctx: OperationContext,
    body: bytes,
    fmt: Format,
    *,
    dry_run: bool,
    max_rows: int,
    create_groups: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """All or nothing. `progress(done, total)`: rows checked, then (not in a
    dry run) rows written, on one count whose total grows by the writes
    once the rows are checked."""
    rows = parse(body, fmt)
    if len(rows) > max_rows:
        raise InvalidInput(f"{len(rows)} rows; at most {max_rows} in one import", loc=("body",))
    decided = await plan(session, rows, create_groups=create_groups, progress=progress)
    reports, creates, updates = decided.rows, decided.creates, decided.updates
    failed = [r for r in reports if r.action == "error"]
    if failed and not dry_run:
        errors = [
            {
                "loc": ["body", r.row, "name" if r.name is None else r.name],
                "msg": message,
                "type": "import_row",
            }
            for r in failed
            for message in r.errors
        ]
        raise InvalidInput(f"{len(failed)} bad rows; nothing was imported", errors=errors)
    if not dry_run:
        for name in sorted(decided.new_groups):
            await groups.create_group(session, ctx, GroupCreate(name=name))
        checked = len(rows)
        done, total = checked, checked + len(creates) + len(updates)
        for start in range(0, len(creates), 1000):
            batch = creates[start : start + 1000]
            await service.create_servers(session, ctx, batch)
            done += len(batch)
            if progress:
                progress(done, total)
        for server_id, changes in updates:
            await service.update_server(session, ctx, server_id, changes)
            done += 1
            if progress and (done % 100 == 0 or done == total):
                progress(done, total)
    count = {
        action: sum(1 for r in reports if r.action == action)
        for action in ("create", "update", "unchanged", "error")
    }
    return ImportReport(
        dry_run=dry_run,
        request_id=ctx.request_id,
        created=count["create"],
        updated=count["update"],
        unchanged=count["unchanged"],
        errors=count["error"],
        groups_created=sorted(decided.new_groups),
        rows=reports,
    )


# --- export -------------------------------------------------------------------


async def export_servers(
    session: AsyncSession,
    filters: service.ServerFilters,
    fmt: Format,
    progress: Progress | None = None,
) -> str:
    condition = await service.filter_condition(session, filters)
    servers = await repository.all_servers(session, condition)
    dynamic = await _dynamic_group_names(session)
    shown: list[ServerOut] = []
    for start in range(0, len(servers), EXPORT_BATCH):
        shown.extend(await service.present(session, servers[start : start + EXPORT_BATCH]))
        if progress:
            progress(len(shown), len(servers))
    # Only static memberships: dynamic ones follow from the data on re-import.
    records = [
        {
            **s.model_dump(mode="json", include=set(COLUMNS)),
            "groups": [g for g in s.groups if g not in dynamic],
        }
        for s in shown
    ]
    if fmt == "json":
        return json.dumps({"servers": records}, indent=2)
    if fmt == "yaml":
        return yaml.safe_dump({"servers": records}, sort_keys=False, allow_unicode=True)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                **{k: "" if v is None else v for k, v in record.items()},
                "tags": ";".join(f"{k}={v}" for k, v in record["tags"].items()),
                "groups": ";".join(record["groups"]),
                "attributes": json.dumps(record["attributes"]) if record["attributes"] else "",
            }
        )
    return out.getvalue()

"""An Uptime Kuma SQLite database, read (never written: it is opened
read-only, so pointing the importer at a live Kuma does it no harm).

Kuma 1.x keeps its schema in the template database it ships and a list of
SQL patches; 2.x adds knex migrations on top (their names are in
`knex_migrations`). Columns added by later versions are read when present,
so one reader serves both."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infrawatch.core.errors import InvalidInput

Row = dict[str, Any]


@dataclass
class KumaData:
    version: str  # "1.x" or "2.x (… newest migration)"
    monitors: list[Row]
    notifications: list[Row]
    monitor_notifications: list[Row]
    tags: list[Row]
    monitor_tags: list[Row]
    status_pages: list[Row]
    page_groups: list[Row]
    group_monitors: list[Row]
    maintenances: list[Row]
    maintenance_monitors: list[Row]
    settings: dict[str, Any] = field(default_factory=dict)


REQUIRED = ("monitor", "notification", "monitor_notification")


def read(path: Path) -> KumaData:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file", loc=("path",))
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InvalidInput(f"{path}: cannot be opened ({exc})", loc=("path",)) from None
    db.row_factory = sqlite3.Row
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        db.close()
        raise InvalidInput(f"{path}: not an SQLite database ({exc})", loc=("path",)) from None
    try:
        missing = [t for t in REQUIRED if t not in tables]
        if missing:
            raise InvalidInput(
                f"{path}: not an Uptime Kuma database (no table {', '.join(missing)})",
                loc=("path",),
            )

        def rows(table: str, order: str = "id") -> list[Row]:
            if table not in tables:
                return []
            # Table and order are this module's own constants, never input.
            query = f'SELECT * FROM "{table}" ORDER BY {order}'  # noqa: S608
            return [dict(r) for r in db.execute(query)]

        version = "1.x"
        if "knex_migrations" in tables:
            newest = db.execute("SELECT name FROM knex_migrations ORDER BY id DESC LIMIT 1")
            last = newest.fetchone()
            version = f"2.x (migration {last[0]})" if last else "2.x"
        settings = {
            r["key"]: r["value"] for r in rows("setting") if r.get("key") and r.get("value")
        }
        return KumaData(
            version=version,
            monitors=rows("monitor"),
            notifications=rows("notification"),
            monitor_notifications=rows("monitor_notification"),
            tags=rows("tag"),
            monitor_tags=rows("monitor_tag"),
            status_pages=rows("status_page"),
            page_groups=rows("group", "status_page_id, weight, id"),
            group_monitors=rows("monitor_group", "group_id, weight, id"),
            maintenances=rows("maintenance"),
            maintenance_monitors=rows("monitor_maintenance"),
            settings=settings,
        )
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path}: could not be read ({exc})", loc=("path",)) from None
    finally:
        db.close()

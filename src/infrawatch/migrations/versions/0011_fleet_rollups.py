"""fleet rollups: all monitors' checks and state changes per bucket, for the
overview's fleet chart and timelines

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:40:00
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import infrawatch.core.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

HISTOGRAM = [f"h{i}" for i in range(11)]
GRANULARITIES = (300, 3600, 86400)
ADDITIVE = ["count", "up", "down", "degraded", "latency_sum", *HISTOGRAM]


def upgrade() -> None:
    fleet = op.create_table(
        "fleet_rollups",
        sa.Column("granularity", sa.Integer(), nullable=False),
        sa.Column("bucket_start", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("up", sa.Integer(), nullable=False),
        sa.Column("down", sa.Integer(), nullable=False),
        sa.Column("degraded", sa.Integer(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("went_down", sa.Integer(), nullable=False),
        sa.Column("went_degraded", sa.Integer(), nullable=False),
        sa.Column("recovered", sa.Integer(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in HISTOGRAM],
        sa.PrimaryKeyConstraint("granularity", "bucket_start", name=op.f("pk_fleet_rollups")),
    )
    _backfill(fleet)


def _backfill(fleet: sa.Table) -> None:
    """The history an upgraded installation already has: checks from the
    per-monitor rollups (one grouped INSERT … SELECT), state changes from
    the transitions (bucketed here: date arithmetic differs per engine)."""
    bind = op.get_bind()
    rollups = sa.table(
        "monitor_rollups",
        sa.column("granularity", sa.Integer()),
        sa.column("bucket_start", infrawatch.core.db.UTCDateTime(timezone=True)),
        *[sa.column(name) for name in ADDITIVE],
    )
    totals = sa.select(
        rollups.c.granularity,
        rollups.c.bucket_start,
        *[sa.func.sum(rollups.c[name]) for name in ADDITIVE],
        sa.literal(0),
        sa.literal(0),
        sa.literal(0),
    ).group_by(rollups.c.granularity, rollups.c.bucket_start)
    bind.execute(
        fleet.insert().from_select(
            ["granularity", "bucket_start", *ADDITIVE, "went_down", "went_degraded", "recovered"],
            totals,
        )
    )
    transitions = sa.table(
        "monitor_transitions",
        sa.column("kind", sa.String()),
        sa.column("from_state", sa.String()),
        sa.column("to_state", sa.String()),
        sa.column("at", infrawatch.core.db.UTCDateTime(timezone=True)),
    )
    changes: Counter[tuple[int, datetime, str]] = Counter()
    query = sa.select(transitions.c.from_state, transitions.c.to_state, transitions.c.at).where(
        transitions.c.kind == "state"
    )
    for from_state, to_state, at in bind.execute(query):
        column = _change_column(from_state, to_state)
        if column is None:
            continue
        seconds = int(at.timestamp())
        for granularity in GRANULARITIES:
            start = datetime.fromtimestamp(seconds - seconds % granularity, tz=UTC)
            changes[(granularity, start, column)] += 1
    key = sa.and_(
        fleet.c.granularity == sa.bindparam("g"), fleet.c.bucket_start == sa.bindparam("b")
    )
    for (granularity, start, column), n in changes.items():
        updated = bind.execute(
            fleet.update().where(key).values({column: fleet.c[column] + n}),
            {"g": granularity, "b": start},
        )
        if updated.rowcount == 0:
            row: dict[str, object] = dict.fromkeys(ADDITIVE, 0)
            row.update(went_down=0, went_degraded=0, recovered=0)
            row.update(granularity=granularity, bucket_start=start)
            row[column] = n
            bind.execute(fleet.insert(), row)


def _change_column(from_state: str, to_state: str) -> str | None:
    # The same rule as rollups.change_column (a migration keeps its own copy:
    # it must not change when the code does).
    if to_state == "down":
        return "went_down"
    if to_state == "degraded":
        return "went_degraded"
    if to_state == "up" and from_state in ("down", "degraded"):
        return "recovered"
    return None


def downgrade() -> None:
    op.drop_table("fleet_rollups")

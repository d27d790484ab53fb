"""raw results packed into the 5-minute rollup rows (13 bytes a check instead
of a row of its own); hourly and daily rows derived from them, with marks
for the hours still to derive

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 18:20:00
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from itertools import groupby

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite

import infrawatch.core.db
from infrawatch.monitoring.rollups import aggregate
from infrawatch.monitoring.rows import ResultRow
from infrawatch.monitoring.samples import pack

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

FIVE_MINUTES = 300
log = logging.getLogger("alembic.runtime.migration")
HISTOGRAM = [f"h{i}" for i in range(11)]
When = infrawatch.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("monitor_rollups") as batch:
        batch.add_column(sa.Column("samples", sa.LargeBinary(), nullable=True))
    op.create_table(
        "rollup_marks",
        sa.Column("hour_start", When, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour_start", name=op.f("pk_rollup_marks")),
    )
    _move_results()
    op.drop_table("monitor_results")


def _move_results() -> None:
    """Each monitor's stored results into the samples of their 5-minute
    rows (which the old writer upserted with them, so they exist unless
    something deleted them by hand; then they are made again)."""
    bind = op.get_bind()
    results = sa.table(
        "monitor_results",
        sa.column("id", sa.BigInteger()),
        sa.column("monitor_id", sa.Uuid()),
        sa.column("checked_at", When),
        sa.column("outcome", sa.String()),
        sa.column("state", sa.String()),
        sa.column("streak", sa.Integer()),
        sa.column("latency_ms", sa.Float()),
        sa.column("status_code", sa.Integer()),
        sa.column("error", sa.Text()),
        sa.column("details", sa.JSON()),
        sa.column("location", sa.String()),
    )
    rollups = sa.table(
        "monitor_rollups",
        sa.column("monitor_id", sa.Uuid()),
        sa.column("granularity", sa.Integer()),
        sa.column("bucket_start", When),
        sa.column("samples", sa.LargeBinary()),
        *[
            sa.column(name)
            for name in (
                "count",
                "up",
                "down",
                "degraded",
                "latency_sum",
                "latency_min",
                "latency_max",
                *HISTOGRAM,
            )
        ],
    )
    dialect = postgresql if bind.dialect.name == "postgresql" else sqlite
    fill = sa.update(rollups).where(
        rollups.c.monitor_id == sa.bindparam("m"),
        rollups.c.granularity == FIVE_MINUTES,
        rollups.c.bucket_start == sa.bindparam("b"),
    )
    monitor_ids = list(bind.scalars(sa.select(results.c.monitor_id).distinct()))
    for done, monitor_id in enumerate(monitor_ids):
        if done and done % 1000 == 0:  # a large fleet's results take minutes: say how far
            log.info("packed the stored results of %d of %d monitors", done, len(monitor_ids))
        rows = bind.execute(
            sa.select(results)
            .where(results.c.monitor_id == monitor_id)
            .order_by(results.c.checked_at, results.c.id)
        ).all()
        rows_of = [
            ResultRow(
                monitor_id=r.monitor_id,
                checked_at=r.checked_at,
                outcome=r.outcome,
                state=r.state,
                streak=r.streak,
                latency_ms=r.latency_ms,
                status_code=r.status_code,
                error=r.error,
                details=r.details,
                location=r.location,
            )
            for r in rows
        ]
        made = aggregate(
            ((r["monitor_id"], r["checked_at"], r["outcome"], r["latency_ms"]) for r in rows_of),
            (FIVE_MINUTES,),
        )
        if made:
            bind.execute(
                dialect.insert(rollups).on_conflict_do_nothing(
                    index_elements=["monitor_id", "granularity", "bucket_start"]
                ),
                made,
            )
        updates = []
        for start, group in groupby(
            rows_of, key=lambda r: int(r["checked_at"].timestamp()) // FIVE_MINUTES
        ):
            bucket = start * FIVE_MINUTES
            blob, _ = pack(bucket, group, set())
            updates.append(
                {"m": monitor_id, "b": datetime.fromtimestamp(bucket, UTC), "samples": blob}
            )
        if updates:
            bind.execute(fill, updates)


def downgrade() -> None:
    """Raw results are not unpacked again: the old table comes back empty
    (the rollups, which every figure reads, stay as they are)."""
    op.create_table(
        "monitor_results",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("monitor_id", sa.Uuid(), nullable=False),
        sa.Column("checked_at", When, nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("location", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_monitor_results_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_results")),
    )
    op.create_index("ix_monitor_results_checked_at", "monitor_results", ["checked_at"])
    op.create_index(
        "ix_monitor_results_monitor_checked", "monitor_results", ["monitor_id", "checked_at"]
    )
    op.drop_table("rollup_marks")
    with op.batch_alter_table("monitor_rollups") as batch:
        batch.drop_column("samples")

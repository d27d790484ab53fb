"""multi-location checks: monitor locations and quorum, results per location,
lease pools, per-location states, probe locations

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import infrawatch.core.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("monitors") as batch:
        batch.add_column(sa.Column("locations", JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("located", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("quorum", sa.SmallInteger(), nullable=True))
    with op.batch_alter_table("monitor_results") as batch:
        batch.add_column(sa.Column("location", sa.String(length=64), nullable=True))
    # Leases only live while workers run: the table is rebuilt with its
    # pool in the key. Workers of the old version fail their next tick and
    # stop checking (docs/deploy.md: upgrades).
    op.drop_table("engine_shard_leases")
    op.create_table(
        "engine_shard_leases",
        sa.Column("pool", sa.String(length=64), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("expires_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("epoch", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("pool", "shard", name=op.f("pk_engine_shard_leases")),
    )
    op.create_table(
        "monitor_location_states",
        sa.Column("monitor_id", sa.Uuid(), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("checked_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_monitor_location_states_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("monitor_id", "location", name=op.f("pk_monitor_location_states")),
    )
    op.create_table(
        "probe_locations",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("since", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("alerted_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_probe_locations")),
    )


def downgrade() -> None:
    op.drop_table("probe_locations")
    op.drop_table("monitor_location_states")
    op.drop_table("engine_shard_leases")
    op.create_table(
        "engine_shard_leases",
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("expires_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("epoch", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_engine_shard_leases")),
    )
    with op.batch_alter_table("monitor_results") as batch:
        batch.drop_column("location")
    with op.batch_alter_table("monitors") as batch:
        batch.drop_column("quorum")
        batch.drop_column("located")
        batch.drop_column("locations")

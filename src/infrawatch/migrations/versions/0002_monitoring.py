"""monitoring: monitors, results, rollups, transitions, shard leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 23:23:24.633417
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import infrawatch.core.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_shard_leases",
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("expires_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("shard", name=op.f("pk_engine_shard_leases")),
    )
    op.create_table(
        "engine_workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("started_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engine_workers")),
    )
    op.create_table(
        "monitors",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=2048), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("retry_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("failure_threshold", sa.SmallInteger(), nullable=False),
        sa.Column("success_threshold", sa.SmallInteger(), nullable=False),
        sa.Column("degraded_threshold_ms", sa.Integer(), nullable=True),
        sa.Column(
            "conditions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("server_id", sa.Uuid(), nullable=True),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("in_maintenance", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "status_changed_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("push_token_hash", sa.String(length=64), nullable=True),
        sa.Column("push_token_encrypted", sa.Text(), nullable=True),
        sa.Column("push_last_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("push_last_kind", sa.String(length=8), nullable=True),
        sa.Column("push_last_exit_code", sa.Integer(), nullable=True),
        sa.Column("push_started_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cert_expires_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_monitors_server_id_servers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("name", name=op.f("uq_monitors_name")),
        sa.UniqueConstraint("push_token_hash", name=op.f("uq_monitors_push_token_hash")),
    )
    with op.batch_alter_table("monitors", schema=None) as batch_op:
        batch_op.create_index("ix_monitors_server", ["server_id"], unique=False)
        batch_op.create_index("ix_monitors_shard", ["shard"], unique=False)

    op.create_table(
        "monitor_results",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("monitor_id", sa.Uuid(), nullable=False),
        sa.Column("checked_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_monitor_results_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_results")),
    )
    with op.batch_alter_table("monitor_results", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_results_checked_at", ["checked_at"], unique=False)
        batch_op.create_index(
            "ix_monitor_results_monitor_checked", ["monitor_id", "checked_at"], unique=False
        )

    op.create_table(
        "monitor_rollups",
        sa.Column("monitor_id", sa.Uuid(), nullable=False),
        sa.Column("granularity", sa.Integer(), nullable=False),
        sa.Column("bucket_start", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("up", sa.Integer(), nullable=False),
        sa.Column("down", sa.Integer(), nullable=False),
        sa.Column("degraded", sa.Integer(), nullable=False),
        sa.Column("latency_sum", sa.Float(), nullable=False),
        sa.Column("latency_min", sa.Float(), nullable=False),
        sa.Column("latency_max", sa.Float(), nullable=False),
        sa.Column("h0", sa.Integer(), nullable=False),
        sa.Column("h1", sa.Integer(), nullable=False),
        sa.Column("h2", sa.Integer(), nullable=False),
        sa.Column("h3", sa.Integer(), nullable=False),
        sa.Column("h4", sa.Integer(), nullable=False),
        sa.Column("h5", sa.Integer(), nullable=False),
        sa.Column("h6", sa.Integer(), nullable=False),
        sa.Column("h7", sa.Integer(), nullable=False),
        sa.Column("h8", sa.Integer(), nullable=False),
        sa.Column("h9", sa.Integer(), nullable=False),
        sa.Column("h10", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_monitor_rollups_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "monitor_id", "granularity", "bucket_start", name=op.f("pk_monitor_rollups")
        ),
    )
    op.create_table(
        "monitor_transitions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("monitor_id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=True),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("alerted_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_monitor_transitions_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_transitions")),
    )
    with op.batch_alter_table("monitor_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_monitor_transitions_monitor", ["monitor_id", "id"], unique=False)
        batch_op.create_index(
            "ix_monitor_transitions_unalerted",
            ["id"],
            unique=False,
            sqlite_where=sa.text("alerted_at IS NULL"),
            postgresql_where=sa.text("alerted_at IS NULL"),
        )
    if op.get_bind().dialect.name == "postgresql":
        # Every check updates three rollup rows. With room left in each page
        # PostgreSQL rewrites them in place (HOT, no index change) and prunes
        # the old versions on the page, instead of growing the table by a
        # dead row per update until vacuum comes by.
        op.execute("ALTER TABLE monitor_rollups SET (fillfactor = 50)")


def downgrade() -> None:
    with op.batch_alter_table("monitor_transitions", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_monitor_transitions_unalerted",
            sqlite_where=sa.text("alerted_at IS NULL"),
            postgresql_where=sa.text("alerted_at IS NULL"),
        )
        batch_op.drop_index("ix_monitor_transitions_monitor")

    op.drop_table("monitor_transitions")
    op.drop_table("monitor_rollups")
    with op.batch_alter_table("monitor_results", schema=None) as batch_op:
        batch_op.drop_index("ix_monitor_results_monitor_checked")
        batch_op.drop_index("ix_monitor_results_checked_at")

    op.drop_table("monitor_results")
    with op.batch_alter_table("monitors", schema=None) as batch_op:
        batch_op.drop_index("ix_monitors_shard")
        batch_op.drop_index("ix_monitors_server")

    op.drop_table("monitors")
    op.drop_table("engine_workers")
    op.drop_table("engine_shard_leases")

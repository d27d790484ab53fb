"""transitions carry what alerting needs: the monitor's name, type, target
(credentials masked, as stored) and maintenance flag when it changed state

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FACTS = ("monitor_name", "monitor_type", "target", "in_maintenance")


def upgrade() -> None:
    with op.batch_alter_table("monitor_transitions") as batch:
        batch.add_column(sa.Column("monitor_name", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("monitor_type", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("target", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("in_maintenance", sa.Boolean(), nullable=True))
    # Only what alerting has yet to read needs them; the history keeps its
    # rows as they were (the partial index makes this a short walk).
    op.execute(
        """
        UPDATE monitor_transitions SET
            monitor_name = (SELECT name FROM monitors WHERE monitors.id = monitor_transitions.monitor_id),
            monitor_type = (SELECT type FROM monitors WHERE monitors.id = monitor_transitions.monitor_id),
            target = (SELECT target FROM monitors WHERE monitors.id = monitor_transitions.monitor_id),
            in_maintenance = (SELECT in_maintenance FROM monitors
                              WHERE monitors.id = monitor_transitions.monitor_id)
        WHERE alerted_at IS NULL
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("monitor_transitions") as batch:
        for name in FACTS:
            batch.drop_column(name)

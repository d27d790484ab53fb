"""reliability and security: target passwords apart, encrypted; lease epochs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 05:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing passwords are moved here (encrypted) at start-up, where the
    # master key is at hand: see monitoring.service.seal_target_passwords.
    for table in ("monitors", "template_monitors"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("target_secret_encrypted", sa.Text(), nullable=True))
    with op.batch_alter_table("engine_shard_leases") as batch:
        batch.add_column(sa.Column("epoch", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("engine_shard_leases") as batch:
        batch.drop_column("epoch")
    for table in ("monitors", "template_monitors"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("target_secret_encrypted")

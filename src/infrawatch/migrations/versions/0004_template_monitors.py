"""template monitors

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 23:50:16.306770
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "template_monitors",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "spec",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            name=op.f("fk_template_monitors_template_id_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_monitors")),
    )
    with op.batch_alter_table("template_monitors", schema=None) as batch_op:
        batch_op.create_index(
            "ix_template_monitors_template", ["template_id", "position"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("template_monitors", schema=None) as batch_op:
        batch_op.drop_index("ix_template_monitors_template")

    op.drop_table("template_monitors")

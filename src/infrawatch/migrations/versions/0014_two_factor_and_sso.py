"""two-factor logins (TOTP secrets encrypted, recovery codes hashed) and
single sign-on users (their OpenID Connect subject)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import infrawatch.core.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("totp_pending_encrypted", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column(
                "totp_enabled_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("oidc_subject", sa.String(length=255), nullable=True))
        batch.create_unique_constraint("uq_users_oidc_subject", ["oidc_subject"])
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("code_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_recovery_codes_user_id", table_name="recovery_codes")
    op.drop_table("recovery_codes")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("uq_users_oidc_subject", type_="unique")
        for column in (
            "oidc_subject",
            "totp_last_step",
            "totp_enabled_at",
            "totp_pending_encrypted",
            "totp_secret_encrypted",
        ):
            batch.drop_column(column)

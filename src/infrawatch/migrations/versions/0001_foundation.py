"""foundation: accounts, audit, inventory

Revision ID: 0001
Revises:
Create Date: 2026-11-21 21:05:03.506057
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import infrawatch.core.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_username", sa.String(length=64), nullable=False),
        sa.Column("token_name", sa.String(length=128), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column(
            "changes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_records")),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index("ix_audit_records_action", ["action", "id"], unique=False)
        batch_op.create_index("ix_audit_records_actor", ["actor_username", "id"], unique=False)
        batch_op.create_index("ix_audit_records_at", ["at"], unique=False)
        batch_op.create_index(
            "ix_audit_records_object", ["object_type", "object_id", "id"], unique=False
        )
        batch_op.create_index("ix_audit_records_request_id", ["request_id"], unique=False)

    op.create_table(
        "groups",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("created_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_groups_name")),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("source_ip", sa.String(length=64), nullable=False),
        sa.Column("at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index("ix_login_failures_source_ip_at", ["source_ip", "at"], unique=False)
        batch_op.create_index("ix_login_failures_username_at", ["username", "at"], unique=False)

    op.create_table(
        "servers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("ssh_port", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("os", sa.String(length=64), nullable=True),
        sa.Column("environment", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "attributes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("lifecycle", sa.String(length=16), nullable=False),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column(
            "health_changed_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
    )
    with op.batch_alter_table("servers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_servers_live_created_at_id",
            ["created_at", "id"],
            unique=False,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index("ix_servers_hostname", ["hostname"], unique=False)
        batch_op.create_index("ix_servers_ip_address", ["ip_address"], unique=False)
        batch_op.create_index("ix_servers_name", ["name"], unique=False)
        batch_op.create_index(
            "uq_servers_live_name",
            ["name"],
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )

    op.create_table(
        "templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "defaults", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_templates_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("read_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "health_transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_health_transitions_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_transitions")),
    )
    with op.batch_alter_table("health_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_health_transitions_server", ["server_id", "id"], unique=False)

    op.create_table(
        "lifecycle_transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_lifecycle_transitions_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_transitions")),
    )
    with op.batch_alter_table("lifecycle_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_lifecycle_transitions_server", ["server_id", "id"], unique=False)

    op.create_table(
        "server_dependencies",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("depends_on_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", infrawatch.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["depends_on_id"],
            ["servers.id"],
            name=op.f("fk_server_dependencies_depends_on_id_servers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_server_dependencies_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("server_id", "depends_on_id", name=op.f("pk_server_dependencies")),
    )
    with op.batch_alter_table("server_dependencies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_server_dependencies_upstream", ["depends_on_id", "server_id"], unique=False
        )

    op.create_table(
        "server_groups",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_server_groups_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_server_groups_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("server_id", "group_id", name=op.f("pk_server_groups")),
    )
    with op.batch_alter_table("server_groups", schema=None) as batch_op:
        batch_op.create_index("ix_server_groups_group_id", ["group_id", "server_id"], unique=False)

    op.create_table(
        "server_tags",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=63), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["servers.id"],
            name=op.f("fk_server_tags_server_id_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("server_id", "key", name=op.f("pk_server_tags")),
    )
    with op.batch_alter_table("server_tags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_server_tags_key_value", ["key", "value", "server_id"], unique=False
        )

    _create_audit_guard()
    _create_name_order_index()
    _create_search_index()
    _create_generation()


def downgrade() -> None:
    _drop_generation()
    _drop_search_index()
    _drop_audit_guard()
    for table in (
        "inventory_generation",
        "server_tags",
        "server_groups",
        "server_dependencies",
        "lifecycle_transitions",
        "health_transitions",
        "api_tokens",
        "users",
        "templates",
        "servers",
        "login_failures",
        "groups",
        "audit_records",
    ):
        op.drop_table(table)


# The audit trail is append-only: the database itself refuses to change or
# remove a record, whoever asks.
def _create_audit_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_records_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit records are append-only';
            END;
            $$ LANGUAGE plpgsql
        """)
        op.execute("""
            CREATE TRIGGER audit_records_append_only
            BEFORE UPDATE OR DELETE ON audit_records
            FOR EACH ROW EXECUTE FUNCTION audit_records_append_only()
        """)
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER audit_records_no_{event.lower()}
                BEFORE {event} ON audit_records
                BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END
            """)


def _drop_audit_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records")
        op.execute("DROP FUNCTION IF EXISTS audit_records_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_records_no_delete")


# Free-text search over name, hostname, IP and description without reading
# every row: trigram indexes on both engines. SQLite: an FTS5 table over the
# servers table (external content, kept in step by triggers). PostgreSQL:
# pg_trgm GIN indexes, which serve ILIKE '%text%' directly.
SEARCHED = ("name", "hostname", "ip_address", "description")


def _create_search_index() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): a database owner
        # may create it. Without it, search still works, by scanning.
        with bind.begin_nested() as savepoint:
            try:
                op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except sa.exc.DBAPIError:
                savepoint.rollback()
                return
        for column in SEARCHED:
            op.execute(
                f"CREATE INDEX ix_servers_{column}_trgm ON servers USING gin ({column} gin_trgm_ops)"
            )
        return
    columns = ", ".join(SEARCHED)
    new = ", ".join(f"new.{c}" for c in SEARCHED)
    old = ", ".join(f"old.{c}" for c in SEARCHED)
    op.execute(
        f"CREATE VIRTUAL TABLE servers_search USING fts5({columns}, "
        "content='servers', content_rowid='rowid', tokenize='trigram')"
    )
    op.execute(f"""CREATE TRIGGER servers_search_insert AFTER INSERT ON servers BEGIN
        INSERT INTO servers_search(rowid, {columns}) VALUES (new.rowid, {new}); END""")
    op.execute(f"""CREATE TRIGGER servers_search_delete AFTER DELETE ON servers BEGIN
        INSERT INTO servers_search(servers_search, rowid, {columns}) VALUES ('delete', old.rowid, {old}); END""")
    op.execute(f"""CREATE TRIGGER servers_search_update AFTER UPDATE OF {columns} ON servers BEGIN
        INSERT INTO servers_search(servers_search, rowid, {columns}) VALUES ('delete', old.rowid, {old});
        INSERT INTO servers_search(rowid, {columns}) VALUES (new.rowid, {new}); END""")
    op.execute("INSERT INTO servers_search(servers_search) VALUES ('rebuild')")


def _drop_search_index() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in SEARCHED:
            op.execute(f"DROP INDEX IF EXISTS ix_servers_{column}_trgm")
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS servers_search_{trigger}")
    op.execute("DROP TABLE IF EXISTS servers_search")


# Cached list totals stay valid while this number stands still; triggers raise
# it on every change that can move a server into or out of a filter.
GENERATION_SOURCES = ("servers", "server_tags", "server_groups", "groups")


def _create_generation() -> None:
    op.create_table(
        "inventory_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("bumped_by", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_generation")),
    )
    op.execute("INSERT INTO inventory_generation (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION inventory_generation_bump() RETURNS trigger AS $$
            BEGIN
                UPDATE inventory_generation SET value = value + 1, bumped_by = txid_current()
                WHERE id = 1 AND bumped_by IS DISTINCT FROM txid_current();
                RETURN NULL;
            END;
            $$ LANGUAGE plpgsql
        """)
        for table in GENERATION_SOURCES:
            # Statement triggers, and the function raises the number once per
            # transaction: a bulk change of 10,000 rows raises it once.
            op.execute(f"""
                CREATE TRIGGER {table}_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
                ON {table} FOR EACH STATEMENT EXECUTE FUNCTION inventory_generation_bump()
            """)
        # "key = env AND value = prod" is far from independent; without these
        # statistics the planner misjudges tag filters by an order of magnitude.
        op.execute(
            "CREATE STATISTICS server_tags_key_value (mcv, dependencies) ON key, value FROM server_tags"
        )
        return
    # SQLite has row triggers only: a bump per row, cheap at its scale.
    bump = "UPDATE inventory_generation SET value = value + 1 WHERE id = 1"
    for table in GENERATION_SOURCES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER {table}_generation_{event.lower()} AFTER {event} ON {table}
                BEGIN {bump}; END
            """)


def _drop_generation() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in GENERATION_SOURCES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_generation ON {table}")
        op.execute("DROP FUNCTION IF EXISTS inventory_generation_bump()")
        op.execute("DROP STATISTICS IF EXISTS server_tags_key_value")
        op.execute("DROP STATISTICS IF EXISTS servers_lower_name")
        return
    for table in GENERATION_SOURCES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_generation_{event}")


def _create_name_order_index() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Room in each page for updated rows to stay where they are (HOT).
        op.execute("ALTER TABLE servers SET (fillfactor = 85)")
    # Lists sort by lower(name) by default and name globs become ranges on
    # it; on PostgreSQL in byte order ("C") so a prefix is one range whatever
    # the locale. The expression must match the query's to the letter.
    key = 'lower(name) COLLATE "C"' if op.get_bind().dialect.name == "postgresql" else "lower(name)"
    op.execute(
        f"CREATE INDEX ix_servers_live_lower_name_id ON servers ({key}, id) WHERE deleted_at IS NULL"
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and (bind.dialect.server_version_info or (0,)) >= (14,):
        # The planner ignores statistics of a partial index's expression;
        # without these it guesses a name range at 0.5 % of rows and sorts
        # thousands of rows instead of reading 50 in order.
        op.execute(f"CREATE STATISTICS servers_lower_name ON ({key}) FROM servers")

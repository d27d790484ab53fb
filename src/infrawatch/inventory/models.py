from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Base, JSONDocument, UTCDateTime, new_id

NOT_DELETED = text("deleted_at IS NULL")


class Server(Base):
    __tablename__ = "servers"
    __table_args__ = (
        # Names are unique among live servers only: a deleted server keeps its
        # name until restored or purged, and a new one may take it meanwhile.
        Index(
            "uq_servers_live_name",
            "name",
            unique=True,
            sqlite_where=NOT_DELETED,
            postgresql_where=NOT_DELETED,
        ),
        # Lists of live servers page in (sort key, id) order: partial
        # indexes over live rows serve both the filter and the order. (An
        # index led by deleted_at would not: PostgreSQL does not take
        # "IS NULL" as fixing the first column, so it sorts the table.)
        # The default order, lower(name), has an expression index per engine
        # in the migration (ix_servers_live_lower_name_id). No index on
        # updated_at or health on purpose: changing an indexed column makes
        # PostgreSQL rewrite every index entry of the row (trigram GINs
        # included); unindexed, a bulk change or a health flip is a cheap
        # in-page (HOT) update. Sorting by updated_at sorts instead.
        Index("ix_servers_name", "name"),
        Index(
            "ix_servers_live_created_at_id",
            "created_at",
            "id",
            sqlite_where=NOT_DELETED,
            postgresql_where=NOT_DELETED,
        ),
        # No index on lifecycle, health, region...: a handful of values each,
        # so walking the ordered index above beats a lookup plus a sort.
        # Free text has trigram indexes of its own (see migration 0001).
        Index("ix_servers_hostname", "hostname"),
        Index("ix_servers_ip_address", "ip_address"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    hostname: Mapped[str | None] = mapped_column(String(255))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    ssh_port: Mapped[int] = mapped_column(Integer, default=22)
    provider: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(64))
    os: Mapped[str | None] = mapped_column(String(64))
    environment: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    lifecycle: Mapped[str] = mapped_column(String(16))
    health: Mapped[str] = mapped_column(String(16), default="unknown")
    health_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped on every change; the ETag, and the If-Match check, read it.
    version: Mapped[int] = mapped_column(Integer, default=1)


class ServerTag(Base):
    __tablename__ = "server_tags"
    __table_args__ = (Index("ix_server_tags_key_value", "key", "value", "server_id"),)

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), default="")


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    # A search-language query makes the group dynamic: members are whatever
    # matches now. Without one, membership is the server_groups rows.
    query: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ServerGroup(Base):
    __tablename__ = "server_groups"
    __table_args__ = (Index("ix_server_groups_group_id", "group_id", "server_id"),)

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )


class Template(Base):
    __tablename__ = "templates"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    defaults: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ServerDependency(Base):
    """`server_id` depends on `depends_on_id` (its upstream)."""

    __tablename__ = "server_dependencies"
    __table_args__ = (Index("ix_server_dependencies_upstream", "depends_on_id", "server_id"),)

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    depends_on_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LifecycleTransition(Base):
    __tablename__ = "lifecycle_transitions"
    __table_args__ = (Index("ix_lifecycle_transitions_server", "server_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    server_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))


class InventoryGeneration(Base):
    """One row whose number database triggers raise on every change to
    servers, tags, group memberships or groups (migration 0001). Cached list
    totals are valid while it stands still; no write path can forget it."""

    __tablename__ = "inventory_generation"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), default=0)
    # PostgreSQL: the transaction that raised it last, so a transaction raises
    # it once, not once per statement (each UPDATE of one row in one
    # transaction adds a row version the next must walk past).
    bumped_by: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))


class HealthTransition(Base):
    """Written by the monitoring engine; kept forever."""

    __tablename__ = "health_transitions"
    __table_args__ = (Index("ix_health_transitions_server", "server_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    server_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)

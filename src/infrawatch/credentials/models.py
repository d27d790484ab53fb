"""The vault: SSH keys (private part encrypted), their assignments to
servers, the host keys we trust (first use, then verified), and named
secrets. Every *_encrypted column is AES-GCM bound to its table, column
and row (core.crypto); `info={"encrypted": True}` lets `keys rotate` and
the start-up key check find them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from infrawatch.core.clock import utcnow
from infrawatch.core.db import ENCRYPTED, Base, UTCDateTime, new_id


class SshKey(Base):
    __tablename__ = "ssh_keys"
    __table_args__ = (
        # One active key per name; replaced and retired keys keep theirs.
        Index(
            "uq_ssh_keys_active_name",
            "name",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128))
    algorithm: Mapped[str] = mapped_column(String(32))  # ssh-ed25519, ssh-rsa, ...
    bits: Mapped[int | None] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    public_key: Mapped[str] = mapped_column(Text)
    private_key_encrypted: Mapped[str] = mapped_column(Text, info=ENCRYPTED)
    # generated, imported
    origin: Mapped[str] = mapped_column(String(16))
    # login (logs in to servers) or ca (signs short-lived user certificates)
    purpose: Mapped[str] = mapped_column(String(8), default="login", server_default="login")
    # active; replaced (a rotation made a successor, some servers still use
    # this one); retired (no server uses it any more)
    status: Mapped[str] = mapped_column(String(16), default="active")
    replaced_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ssh_keys.id", ondelete="SET NULL")
    )
    rotation_interval_days: Mapped[int | None] = mapped_column(Integer)
    next_rotation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SshKeyAssignment(Base):
    """This key logs in to this server as this user. A server has at most
    one key (rotation moves the row to the successor)."""

    __tablename__ = "ssh_key_assignments"

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ssh_keys.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(String(64))
    port: Mapped[int | None] = mapped_column(Integer)  # None: the server's ssh_port
    # Log in with a certificate this CA signs for each connection (the server
    # trusts the CA, TrustedUserCAKeys) instead of an authorized_keys line.
    ca_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ssh_keys.id", ondelete="RESTRICT"))
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None] = mapped_column()
    last_test_error: Mapped[str | None] = mapped_column(Text)
    last_test_latency_ms: Mapped[float | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KnownHostKey(Base):
    """Trust on first use: the first key a server offers is recorded, and
    every later connection must see the same one."""

    __tablename__ = "ssh_known_host_keys"

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    port: Mapped[int] = mapped_column(Integer, primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_verified_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Secret(Base):
    """A named value (a database password, an API token): write-only
    through the API, read by provisioning by name."""

    __tablename__ = "secrets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str | None] = mapped_column(String(500))
    value_encrypted: Mapped[str] = mapped_column(Text, info=ENCRYPTED)
    # Length only, so a list can say "set, 24 characters" without the value.
    value_length: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentToken(Base):
    """One agent token per server, the credential of /api/v1/agents/report:
    looked up by its hash, kept encrypted (like a push token)."""

    __tablename__ = "agent_tokens"

    server_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Kept encrypted too, so the `agent` role can put the same token on the
    # host again (a second run changes nothing) without a new one each run.
    token_encrypted: Mapped[str] = mapped_column(Text, info=ENCRYPTED)
    prefix: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

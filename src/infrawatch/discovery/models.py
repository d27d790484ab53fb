"""Discovery scans and what they found. The scan's progress and status
live on its job; these rows keep the request and the hosts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Base, JSONDocument, UTCDateTime, new_id

BigId = BigInteger().with_variant(Integer(), "sqlite")


class DiscoveryScan(Base):
    __tablename__ = "discovery_scans"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    cidr: Mapped[str] = mapped_column(String(64))
    ports: Mapped[list[int]] = mapped_column(JSONDocument)
    concurrency: Mapped[int] = mapped_column(Integer)
    rate_per_second: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[float] = mapped_column(Float)
    tags: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    addresses: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DiscoveredHost(Base):
    __tablename__ = "discovered_hosts"
    __table_args__ = (UniqueConstraint("scan_id", "address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    scan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("discovery_scans.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(45))
    open_ports: Mapped[list[int]] = mapped_column(JSONDocument)
    reverse_dns: Mapped[str | None] = mapped_column(String(253))
    ssh_banner: Mapped[str | None] = mapped_column(String(255))
    ssh_port: Mapped[int | None] = mapped_column(Integer)
    http_banner: Mapped[str | None] = mapped_column(String(255))
    os_guess: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    imported_server_id: Mapped[uuid.UUID | None] = mapped_column()
    found_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Base, JSONDocument, UTCDateTime, new_id

BigId = BigInteger().with_variant(Integer(), "sqlite")


class StatusPage(Base):
    """A public page. Nothing reaches it unless chosen here: sections list
    monitors by id with the public name to show; targets only on request."""

    __tablename__ = "status_pages"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    logo_url: Mapped[str | None] = mapped_column(String(2048))
    # Served at "/" for requests whose Host header is this name.
    custom_domain: Mapped[str | None] = mapped_column(String(253), unique=True)
    # [{"name": …, "monitors": [{"monitor_id": …, "name": …, "show_target": bool}]}]
    sections: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    refresh_seconds: Mapped[int] = mapped_column(Integer, default=60)
    footer: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StatusIncident(Base):
    """An announcement written for the public: an incident (investigating →
    identified → monitoring → resolved) or scheduled maintenance
    (scheduled → in_progress → completed)."""

    __tablename__ = "status_incidents"
    __table_args__ = (Index("ix_status_incidents_page_created", "page_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    page_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("status_pages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # incident, maintenance
    title: Mapped[str] = mapped_column(String(300))
    impact: Mapped[str] = mapped_column(String(16))  # none, minor, major, critical
    status: Mapped[str] = mapped_column(String(16))
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StatusIncidentUpdate(Base):
    __tablename__ = "status_incident_updates"
    __table_args__ = (Index("ix_status_incident_updates_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("status_incidents.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)

"""Provisioning runs: what was asked (targets, roles or a stack, variables,
secrets by name), how each host fared, and what a retry or rollback needs.
The run's progress and log live on its job."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from infrawatch.core.clock import utcnow
from infrawatch.core.db import ENCRYPTED, Base, JSONDocument, UTCDateTime, new_id


class ProvisioningRun(Base):
    __tablename__ = "provisioning_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    # roles, stack (a named set of roles) or playbook (from a project)
    kind: Mapped[str] = mapped_column(String(16))
    project_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("provisioning_projects.id", ondelete="SET NULL")
    )
    playbook: Mapped[str | None] = mapped_column(String(512))
    project_revision: Mapped[str | None] = mapped_column(String(64))
    stack: Mapped[str | None] = mapped_column(String(64))
    roles: Mapped[list[str]] = mapped_column(JSONDocument)
    server_ids: Mapped[list[str]] = mapped_column(JSONDocument)
    # Plain variables only; secrets are named here and revealed at run time.
    variables: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    secret_names: Mapped[list[str]] = mapped_column(JSONDocument)
    check_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    snapshot: Mapped[bool] = mapped_column(Boolean, default=False)
    # rollback (restore the snapshot when the run fails) or keep
    on_failure: Mapped[str] = mapped_column(String(16), default="keep")
    # Set for a run from `infrawatch provision --use-agent`: it logs in as
    # this user with the caller's own ssh-agent, no vault key involved.
    agent_user: Mapped[str | None] = mapped_column(String(64))
    # queued, running, succeeded, failed, cancelled, rolled_back
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # Per server id: {"host", "status", "done_roles", "failed_task",
    # "failed_role", "recap"}; the checkpoint a retry or a takeover resumes from.
    hosts: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    # Per server id: the snapshot taken before the run.
    snapshots: Mapped[dict[str, str]] = mapped_column(JSONDocument)
    retry_of: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("provisioning_runs.id", ondelete="SET NULL")
    )
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Project(Base):
    """Users' own playbooks: a git repository (cloned by the workers that
    run them) or a folder on the machines that run them."""

    __tablename__ = "provisioning_projects"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    # A git URL, or an absolute path to a folder.
    source: Mapped[str] = mapped_column(String(2048))
    branch: Mapped[str | None] = mapped_column(String(255))
    # The commit the last sync found (None for a folder); runs pin it.
    revision: Mapped[str | None] = mapped_column(String(64))
    playbooks: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_error: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServerRunLock(Base):
    """One run at a time per server: a run holds these rows while it runs."""

    __tablename__ = "provisioning_server_locks"

    server_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("provisioning_runs.id", ondelete="CASCADE"), index=True
    )
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- cloud providers -------------------------------------------------------------


class ProviderAccount(Base):
    """One account at one provider. Its credentials are a JSON object,
    encrypted, never returned; `api_url` points the calls elsewhere (a
    region's endpoint, a proxy, a test's loopback fake)."""

    __tablename__ = "provider_accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    api_url: Mapped[str | None] = mapped_column(String(2048))
    region: Mapped[str | None] = mapped_column(String(64))
    credentials_encrypted: Mapped[str] = mapped_column(Text, info=ENCRYPTED)
    # How a hibernated server sleeps: `stop` (the provider may still bill
    # it) or `snapshot` (snapshot, destroy, and create again on waking).
    hibernation: Mapped[str] = mapped_column(String(16), default="stop")
    rate_per_second: Mapped[float] = mapped_column(Float, default=5.0)
    burst: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServerBuild(Base):
    """A server made through a provider, step by step. `step` is the one
    being worked on (or the one that failed): a retry starts there."""

    __tablename__ = "server_builds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("provider_accounts.id", ondelete="RESTRICT"), index=True
    )
    # create or destroy
    action: Mapped[str] = mapped_column(String(16), default="create")
    name: Mapped[str] = mapped_column(String(128), index=True)
    region: Mapped[str] = mapped_column(String(64))
    size: Mapped[str] = mapped_column(String(64))
    image: Mapped[str] = mapped_column(String(255))
    key_id: Mapped[uuid.UUID] = mapped_column()
    template_id: Mapped[uuid.UUID | None] = mapped_column()
    stack: Mapped[str | None] = mapped_column(String(64))
    variables: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    harden: Mapped[bool] = mapped_column(Boolean, default=True)
    tags: Mapped[dict[str, str]] = mapped_column(JSONDocument)
    # queued, running, failed, done
    status: Mapped[str] = mapped_column(String(16), default="queued")
    step: Mapped[str] = mapped_column(String(32))
    # When each step finished (ISO times), for the console's timeline.
    steps_done: Mapped[dict[str, str]] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(String(128))
    server_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    run_id: Mapped[uuid.UUID | None] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HibernationSchedule(Base):
    """Stop servers at one cron time and start them at another, in a time
    zone. The servers are one server or those a search query finds."""

    __tablename__ = "hibernation_schedules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    server_id: Mapped[uuid.UUID | None] = mapped_column()
    query: Mapped[str | None] = mapped_column(String(2048))
    stop_cron: Mapped[str] = mapped_column(String(128))
    start_cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The last stop/start the schedule has carried out (its UTC time), so
    # a worker that was down catches up once, not once per missed slot.
    last_action: Mapped[str | None] = mapped_column(String(16))
    last_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HibernatedServer(Base):
    """A server asleep: how it went to sleep and what waking needs."""

    __tablename__ = "hibernated_servers"

    server_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("hibernation_schedules.id", ondelete="SET NULL")
    )
    mode: Mapped[str] = mapped_column(String(16))
    snapshot_id: Mapped[str | None] = mapped_column(String(255))
    lifecycle_before: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

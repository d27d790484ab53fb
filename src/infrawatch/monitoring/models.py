from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from infrawatch.core.clock import utcnow
from infrawatch.core.db import ENCRYPTED, Base, JSONDocument, UTCDateTime, new_id

BigId = BigInteger().with_variant(Integer(), "sqlite")
SHARD_COUNT = 64  # fixed: monitors hash into shards, workers lease shards
ANY_POOL = "*"  # the lease pool of monitors that may be checked from anywhere


class Monitor(Base):
    """Configuration plus the state the engine settled on. Only transitions
    write `status` here; the per-check figures live in monitor_results."""

    __tablename__ = "monitors"
    __table_args__ = (
        Index("ix_monitors_shard", "shard"),
        Index("ix_monitors_server", "server_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(16))  # node_exporter is the longest
    # A password in the target URL is kept apart, encrypted; `target` holds
    # the URL with `***` in its place (monitoring/target_secrets.py).
    target: Mapped[str] = mapped_column(String(2048))
    target_secret_encrypted: Mapped[str | None] = mapped_column(Text, info=ENCRYPTED)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[float] = mapped_column(Float)
    retry_interval_seconds: Mapped[int] = mapped_column(Integer)
    failure_threshold: Mapped[int] = mapped_column(SmallInteger)
    success_threshold: Mapped[int] = mapped_column(SmallInteger)
    degraded_threshold_ms: Mapped[int | None] = mapped_column(Integer)
    conditions: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    server_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("servers.id", ondelete="SET NULL")
    )
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by alerting while a maintenance window covers the monitor.
    in_maintenance: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shard: Mapped[int] = mapped_column(SmallInteger)
    # Push monitors: the token is the credential in the URL. Looked up by
    # hash, shown from the ciphertext; never stored in clear.
    push_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    push_token_encrypted: Mapped[str | None] = mapped_column(Text, info=ENCRYPTED)
    push_last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    push_last_kind: Mapped[str | None] = mapped_column(String(8))  # success, start, fail
    push_last_exit_code: Mapped[int | None] = mapped_column(Integer)
    push_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cert_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Where it is checked from: empty means any one location; two or more
    # decide its state by quorum (monitoring/quorum.py). `located` mirrors
    # "non-empty" so the engine can pick its monitors by an indexed column.
    locations: Mapped[list[str]] = mapped_column(JSONDocument, default=list)
    located: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    quorum: Mapped[int | None] = mapped_column(SmallInteger)  # None: a majority
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MonitorTransition(Base):
    """Every state change, kept forever. Alerting claims rows whose
    `alerted_at` is empty, so a crash between the two loses nothing."""

    __tablename__ = "monitor_transitions"
    __table_args__ = (
        Index("ix_monitor_transitions_monitor", "monitor_id", "id"),
        Index(
            "ix_monitor_transitions_unalerted",
            "id",
            sqlite_where=text("alerted_at IS NULL"),
            postgresql_where=text("alerted_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    monitor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("monitors.id", ondelete="CASCADE"))
    server_id: Mapped[uuid.UUID | None] = mapped_column()
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="state")  # state, certificate
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What alerting needs, as the monitor was at the change (the writer fills
    # them): alerting reads its batch from this table alone. Empty on rows
    # alerted before version 0012.
    monitor_name: Mapped[str | None] = mapped_column(String(128))
    monitor_type: Mapped[str | None] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(2048))  # credentials masked, as stored
    in_maintenance: Mapped[bool | None] = mapped_column(Boolean)


class LatencyHistogram:
    """Fixed latency buckets (rollups.LATENCY_BOUNDS_MS), a count each:
    enough for p50/p95 within a bucket's width, and additive in an upsert."""

    h0: Mapped[int] = mapped_column(Integer, default=0)
    h1: Mapped[int] = mapped_column(Integer, default=0)
    h2: Mapped[int] = mapped_column(Integer, default=0)
    h3: Mapped[int] = mapped_column(Integer, default=0)
    h4: Mapped[int] = mapped_column(Integer, default=0)
    h5: Mapped[int] = mapped_column(Integer, default=0)
    h6: Mapped[int] = mapped_column(Integer, default=0)
    h7: Mapped[int] = mapped_column(Integer, default=0)
    h8: Mapped[int] = mapped_column(Integer, default=0)
    h9: Mapped[int] = mapped_column(Integer, default=0)
    h10: Mapped[int] = mapped_column(Integer, default=0)


class MonitorRollup(LatencyHistogram, Base):
    """Counts and latency per monitor per 5 min, hour and day. A 5-minute
    row also holds that bucket's raw results, packed (samples.py), and is
    upserted once per result; hours and days are derived from it
    (engine/derive.py). A restarted engine resumes each monitor's state
    machine from the last sample it finds here."""

    __tablename__ = "monitor_rollups"
    # Time windows across all monitors (the console's latency tiles, the
    # retention sweep) read by granularity and time, not by monitor.
    __table_args__ = (
        Index("ix_monitor_rollups_granularity_bucket", "granularity", "bucket_start"),
    )

    monitor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True
    )
    granularity: Mapped[int] = mapped_column(Integer, primary_key=True)  # seconds
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    up: Mapped[int] = mapped_column(Integer)
    down: Mapped[int] = mapped_column(Integer)
    degraded: Mapped[int] = mapped_column(Integer)
    latency_sum: Mapped[float] = mapped_column(Float)
    latency_min: Mapped[float] = mapped_column(Float)
    latency_max: Mapped[float] = mapped_column(Float)
    # 5-minute rows only; deferred: figures are read far more often than results.
    samples: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class RollupMark(Base):
    """An hour whose 5-minute rows changed since its hourly and daily rows
    were last derived. The writer bumps `version` with each batch; the
    deriving job removes a mark only at the version it read, so a batch
    that lands meanwhile leaves it for the next pass."""

    __tablename__ = "rollup_marks"

    hour_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=1)


class FleetRollup(LatencyHistogram, Base):
    """All monitors' checks and state changes together per 5 min, hour and
    day, upserted beside the per-monitor rollups: the overview's fleet chart
    reads a few hundred of these rather than every monitor's rollups (14
    million rows for a day of 50,000 monitors). Changes count transitions
    into down and degraded, and back to up from either."""

    __tablename__ = "fleet_rollups"

    granularity: Mapped[int] = mapped_column(Integer, primary_key=True)  # seconds
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    up: Mapped[int] = mapped_column(Integer, default=0)
    down: Mapped[int] = mapped_column(Integer, default=0)
    degraded: Mapped[int] = mapped_column(Integer, default=0)
    latency_sum: Mapped[float] = mapped_column(Float, default=0.0)
    went_down: Mapped[int] = mapped_column(Integer, default=0)
    went_degraded: Mapped[int] = mapped_column(Integer, default=0)
    recovered: Mapped[int] = mapped_column(Integer, default=0)


class ShardLease(Base):
    """Which engine process checks which shard of monitors, until when. Each
    pool is leased on its own: ANY_POOL by every worker (monitors that may
    run anywhere), a location's pool by that location's workers."""

    __tablename__ = "engine_shard_leases"

    pool: Mapped[str] = mapped_column(String(64), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    owner: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Raised at every take: what a worker wrote under an older epoch is not
    # its to write any more (monitoring/engine/leases.py).
    epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class EngineWorker(Base):
    __tablename__ = "engine_workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    location: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MonitorLocationState(Base):
    """Where each location's state machine stands for a monitor checked from
    several: the latest result per location, which the quorum decides on."""

    __tablename__ = "monitor_location_states"

    monitor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("monitors.id", ondelete="CASCADE"), primary_key=True
    )
    location: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(8))
    streak: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)


class ProbeLocation(Base):
    """Every location a worker ever checked from, and whether any of its
    workers is alive. A change is news (alerting claims rows whose
    `alerted_at` is empty); a gone location counts in no quorum."""

    __tablename__ = "probe_locations"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(8))  # up, gone
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TemplateMonitor(Base):
    """A monitor a server template carries: created for every server the
    template stamps out, with {server}, {hostname} and {ip} filled in."""

    __tablename__ = "template_monitors"
    __table_args__ = (Index("ix_template_monitors_template", "template_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONDocument)  # target with *** for a password
    target_secret_encrypted: Mapped[str | None] = mapped_column(Text, info=ENCRYPTED)


# --- the host agent ---------------------------------------------------------------


class AgentReport(Base):
    """The latest reading of a server's agent: what agent monitors judge."""

    __tablename__ = "agent_reports"

    server_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    readings: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class HostMetricRollup(Base):
    """Host figures per server and period (5 min, hour, day): sums and
    maxima, so averages and peaks come out of one row per bucket."""

    __tablename__ = "host_metric_rollups"

    server_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(4), primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    reports: Mapped[int] = mapped_column(Integer, default=0)
    cpu_sum: Mapped[float] = mapped_column(Float, default=0.0)
    cpu_max: Mapped[float] = mapped_column(Float, default=0.0)
    memory_sum: Mapped[float] = mapped_column(Float, default=0.0)
    memory_max: Mapped[float] = mapped_column(Float, default=0.0)
    disk_max: Mapped[float] = mapped_column(Float, default=0.0)
    load_sum: Mapped[float] = mapped_column(Float, default=0.0)
    load_max: Mapped[float] = mapped_column(Float, default=0.0)
    # Bytes moved in the bucket, from the counters' growth between reports.
    network_bytes: Mapped[int] = mapped_column(BigInteger, default=0)

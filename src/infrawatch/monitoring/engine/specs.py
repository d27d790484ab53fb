from __future__ import annotations

from yarl import URL

from infrawatch.core.crypto import Keyring
from infrawatch.monitoring import conditions, target_secrets
from infrawatch.monitoring.engine.checks import MonitorSpec
from infrawatch.monitoring.models import Monitor
from infrawatch.probes import split_host_port


def target_host(monitor_type: str, target: str) -> str:
    try:
        if monitor_type in ("http", "node_exporter"):
            return URL(target).host or target
        return split_host_port(target, 0)[0]
    except ValueError:
        return target


def spec_from_row(row: Monitor, keyring: Keyring | None) -> MonitorSpec:
    """`keyring` decrypts the target's password; None only where the row is
    known to have none (its absence then fails the check, not silently)."""
    password = None
    if row.target_secret_encrypted is not None:
        if keyring is None:
            raise LookupError(f"monitor {row.id}: no keyring to decrypt its target password")
        password = target_secrets.reveal(row.target_secret_encrypted, str(row.id), keyring)
    return MonitorSpec(
        id=row.id,
        name=row.name,
        type=row.type,
        target=row.target,
        interval_seconds=row.interval_seconds,
        timeout_seconds=row.timeout_seconds,
        retry_interval_seconds=row.retry_interval_seconds,
        failure_threshold=row.failure_threshold,
        success_threshold=row.success_threshold,
        degraded_threshold_ms=row.degraded_threshold_ms,
        conditions=tuple(conditions.parse_all(row.conditions or [], row.type)),
        settings=dict(row.settings or {}),
        server_id=row.server_id,
        critical=row.critical,
        shard=row.shard,
        version=row.version,
        host=target_host(row.type, row.target),
        password=password,
        locations=tuple(row.locations or ()),
        quorum=row.quorum,
    )

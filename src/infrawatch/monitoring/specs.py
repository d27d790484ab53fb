from __future__ import annotations

from yarl import URL

from infrawatch.monitoring import conditions
from infrawatch.monitoring.checks import MonitorSpec
from infrawatch.monitoring.models import Monitor
from infrawatch.monitoring.probes import split_host_port


def target_host(monitor_type: str, target: str) -> str:
    try:
        if monitor_type == "http":
            return URL(target).host or target
        return split_host_port(target, 0)[0]
    except ValueError:
        return target


def spec_from_row(row: Monitor) -> MonitorSpec:
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
    )

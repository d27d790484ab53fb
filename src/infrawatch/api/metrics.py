"""/metrics in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from infrawatch.accounts.security import authentication
from infrawatch.alerting.metrics import AlertingCollector, outbox_depth
from infrawatch.core.runtime import Runtime, get_runtime
from infrawatch.monitoring import agents
from infrawatch.monitoring.agents import HostCollector
from infrawatch.monitoring.metrics import (
    EngineCollector,
    MonitorSnapshot,
    per_monitor_text,
    snapshot,
)

router = APIRouter(tags=["metrics"])


async def render_metrics(runtime: Runtime, *, fleet: bool = True) -> bytes:
    """Shared by `serve` (/metrics) and `worker --metrics-port`. A worker
    leaves out the fleet-wide series read from the database (any serve
    replica exports those) and keeps what only it knows."""
    shot, depth, hosts = MonitorSnapshot(), 0, []
    if fleet:
        async with runtime.db.unit_of_work(write=False) as session:
            shot = await snapshot(session)
            depth = await outbox_depth(session)
            hosts = await agents.host_snapshot(session)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(hosts))
    if runtime.engine is not None:
        registry.register(EngineCollector(runtime.engine))
    registry.register(AlertingCollector(depth if fleet else None, runtime.alerting))
    # A few dozen series from the collectors, then tens of thousands per
    # monitor, formatted a slice at a time between the engine's checks.
    limit = runtime.settings.metrics_per_monitor_limit
    return (
        generate_latest(registry) + (await per_monitor_text(shot, runtime.engine, limit)).encode()
    )


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    runtime = get_runtime(request)
    if not runtime.settings.metrics_public:
        await authentication(request)
    return Response(await render_metrics(runtime), media_type=CONTENT_TYPE_LATEST)

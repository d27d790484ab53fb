"""/metrics in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from infrawatch.accounts.security import authentication
from infrawatch.alerting.metrics import AlertingCollector, outbox_depth
from infrawatch.core.runtime import get_runtime
from infrawatch.monitoring.metrics import MonitoringCollector, snapshot

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    runtime = get_runtime(request)
    if not runtime.settings.metrics_public:
        await authentication(request)
    async with runtime.db.unit_of_work(write=False) as session:
        shot = await snapshot(session)
        depth = await outbox_depth(session)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitoringCollector(shot, runtime.engine))
    registry.register(AlertingCollector(depth, runtime.alerting))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

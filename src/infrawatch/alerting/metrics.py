"""Prometheus metrics of alerting: the outbox and what this process sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.alerting import repository


async def outbox_depth(session: AsyncSession) -> int:
    return await repository.outbox_depth(session)


class AlertingCollector:
    def __init__(self, depth: int | None, alerting: Any | None) -> None:
        self.depth = depth
        self.alerting = alerting

    def collect(self) -> Iterator[Metric]:
        if self.depth is not None:
            yield GaugeMetricFamily(
                "infrawatch_outbox_pending",
                "notifications waiting to be delivered",
                value=self.depth,
            )
        if self.alerting is not None:
            sender = self.alerting.sender
            sent = CounterMetricFamily(
                "infrawatch_notifications", "notifications this process settled", labels=["result"]
            )
            sent.add_metric(["sent"], sender.sent)
            sent.add_metric(["failed"], sender.failed)
            yield sent

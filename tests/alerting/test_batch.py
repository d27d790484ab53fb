"""A claimed batch against a real database: the transition rows carry what
alerting needs (written once by the writer), and a batch costs the same
number of statements whether it holds five transitions or fifty."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, select

from infrawatch.alerting import processor
from infrawatch.alerting.models import Incident
from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring.engine.writer import ResultWriter
from infrawatch.monitoring.models import MonitorTransition
from tests.conftest import Clients
from tests.monitoring.helpers import create_http_monitor, create_server

# Port 9 on loopback: nothing checks these monitors, no engine runs here.
TARGET = "http://127.0.0.1:9/health"


async def _depends(api: Clients, server: str, upstream: str) -> None:
    response = await api.operator.post(
        f"/api/v1/servers/{server}/dependencies", json={"server_id": upstream}
    )
    assert response.status_code == 201, response.text


async def _monitors(api: Clients, server: str, count: int) -> list[uuid.UUID]:
    return [
        uuid.UUID(await create_http_monitor(api, TARGET, server_id=server)) for _ in range(count)
    ]


async def _down(db: Database, monitors: list[tuple[uuid.UUID, str]]) -> None:
    rows = [
        {
            "monitor_id": monitor,
            "server_id": uuid.UUID(server),
            "from_state": "pending",
            "to_state": "down",
            "at": utcnow(),
            "reason": "connection refused",
            "kind": "state",
        }
        for monitor, server in monitors
    ]
    async with db.unit_of_work() as session:
        await ResultWriter(db).write_transitions(session, rows)


async def _statements_to_alert(db: Database) -> int:
    seen: list[Any] = []

    def count(*_: Any) -> None:
        seen.append(1)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.unit_of_work() as session:
            assert await processor.process_transitions(session, settle_seconds=0)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    return len(seen)


async def test_a_batch_costs_a_fixed_number_of_statements_for_five_transitions_or_fifty(
    api: Clients, db: Database
) -> None:
    core, rack, host = [await create_server(api, n) for n in ("core-1", "rack-1", "host-1")]
    await _depends(api, rack, core)
    await _depends(api, host, rack)
    channel = await api.operator.post(
        "/api/v1/notification-channels", json={"name": "ops", "url": "json://127.0.0.1:9/x"}
    )
    rule = await api.operator.post(
        "/api/v1/alert-rules", json={"name": "all", "channel_ids": [channel.json()["id"]]}
    )
    assert rule.status_code == 201, rule.text
    core_monitors = await _monitors(api, core, 6)
    host_monitors = await _monitors(api, host, 49)

    # Five: one core monitor and four behind it; then fifty: five and 45.
    await _down(db, [(core_monitors[0], core), *((m, host) for m in host_monitors[:4])])
    small = await _statements_to_alert(db)
    await _down(
        db, [*((m, core) for m in core_monitors[1:]), *((m, host) for m in host_monitors[4:])]
    )
    large = await _statements_to_alert(db)
    # Steps with nothing to do are skipped (no incident changed, no parent to
    # look up), so the two may differ by those; per transition it was ~26.
    assert abs(large - small) <= 3 and large <= 25, (small, large)

    async with db.unit_of_work(write=False) as session:
        incidents = {i.monitor_id: i for i in await session.scalars(select(Incident))}
    assert len(incidents) == 55
    first_core = incidents[core_monitors[0]]
    assert first_core.held is None and first_core.notified
    # Every host incident hangs under the oldest core incident, two levels up.
    assert {incidents[m].parent_id for m in host_monitors} == {first_core.id}
    assert not any(incidents[m].notified for m in host_monitors)


async def test_the_writer_puts_the_monitors_facts_on_each_transition(
    api: Clients, db: Database
) -> None:
    server = await create_server(api, "web-1")
    monitor = uuid.UUID(
        await create_http_monitor(
            api, "http://alerts:hunter2hunter2@127.0.0.1:9/", server_id=server, name="shop"
        )
    )
    await _down(db, [(monitor, server)])
    async with db.unit_of_work(write=False) as session:
        row = await session.scalar(
            select(MonitorTransition).where(MonitorTransition.monitor_id == monitor)
        )
    assert row is not None
    assert (row.monitor_name, row.monitor_type, row.in_maintenance) == ("shop", "http", False)
    assert row.target == "http://alerts:***@127.0.0.1:9/"  # never the password

"""Engine and alerting together, against real targets and a real receiver:
the rules of the issue each have a test that fails if they break."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from infrawatch.alerting.models import Incident
from infrawatch.alerting.runner import Alerting
from infrawatch.core.clock import utcnow
from infrawatch.probes.certs import client_context
from tests.alerting.receiver import Receiver, receiving
from tests.conftest import Clients
from tests.monitoring.helpers import (
    Switchable,
    create_http_monitor,
    create_server,
    eventually,
    running_engine,
)
from tests.monitoring.servers import Certificates, serve_http, target_app


@contextlib.asynccontextmanager
async def running_alerting(app: Any, **options: Any) -> AsyncIterator[Alerting]:
    runtime = app.state.runtime
    alerting = Alerting(
        runtime.db,
        runtime.bus,
        runtime.keyring,
        settle_seconds=options.pop("settle", 0.0),
        tick_seconds=0.2,
        maintenance_seconds=options.pop("maintenance_seconds", 0.5),
    )
    task = asyncio.create_task(alerting.run())
    try:
        yield alerting
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as r:
        yield r


async def _channel_and_rule(api: Clients, receiver: Receiver, **rule: Any) -> str:
    channel = await api.operator.post(
        "/api/v1/notification-channels",
        json={"name": f"c-{uuid.uuid4().hex[:6]}", "url": f"json://{receiver.base}/alerts"},
    )
    body = {"name": f"r-{uuid.uuid4().hex[:6]}", "channel_ids": [channel.json()["id"]], **rule}
    created = await api.operator.post("/api/v1/alert-rules", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _server(api: Clients, name: str = "web-1") -> str:
    return await create_server(api, name)


async def _monitor(api: Clients, url: str, **fields: Any) -> str:
    return await create_http_monitor(api, url, **{"failure_threshold": 2, **fields})


def _titles(receiver: Receiver) -> list[str]:
    return [r.json["title"] for r in receiver.on("/alerts")]


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.on("/alerts")) >= n


async def _incidents(api: Clients) -> list[dict[str, Any]]:
    return list((await api.viewer.get("/api/v1/incidents")).json()["items"])


async def test_down_and_recovery_each_notify_once_and_open_then_resolve_an_incident(
    api: Clients, app: Any, db: Any, receiver: Receiver
) -> None:
    target = Switchable()
    async with serve_http(target.app()) as (_, port):
        monitor_id = await _monitor(api, f"http://127.0.0.1:{port}/")
        await _channel_and_rule(api, receiver)
        bus = app.state.runtime.bus
        async with running_engine(db, bus) as engine, running_alerting(app):
            await eventually(lambda: _status_is(api, monitor_id, "up"))
            target.status = 500
            await eventually(lambda: _count(receiver, 1))
            checks = engine.stats.checks
            await eventually(lambda: asyncio.sleep(0, result=engine.stats.checks > checks + 3))
            assert len(receiver.on("/alerts")) == 1  # failing checks go on; no second alert
            [incident] = await _incidents(api)
            assert incident["status"] == "open" and incident["monitor_id"] == monitor_id
            target.status = 200
            await eventually(lambda: _count(receiver, 2))
    titles = _titles(receiver)
    assert titles[0].startswith("DOWN") and titles[1].startswith("RECOVERED")
    [incident] = await _incidents(api)
    assert incident["status"] == "resolved"
    assert [e["kind"] for e in incident["timeline"]] == ["opened", "notified", "resolved"]
    payload = receiver.on("/alerts")[0].json["message"]
    assert monitor_id in payload or "is down" in payload
    # Apprise's notify type, for receivers that colour by it (Slack, Discord …).
    assert [r.json["type"] for r in receiver.on("/alerts")] == ["failure", "success"]


async def _status_is(api: Clients, monitor_id: str, status: str) -> bool:
    return (await api.viewer.get(f"/api/v1/monitors/{monitor_id}")).json()["status"] == status


async def test_an_upstream_outage_sends_one_notification_not_one_per_server(
    api: Clients, app: Any, db: Any, receiver: Receiver
) -> None:
    target = Switchable()
    async with serve_http(target.app()) as (_, port):
        url = f"http://127.0.0.1:{port}/"
        router = await _server(api, "core-router")
        router_monitor = await _monitor(api, url, server_id=router, critical=True)
        downstream = []
        for index in range(5):
            server = await _server(api, f"web-{index}")
            edge = await api.operator.post(
                f"/api/v1/servers/{server}/dependencies",
                json={"server_id": router, "kind": "network"},
            )
            assert edge.status_code == 201, edge.text
            downstream.append(await _monitor(api, url, server_id=server, critical=True))
        await _channel_and_rule(api, receiver)
        async with running_engine(db, app.state.runtime.bus), running_alerting(app, settle=1.5):
            await eventually(lambda: _status_is(api, router_monitor, "up"))
            target.status = 500
            await eventually(lambda: _all_incidents(api, 6))
            await asyncio.sleep(2)
            assert len(receiver.on("/alerts")) == 1
            incidents = {i["monitor_id"]: i for i in await _incidents(api)}
            parent = incidents[router_monitor]
            assert parent["held"] is None
            for monitor_id in downstream:
                assert incidents[monitor_id]["held"] == "upstream"
                assert incidents[monitor_id]["parent_id"] == parent["id"]
    assert _titles(receiver)[0].startswith("DOWN")


async def _all_incidents(api: Clients, n: int) -> bool:
    incidents = await _incidents(api)
    return len(incidents) >= n and all(
        any(e["kind"] in ("notified", "held") for e in i["timeline"]) for i in incidents
    )


async def test_a_maintenance_window_shows_maintenance_and_holds_alerts_until_it_ends(
    api: Clients, app: Any, db: Any, receiver: Receiver
) -> None:
    target = Switchable()
    async with serve_http(target.app()) as (_, port):
        monitor_id = await _monitor(api, f"http://127.0.0.1:{port}/")
        await _channel_and_rule(api, receiver)
        now = utcnow()
        window = await api.operator.post(
            "/api/v1/maintenance-windows",
            json={
                "name": "patching",
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
                "monitor_ids": [monitor_id],
            },
        )
        assert window.status_code == 201, window.text
        assert window.json()["active"] is True
        async with running_engine(db, app.state.runtime.bus), running_alerting(app):
            await eventually(lambda: _status_is(api, monitor_id, "maintenance"))
            target.status = 500
            await eventually(lambda: _held(api))
            await asyncio.sleep(1)
            assert receiver.on("/alerts") == []
            deleted = await api.operator.delete(
                f"/api/v1/maintenance-windows/{window.json()['id']}"
            )
            assert deleted.status_code == 204
            await eventually(lambda: _count(receiver, 1))
            assert await _status_is(api, monitor_id, "down")
    assert _titles(receiver) == [_titles(receiver)[0]] and _titles(receiver)[0].startswith("DOWN")


async def test_a_maintenance_window_holds_alerts_from_its_first_second(
    api: Clients, app: Any, db: Any, receiver: Receiver
) -> None:
    target = Switchable()
    async with serve_http(target.app()) as (_, port):
        monitor_id = await _monitor(api, f"http://127.0.0.1:{port}/", failure_threshold=1)
        await _channel_and_rule(api, receiver)
        # The periodic pass is a minute apart here: the window must hold the
        # DOWN without waiting for it (it was up to 15 s late).
        async with (
            running_engine(db, app.state.runtime.bus),
            running_alerting(app, maintenance_seconds=60.0),
        ):
            await eventually(lambda: _status_is(api, monitor_id, "up"))
            await asyncio.sleep(1)  # the first maintenance pass has run
            now = utcnow()
            window = await api.operator.post(
                "/api/v1/maintenance-windows",
                json={
                    "name": "now",
                    "starts_at": now.isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(),
                    "monitor_ids": [monitor_id],
                },
            )
            assert window.status_code == 201 and window.json()["active"] is True
            target.status = 500
            await eventually(lambda: _held(api))
            await asyncio.sleep(1.5)
            assert receiver.on("/alerts") == []


async def test_a_server_in_maintenance_holds_its_monitors_alerts_until_it_is_active(
    api: Clients, app: Any, db: Any, receiver: Receiver
) -> None:
    """What hibernation relies on: it puts a server in maintenance before
    stopping it, so the DOWN that follows is expected, not news."""
    target = Switchable()
    async with serve_http(target.app()) as (_, port):
        server_id = await _server(api, "dev-1")
        monitor_id = await _monitor(api, f"http://127.0.0.1:{port}/", server_id=server_id)
        await _channel_and_rule(api, receiver)
        r = await api.operator.patch(
            f"/api/v1/servers/{server_id}", json={"lifecycle": "maintenance"}
        )
        assert r.status_code == 200, r.text
        async with running_engine(db, app.state.runtime.bus), running_alerting(app):
            await eventually(lambda: _status_is(api, monitor_id, "maintenance"))
            target.status = 500
            await eventually(lambda: _held(api))
            await asyncio.sleep(1)
            assert receiver.on("/alerts") == []
            r = await api.operator.patch(
                f"/api/v1/servers/{server_id}", json={"lifecycle": "active"}
            )
            assert r.status_code == 200, r.text
            await eventually(lambda: _count(receiver, 1))
            assert await _status_is(api, monitor_id, "down")
    assert _titles(receiver)[0].startswith("DOWN")


async def _held(api: Clients) -> bool:
    incidents = await _incidents(api)
    return bool(incidents) and incidents[0]["held"] == "maintenance"


async def test_reminders_repeat_while_down_and_stop_on_ack(
    api: Clients, app: Any, db: Any, receiver: Receiver
) -> None:
    target = Switchable()
    target.status = 500
    async with serve_http(target.app()) as (_, port):
        await _monitor(api, f"http://127.0.0.1:{port}/")
        await _channel_and_rule(api, receiver, reminder_minutes=1)
        async with running_engine(db, app.state.runtime.bus), running_alerting(app) as alerting:
            await eventually(lambda: _count(receiver, 1))
            await _age_notifications(db, minutes=2)
            await alerting._reminders()
            await eventually(lambda: _count(receiver, 2))
            [incident] = await _incidents(api)
            ack = await api.operator.post(f"/api/v1/incidents/{incident['id']}/ack")
            assert ack.status_code == 200 and ack.json()["acknowledged_by"] == "operator"
            await _age_notifications(db, minutes=2)
            await alerting._reminders()
            await asyncio.sleep(1)
    assert [t.split(":")[0] for t in _titles(receiver)] == ["DOWN", "STILL DOWN"]


async def _age_notifications(db: Any, minutes: int) -> None:
    async with db.unit_of_work() as session:
        await session.execute(
            update(Incident).values(last_notified_at=utcnow() - timedelta(minutes=minutes))
        )


async def test_a_dead_channel_delays_nothing_and_a_failing_one_is_retried(
    api: Clients, app: Any, db: Any
) -> None:
    async with receiving() as good, receiving() as slow, receiving() as flaky:
        slow.delay = 4  # longer than the sender's time limit below
        flaky.fail_next = 1
        target = Switchable()
        target.status = 500
        async with serve_http(target.app()) as (_, port):
            await _monitor(api, f"http://127.0.0.1:{port}/")
            ids = []
            for name, r in (("good", good), ("slow", slow), ("flaky", flaky)):
                channel = await api.operator.post(
                    "/api/v1/notification-channels",
                    json={"name": name, "kind": "webhook", "url": f"http://{r.base}/alerts"},
                )
                ids.append(channel.json()["id"])
            await api.operator.post("/api/v1/alert-rules", json={"name": "all", "channel_ids": ids})
            async with running_engine(db, app.state.runtime.bus), running_alerting(app) as alerting:
                alerting.sender.timeout = 1
                await eventually(lambda: _count(good, 1), timeout=10)
                # The flaky channel failed once; make its retry due now.
                await eventually(lambda: _outbox_status(db, "pending", attempts=1))
                async with db.unit_of_work() as session:
                    await session.execute(
                        text("UPDATE notification_outbox SET next_attempt_at = created_at")
                    )
                await eventually(lambda: _count(flaky, 1))
                await eventually(lambda: _slow_one_timed_out(db))
    assert len(good.on("/alerts")) == 1 and len(flaky.on("/alerts")) == 1


async def _slow_one_timed_out(db: Any) -> bool:
    async with db.unit_of_work(write=False) as session:
        errors = (
            await session.execute(text("SELECT last_error FROM notification_outbox"))
        ).scalars()
        return any(e and "no answer within 1 s" in e for e in errors)


async def _outbox_status(db: Any, status: str, attempts: int) -> bool:
    async with db.unit_of_work(write=False) as session:
        count = await session.scalar(
            text("SELECT count(*) FROM notification_outbox WHERE status = :s AND attempts = :a"),
            {"s": status, "a": attempts},
        )
    return bool(count)


async def test_a_certificate_alert_gives_the_same_days_in_title_and_body(
    api: Clients, app: Any, db: Any, receiver: Receiver, tmp_path: Any, monkeypatch: Any
) -> None:
    certs = Certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_file))
    client_context.cache_clear()
    # 4.96 days left: "4 days" in one place and "5.0 days" in the other was the bug.
    leaf = certs.ca.issue_cert(
        "localhost", "127.0.0.1", not_after=utcnow() + timedelta(days=4, hours=23)
    )
    try:
        async with serve_http(target_app(), certs.server_context(leaf)) as (_, port):
            await create_http_monitor(api, f"https://127.0.0.1:{port}/ok")
            await _channel_and_rule(api, receiver, events=["certificate"], certificate_days=[5])
            async with running_engine(db, app.state.runtime.bus), running_alerting(app):
                await eventually(lambda: _count(receiver, 1))
    finally:
        client_context.cache_clear()
    [alert] = receiver.on("/alerts")
    assert alert.json["title"].endswith("expires in 4 days"), alert.json["title"]
    assert "expires in 4 days (" in alert.json["message"], alert.json["message"]

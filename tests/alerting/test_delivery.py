"""The outbox under a crash, a slow receiver and a hung channel: only what
is really in flight is in doubt, nothing goes out twice, and a dead channel
holds up only itself."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from typing import Any

from sqlalchemy import func, select

from infrawatch.alerting.delivery import OutboxSender
from infrawatch.alerting.models import OutboxMessage
from infrawatch.core.clock import utcnow
from tests.alerting.receiver import Receiver, receiving
from tests.conftest import Clients
from tests.monitoring.helpers import eventually


async def _channel(api: Clients, receiver: Receiver, kind: str = "apprise") -> uuid.UUID:
    url = (
        f"json://{receiver.base}/alerts" if kind == "apprise" else f"http://{receiver.base}/alerts"
    )
    created = await api.operator.post(
        "/api/v1/notification-channels",
        json={"name": f"c-{uuid.uuid4().hex[:6]}", "kind": kind, "url": url},
    )
    assert created.status_code == 201, created.text
    return uuid.UUID(created.json()["id"])


async def _queue(db: Any, channel_id: uuid.UUID, count: int) -> None:
    now = utcnow()
    async with db.unit_of_work() as session:
        session.add_all(
            OutboxMessage(
                channel_id=channel_id,
                dedupe_key=f"m{n}",
                event="down",
                title=f"DOWN: m{n}",
                body="down",
                payload={"n": n},
                status="pending",
                attempts=0,
                next_attempt_at=now,
            )
            for n in range(count)
        )


async def _statuses(db: Any) -> dict[str, int]:
    async with db.unit_of_work(write=False) as session:
        rows = await session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        return dict(rows.all())  # type: ignore[arg-type]


async def test_a_crash_mid_send_leaves_only_the_message_in_flight_in_doubt(
    api: Clients, app: Any, db: Any
) -> None:
    keyring = app.state.runtime.keyring
    async with receiving() as receiver:
        receiver.delay = 3600  # never answers: the crash comes mid-send
        channel = await _channel(api, receiver, kind="webhook")
        await _queue(db, channel, 50)
        crashed = OutboxSender(db, keyring, "before-crash", timeout=0.2)
        assert await crashed.deliver_due() == 1

        async def one_sending() -> bool:
            return (await _statuses(db)).get("sending") == 1

        await eventually(one_sending)
        await crashed.close()  # as kill -9 would: nothing settled
        assert await _statuses(db) == {"sending": 1, "pending": 49}

        receiver.delay = 0
        restarted = OutboxSender(db, keyring, "after-restart", timeout=0.2)

        async def all_settled() -> bool:
            await restarted.deliver_due()
            return await _statuses(db) == {"unknown": 1, "sent": 49}

        await eventually(all_settled, timeout=20)
        await restarted.idle()
    # 49 went out once each; the one in doubt was not sent again.
    sent = collections.Counter(r.json["title"] for r in receiver.on("/alerts"))
    assert len(sent) == 49 and set(sent.values()) == {1}


async def test_a_slow_receiver_gets_each_message_once_and_a_hung_channel_delays_no_other(
    api: Clients, app: Any, db: Any
) -> None:
    keyring = app.state.runtime.keyring
    async with receiving() as slow, receiving() as hung, receiving() as good:
        slow.delay = 2.5  # answers, slowly
        hung.delay = 3600  # never answers
        slow_channel = await _channel(api, slow)
        hung_channel = await _channel(api, hung)
        await _queue(db, hung_channel, 5)
        await _queue(db, slow_channel, 4)
        sender = OutboxSender(db, keyring, "sender", timeout=5)
        assert await sender.deliver_due() == 2
        await asyncio.sleep(0.5)
        good_channel = await _channel(api, good)
        await _queue(db, good_channel, 1)
        queued_at = time.monotonic()
        await sender.deliver_due()
        await eventually(lambda: asyncio.sleep(0, result=len(good.received) == 1))
        # The hung channel's sends hold up its own lane, not this one.
        assert time.monotonic() - queued_at < 2
        await eventually(lambda: asyncio.sleep(0, result=len(slow.received) == 4), timeout=20)
        await asyncio.sleep(1)
        titles = collections.Counter(r.json["title"] for r in slow.received)
        assert set(titles.values()) == {1}, titles  # each once: no retry beside a send
        # One hung send at a time: the rest of its channel waits, unsent.
        statuses = await _statuses(db)
        assert statuses.get("sending") == 1 and statuses.get("pending") == 4, statuses
        await sender.close()

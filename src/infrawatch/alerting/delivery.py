"""Delivering the outbox: claim due messages, send each with its own time
limit, settle each on its own. Retries back off; a crash mid-send leaves the
message 'unknown' rather than sending it twice."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from infrawatch.alerting import repository
from infrawatch.alerting.channels import SEND_TIMEOUT_SECONDS, DeliveryError, Message, send
from infrawatch.alerting.models import NotificationChannel, OutboxMessage
from infrawatch.alerting.service import channel_target
from infrawatch.core.clock import utcnow
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
BATCH = 50


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** (attempts - 1), 3600))


class OutboxSender:
    def __init__(
        self, db: Database, keyring: Keyring, owner: str, timeout: float = SEND_TIMEOUT_SECONDS
    ) -> None:
        self.db = db
        self.keyring = keyring
        self.owner = owner
        self.timeout = timeout
        self.sent = 0
        self.failed = 0

    async def deliver_due(self) -> int:
        now = utcnow()
        async with self.db.unit_of_work(write=False) as session:
            if not await repository.anything_to_settle(session, now):
                return 0  # the usual case: no write lock taken
        async with self.db.unit_of_work() as session:
            await repository.abandon_interrupted(session, now - timedelta(seconds=self.timeout * 3))
            messages = await repository.claim_due(session, self.owner, now, BATCH)
            channels = await repository.channels_by_ids(
                session, list({m.channel_id for m in messages})
            )
        # Claimed and committed: from here each message is sent at most once.
        await asyncio.gather(*(self._deliver(m, channels.get(m.channel_id)) for m in messages))
        return len(messages)

    async def _deliver(self, message: OutboxMessage, channel: NotificationChannel | None) -> None:
        error = None
        try:
            if channel is None or not channel.enabled:
                raise DeliveryError("the channel was deleted or disabled")
            target = channel_target(channel, self.keyring)
            await send(target, Message(message.title, message.body, message.payload), self.timeout)
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # a channel's bug must not stop the others
            log.exception("sending notification %s failed", message.id)
            error = f"{type(exc).__name__}"
        if error is None:
            values = {"status": "sent", "sent_at": utcnow(), "last_error": None}
            self.sent += 1
        elif message.attempts >= MAX_ATTEMPTS or channel is None:
            values = {"status": "failed", "last_error": error}
            self.failed += 1
        else:
            values = {
                "status": "pending",
                "last_error": error,
                "next_attempt_at": utcnow() + backoff(message.attempts),
            }
        async with self.db.unit_of_work() as session:
            await repository.settle(session, message.id, values)

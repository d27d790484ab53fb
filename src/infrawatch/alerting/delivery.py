"""Delivering the outbox, one lane per channel.

Each channel with something due gets a lane: its messages are claimed one
at a time, each marked `sending` in its own commit just before it goes out,
and settled when the send really ended. So:

- a kill -9 leaves at most one message per channel in doubt (`sending`,
  later `unknown`, never sent twice); the rest stay `pending` and go out
  after the restart (before, a batch of 50 was marked `sending` at once and
  all 50 were lost);
- a slow or dead channel holds up its own lane only;
- a send that outlives its time limit is waited for, not retried beside
  itself (channels.InFlight)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

from infrawatch.alerting import repository
from infrawatch.alerting.channels import channel_target
from infrawatch.alerting.models import NotificationChannel, OutboxMessage
from infrawatch.alerting.senders import (
    SEND_TIMEOUT_SECONDS,
    DeliveryError,
    InFlight,
    Message,
    send,
)
from infrawatch.core.clock import utcnow
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database, database_unavailable

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
MAX_LANES = 200  # channels sending at once in one process
# A send still running this many time limits after it started is given up:
# it may or may not have gone out; it is settled `unknown`, not retried.
# One time limit more and any process counts a `sending` message as its
# sender's crash: the channel's lane is blocked no longer than that.
IN_FLIGHT_LIMITS = 3


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
        self._lanes: dict[uuid.UUID, asyncio.Task[None]] = {}

    async def deliver_due(self) -> int:
        """Start a lane for every channel with something due that has none
        running here; -> how many were started."""
        now = utcnow()
        async with self.db.unit_of_work(write=False) as session:
            if not await repository.anything_to_settle(session, now):
                return 0  # the usual case: no write lock taken
        async with self.db.unit_of_work() as session:
            # Past any send's time limit and the wait for its thread: its
            # process died mid-send.
            await repository.abandon_interrupted(
                session, now - timedelta(seconds=self.timeout * (IN_FLIGHT_LIMITS + 1))
            )
            due = await repository.due_channels(session, now, MAX_LANES)
        started = 0
        for channel_id in due:
            if channel_id in self._lanes or len(self._lanes) >= MAX_LANES:
                continue
            self._lanes[channel_id] = asyncio.create_task(
                self._lane(channel_id), name=f"outbox-{channel_id}"
            )
            started += 1
        return started

    async def idle(self) -> None:
        """Wait for the lanes running now to finish (tests, a clean stop)."""
        await asyncio.gather(*self._lanes.values(), return_exceptions=True)

    async def close(self) -> None:
        for lane in self._lanes.values():
            lane.cancel()
        await self.idle()

    async def _lane(self, channel_id: uuid.UUID) -> None:
        try:
            while True:
                async with self.db.unit_of_work() as session:
                    message = await repository.claim_next(session, channel_id, self.owner, utcnow())
                    channels = await repository.channels_by_ids(session, [channel_id])
                if message is None:
                    return
                # Committed as `sending`: from here it is sent at most once.
                await self._deliver(message, channels.get(channel_id))
        except Exception as exc:
            # The database went away mid-lane: what was claimed is settled
            # later (`unknown` if it was sending); the next tick starts anew.
            if not database_unavailable(exc):
                log.exception("the outbox lane of channel %s failed", channel_id)
        finally:
            self._lanes.pop(channel_id, None)

    async def _deliver(self, message: OutboxMessage, channel: NotificationChannel | None) -> None:
        error = None
        try:
            if channel is None or not channel.enabled:
                raise DeliveryError("the channel was deleted or disabled")
            target = channel_target(channel, self.keyring)
            await send(
                target,
                Message(message.title, message.body, message.payload, f"outbox-{message.id}"),
                self.timeout,
            )
        except InFlight as slow:
            error = await self._outcome_of(slow)
            if error == UNKNOWN:
                await self._settle(message.id, {"status": "unknown", "last_error": error})
                return
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
        await self._settle(message.id, values)

    async def _outcome_of(self, slow: InFlight) -> str | None:
        """Wait for a send that outlived its time limit to end: None if it
        went out after all, its error if not, UNKNOWN if it never ends."""
        try:
            outcome = await asyncio.wait_for(
                asyncio.shield(slow.finished), self.timeout * (IN_FLIGHT_LIMITS - 1)
            )
        except TimeoutError:
            return UNKNOWN
        return None if outcome is None else f"{outcome} (after the time limit)"

    async def _settle(self, message_id: int, values: dict[str, object]) -> None:
        async with self.db.unit_of_work() as session:
            await repository.settle(session, message_id, values)


UNKNOWN = "still sending long after its time limit; it may have gone out, so it is not retried"

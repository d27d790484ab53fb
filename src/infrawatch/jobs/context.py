"""What a job handler gets: its arguments and checkpoint, and calls that
report progress, log events and save checkpoints. Each call is its own
short transaction, fenced by the lease: a worker that lost the job (it
stalled past the lease and another took over) is stopped at its next call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from infrawatch.core.config import Settings
from infrawatch.core.context import Actor, OperationContext, Role
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.jobs import service

PROGRESS_EVERY_SECONDS = 0.5


class LeaseLost(Exception):
    """Another worker holds this job now; stop without writing anything."""


@dataclass(frozen=True)
class JobServices:
    """The parts of a running process that handlers use."""

    db: Database
    bus: EventBus
    keyring: Keyring
    settings: Settings


class JobContext:
    def __init__(
        self,
        services: JobServices,
        job_id: uuid.UUID,
        job_type: str,
        arguments: dict[str, Any],
        attempt: int,
        checkpoint: dict[str, Any] | None,
        owner: str,
    ) -> None:
        self.services = services
        self.job_id = job_id
        self.type = job_type
        self.arguments = arguments
        self.attempt = attempt
        # What an earlier attempt saved: resume from here, not from scratch.
        self.checkpoint = checkpoint
        self.owner = owner
        self._last_progress = 0.0

    @property
    def db(self) -> Database:
        return self.services.db

    def operation_context(self) -> OperationContext:
        """Who acts when a job changes things: the job itself, for the audit."""
        return OperationContext(
            actor=Actor(user_id=None, username=f"job:{self.job_id}", role=Role.admin),
            request_id=self.job_id.hex,
        )

    async def _fenced(self, step: Callable[[Any, Any], Awaitable[None]]) -> None:
        async with self.db.unit_of_work() as session:
            job = await service.held(session, self.job_id, self.owner)
            if job is None:
                raise LeaseLost(f"job {self.job_id} is no longer held by {self.owner}")
            await step(session, job)

    async def progress(
        self, percent: float, message: str | None = None, *, force: bool = False
    ) -> None:
        """Throttled to two writes a second unless `force` (or 100 %)."""
        now = time.monotonic()
        if not force and percent < 100 and now - self._last_progress < PROGRESS_EVERY_SECONDS:
            return
        self._last_progress = now

        async def step(session: Any, job: Any) -> None:
            await service.report_progress(session, job, int(percent), message)

        await self._fenced(step)

    async def log(
        self, message: str, data: dict[str, Any] | None = None, *, kind: str = "log"
    ) -> None:
        async def step(session: Any, job: Any) -> None:
            await service.add_event(session, job.id, kind, message, data)

        await self._fenced(step)

    async def save_checkpoint(self, data: dict[str, Any], message: str | None = None) -> None:
        async def step(session: Any, job: Any) -> None:
            job.checkpoint = data
            if message:
                await service.add_event(session, job.id, "log", message)

        await self._fenced(step)
        self.checkpoint = data

"""The job worker: claims runnable jobs under a lease, runs their handlers,
renews the leases while they run and ends each job exactly once.

Any number of these run at once (every `infrawatch worker`, and `serve` in
embedded mode). The database decides who runs what: claims use SKIP LOCKED
on PostgreSQL, every step after the claim is fenced by the lease owner, so a
worker that stalled past its lease can no longer end a job another took
over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from infrawatch.core.clock import utcnow
from infrawatch.core.db import database_unavailable
from infrawatch.core.outage import OutageReporter
from infrawatch.core.waiting import wait_or_timeout
from infrawatch.jobs import repository, service
from infrawatch.jobs.context import JobContext, JobServices, LeaseLost
from infrawatch.jobs.models import Job
from infrawatch.jobs.registry import Deferred, JobRegistry, JobType, PermanentError

log = logging.getLogger(__name__)
# How long a finished job waits for the database to come back to record its
# end, before leaving it to its lease running out (what a crash would do).
OUTAGE_PATIENCE = 300.0


@dataclass
class Running:
    job_type: JobType
    task: asyncio.Task[None]
    # Why this worker stopped the handler, if it did: "cancel" (asked to),
    # "lost" (someone else holds the lease), "shutdown".
    stop_reason: str | None = None


@dataclass
class WorkerOptions:
    lease_seconds: float = 30.0
    poll_seconds: float = 2.0
    max_running: int = 8
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )


class JobWorker:
    def __init__(
        self, services: JobServices, registry: JobRegistry, options: WorkerOptions | None = None
    ) -> None:
        self.services = services
        self.registry = registry
        self.options = options or WorkerOptions()
        self.owner = self.options.owner
        self.running: dict[uuid.UUID, Running] = {}
        self.finished = 0
        self._wake = asyncio.Event()
        self._stopping = False

    # --- the loops -----------------------------------------------------------------

    async def run(self) -> None:
        bus = self.services.bus
        queued = bus.subscribe(service.QUEUED_TOPIC, maxsize=1000)
        cancels = bus.subscribe(service.CANCEL_TOPIC, maxsize=1000)
        helpers = [
            asyncio.create_task(self._listen_queued(queued), name="jobs-queued"),
            asyncio.create_task(self._listen_cancels(cancels), name="jobs-cancels"),
            asyncio.create_task(self._heartbeat(), name="jobs-heartbeat"),
            asyncio.create_task(self._periodic(), name="jobs-periodic"),
        ]
        claiming = OutageReporter(log, "claiming jobs")
        try:
            while True:
                try:
                    await self._claim_and_start()
                    claiming.succeeded()
                except Exception as exc:
                    claiming.failed(exc)
                if claiming.failing:
                    await asyncio.sleep(claiming.delay(self.options.poll_seconds))
                else:
                    await wait_or_timeout(self._wake, self.options.poll_seconds)
                self._wake.clear()
        finally:
            queued.close()
            cancels.close()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._shutdown()

    async def _listen_queued(self, subscription: Any) -> None:
        async for _ in subscription:
            self._wake.set()

    async def _listen_cancels(self, subscription: Any) -> None:
        async for event in subscription:
            with contextlib.suppress(ValueError, KeyError):
                self._stop(uuid.UUID(event.payload["id"]), "cancel")

    async def _heartbeat(self) -> None:
        """Renew every lease we hold; learn of cancels and of lost leases."""
        interval = self.options.lease_seconds / 3
        renewing = OutageReporter(log, "renewing job leases")
        while True:
            await asyncio.sleep(interval)
            if not self.running:
                continue
            try:
                until = utcnow() + timedelta(seconds=self.options.lease_seconds)
                async with self.services.db.unit_of_work() as session:
                    held = await repository.renew_leases(
                        session, self.owner, list(self.running), until
                    )
                renewing.succeeded()
            except Exception as exc:
                renewing.failed(exc)
                continue
            for job_id in list(self.running):
                if job_id not in held:
                    self._stop(job_id, "lost")
                elif held[job_id]:
                    self._stop(job_id, "cancel")

    async def _periodic(self) -> None:
        scheduling = OutageReporter(log, "scheduling periodic jobs")
        while True:
            try:
                await self._ensure_schedules()
                await self._enqueue_due_schedules()
                scheduling.succeeded()
            except Exception as exc:
                scheduling.failed(exc)
            await asyncio.sleep(scheduling.delay(max(self.options.poll_seconds, 1.0)))

    # --- claiming and running ------------------------------------------------------

    async def _claim_and_start(self) -> None:
        if self.options.max_running - len(self.running) <= 0 or self._stopping:
            return
        types = self.registry.types
        async with self.services.db.unit_of_work(write=False) as session:
            runnable = await repository.runnable_types(session, list(types), utcnow())
        for name in sorted(runnable):
            job_type = types[name]
            free = self.options.max_running - len(self.running)
            if job_type.per_worker is not None:
                mine = sum(1 for r in self.running.values() if r.job_type.name == name)
                free = min(free, job_type.per_worker - mine)
            if self.options.max_running <= len(self.running) or self._stopping:
                return
            if free <= 0:
                continue
            async with self.services.db.unit_of_work() as session:
                claimed = await service.claim(
                    session, job_type, self.owner, self.options.lease_seconds, free
                )
                snapshots = [_Snapshot.of(job) for job in claimed]
            for snapshot in snapshots:
                task = asyncio.create_task(
                    self._execute(snapshot, job_type), name=f"job-{snapshot.id}"
                )
                self.running[snapshot.id] = Running(job_type, task)

    async def run_one(self, job_id: uuid.UUID, job_type: JobType) -> None:
        """Claim this one job and run it here, renewing its lease, then
        return: for work only this process can do."""
        async with self.services.db.unit_of_work() as session:
            job = await service.claim_job(session, job_id, self.owner, self.options.lease_seconds)
            if job is None:
                raise LookupError(f"job {job_id} is not queued")
            snapshot = _Snapshot.of(job)
        heartbeat = asyncio.create_task(self._heartbeat(), name="jobs-heartbeat")
        try:
            task = asyncio.create_task(self._execute(snapshot, job_type), name=f"job-{job_id}")
            self.running[job_id] = Running(job_type, task)
            await task
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)

    def _stop(self, job_id: uuid.UUID, reason: str) -> None:
        running = self.running.get(job_id)
        if running is not None and running.stop_reason is None:
            running.stop_reason = reason
            running.task.cancel()

    async def _execute(self, job: _Snapshot, job_type: JobType) -> None:
        ctx = JobContext(
            self.services, job.id, job.type, job.arguments, job.attempts, job.checkpoint, self.owner
        )
        try:
            try:
                async with asyncio.timeout(job_type.timeout_seconds):
                    result = await job_type.handler(ctx)
            except asyncio.CancelledError:
                reason = self.running[job.id].stop_reason
                if reason == "cancel":
                    await self._end(job.id, lambda s, j: service.mark_cancelled(s, j))
                elif reason == "shutdown":
                    await self._hand_back(job.id)
                if reason is None:
                    raise
            except LeaseLost:
                log.warning("job %s: lease lost; another worker has it", job.id)
            except Deferred as wait:
                reason, seconds = wait.reason, wait.seconds
                await self._end(job.id, lambda s, j: service.defer(s, j, reason, seconds))
            except PermanentError as exc:
                message, partial = str(exc) or type(exc).__name__, exc.result
                await self._end(
                    job.id,
                    lambda s, j: service.fail_attempt(
                        s, j, job_type, message, permanent=True, result=partial
                    ),
                )
            except TimeoutError:
                message = f"timed out after {job_type.timeout_seconds:g} s"
                await self._end(
                    job.id,
                    lambda s, j: service.fail_attempt(s, j, job_type, message, permanent=False),
                )
            except Exception as exc:
                if database_unavailable(exc):
                    # The database went away under the job: not the job's
                    # failure. It goes back to the queue, this attempt uncounted.
                    log.warning("job %s: the database went away; handing it back", job.id)
                    await self._once_the_database_is_back(lambda: self._hand_back(job.id))
                    return
                log.warning(
                    "job %s (%s) attempt %d failed", job.id, job.type, job.attempts, exc_info=True
                )
                message = f"{type(exc).__name__}: {exc}"[:2000]
                await self._end(
                    job.id,
                    lambda s, j: service.fail_attempt(s, j, job_type, message, permanent=False),
                )
            else:
                outcome = result
                await self._once_the_database_is_back(
                    lambda: self._end(job.id, lambda s, j: service.succeed(s, j, outcome))
                )
        except Exception:
            # Ending it failed for good: the lease runs out and the job is
            # claimed again, which is what a crash would do.
            log.exception("job %s: could not record how it ended", job.id)
        finally:
            self.running.pop(job.id, None)
            self.finished += 1
            self._wake.set()

    async def _end(self, job_id: uuid.UUID, step: Any) -> None:
        async with self.services.db.unit_of_work() as session:
            job = await service.held(session, job_id, self.owner)
            if job is None:
                log.warning("job %s: lease lost before it ended; its new holder ends it", job_id)
                return
            await step(session, job)

    async def _once_the_database_is_back(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` (recording a job's end), retrying while the database is
        unavailable, for at most OUTAGE_PATIENCE seconds."""
        deadline = asyncio.get_running_loop().time() + OUTAGE_PATIENCE
        delay = 1.0
        while True:
            try:
                await step()
                return
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _hand_back(self, job_id: uuid.UUID) -> None:
        """Graceful stop: the job goes back to the queue at once, and this
        attempt does not count against it."""
        async with self.services.db.unit_of_work() as session:
            job = await service.held(session, job_id, self.owner)
            if job is None:
                return
            job.status, job.lease_owner, job.lease_expires_at = "queued", None, None
            job.attempts = max(job.attempts - 1, 0)
            job.run_after = utcnow()
            await service.add_event(session, job.id, "status", f"handed back by {self.owner}")

    async def _shutdown(self) -> None:
        self._stopping = True
        for job_id in list(self.running):
            self._stop(job_id, "shutdown")
        tasks = [r.task for r in self.running.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    # --- periodic jobs -------------------------------------------------------------

    async def _ensure_schedules(self) -> None:
        now = utcnow()
        async with self.services.db.unit_of_work() as session:
            for periodic in self.registry.periodic:
                await repository.ensure_schedule(
                    session,
                    periodic.name,
                    periodic.type,
                    periodic.arguments or {},
                    periodic.period_seconds,
                    now,
                )

    async def _enqueue_due_schedules(self) -> None:
        now = utcnow()
        async with self.services.db.unit_of_work(write=False) as session:
            if not await repository.due_schedules(session, now):
                return
        async with self.services.db.unit_of_work() as session:
            due = await repository.due_schedules(session, now)
            for schedule in due:
                job_type = self.registry.get(schedule.type)
                following = _next_slot(schedule.next_run_at, schedule.period_seconds, now)
                if job_type is None or not await repository.advance_schedule(
                    session, schedule.name, schedule.next_run_at, following
                ):
                    continue
                job, _ = await service.enqueue(
                    session,
                    None,
                    job_type,
                    dict(schedule.arguments),
                    idempotency_key=f"schedule:{schedule.name}:{schedule.next_run_at.isoformat()}",
                )
                await repository.note_scheduled_job(session, schedule.name, job.id)


def _next_slot(seen: datetime, period_seconds: int, now: datetime) -> datetime:
    """The first slot after now: a worker that was down for a day runs a
    missed hourly job once, not 24 times."""
    period = timedelta(seconds=period_seconds)
    missed = max(int((now - seen) / period), 0)
    return seen + period * (missed + 1)


@dataclass(frozen=True)
class _Snapshot:
    """The claimed row's values, taken inside the claim's transaction."""

    id: uuid.UUID
    type: str
    arguments: dict[str, Any]
    attempts: int
    checkpoint: dict[str, Any] | None

    @classmethod
    def of(cls, job: Job) -> _Snapshot:
        return cls(job.id, job.type, dict(job.arguments), job.attempts, job.checkpoint)

"""Test job types and a worker to run them, shared by the in-process tests
and the worker processes of the kill -9 test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from infrawatch.core.config import Settings
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database
from infrawatch.jobs.context import JobContext, JobServices
from infrawatch.jobs.registry import JobRegistry, JobType, Periodic, PermanentError
from infrawatch.jobs.worker import JobWorker, WorkerOptions

KEYRING = Keyring([b"k" * 32])


async def steps(ctx: JobContext) -> dict[str, Any]:
    """Adds 0..n-1, one step at a time with a checkpoint after each, so a
    worker that dies resumes instead of starting over."""
    n = int(ctx.arguments["n"])
    delay = float(ctx.arguments.get("delay", 0.05))
    state = ctx.checkpoint or {"next": 0, "sum": 0}
    resumed_at = state["next"]
    for i in range(state["next"], n):
        await asyncio.sleep(delay)
        state = {"next": i + 1, "sum": state["sum"] + i}
        await ctx.save_checkpoint(state)
        await ctx.progress(100 * (i + 1) / n, f"step {i + 1} of {n}")
    return {"sum": state["sum"], "resumed_at": resumed_at}


FAILURES: dict[str, int] = {}


async def flaky(ctx: JobContext) -> dict[str, Any]:
    """Fails the first `fail_times` attempts."""
    key = str(ctx.job_id)
    FAILURES[key] = FAILURES.get(key, 0) + 1
    if FAILURES[key] <= int(ctx.arguments.get("fail_times", 1)):
        raise RuntimeError(f"transient failure {FAILURES[key]}")
    return {"attempt": ctx.attempt}


async def database_goes_away(ctx: JobContext) -> dict[str, Any]:
    """The first run meets the database gone (asyncpg's refusal is a plain
    ConnectionRefusedError); the second finds it back."""
    key = str(ctx.job_id)
    FAILURES[key] = FAILURES.get(key, 0) + 1
    if FAILURES[key] == 1:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    return {"attempt": ctx.attempt}


async def refuses(ctx: JobContext) -> dict[str, Any]:
    raise PermanentError("the arguments are wrong", result={"checked": 3})


CANCELLED: list[str] = []


async def sleeps(ctx: JobContext) -> dict[str, Any]:
    await ctx.log("going to sleep")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        CANCELLED.append(str(ctx.job_id))
        raise
    return {}


async def tick(ctx: JobContext) -> dict[str, Any]:
    return {"ticked": True}


STEPS = JobType("test.steps", steps, concurrency=32, max_attempts=5, backoff_seconds=0.1)
FLAKY = JobType("test.flaky", flaky, concurrency=2, max_attempts=3, backoff_seconds=0.1)
REFUSES = JobType("test.refuses", refuses, max_attempts=3)
SLEEPS = JobType("test.sleeps", sleeps, concurrency=1, max_attempts=1)
LIMITED = JobType("test.limited", sleeps, concurrency=1, max_attempts=1)
TICK = JobType("test.tick", tick, concurrency=1, max_attempts=1)
OUTAGE = JobType("test.outage", database_goes_away, concurrency=1, max_attempts=1)


def registry(*, periodic_seconds: int | None = None) -> JobRegistry:
    reg = JobRegistry()
    for job_type in (STEPS, FLAKY, REFUSES, SLEEPS, LIMITED, TICK, OUTAGE):
        reg.register(job_type)
    if periodic_seconds:
        reg.schedule(Periodic("test-tick", TICK.name, periodic_seconds))
    return reg


def services(db: Database) -> JobServices:
    return JobServices(db, db.bus, KEYRING, Settings())


@contextlib.asynccontextmanager
async def running_worker(
    db: Database,
    *,
    lease_seconds: float = 3.0,
    periodic_seconds: int | None = None,
    owner: str | None = None,
) -> AsyncIterator[JobWorker]:
    options = WorkerOptions(lease_seconds=lease_seconds, poll_seconds=0.2)
    if owner:
        options.owner = owner
    worker = JobWorker(services(db), registry(periodic_seconds=periodic_seconds), options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

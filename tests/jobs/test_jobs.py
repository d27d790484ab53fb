"""Durable jobs on both engines: enqueue in the caller's transaction, run,
retry, fail, cancel, idempotency, periodic runs, and takeover of a job
whose worker stopped renewing its lease."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from infrawatch.core.clock import utcnow
from infrawatch.core.context import cli_context
from infrawatch.core.db import Database
from infrawatch.core.errors import Conflict
from infrawatch.jobs import service
from tests.jobs import helpers
from tests.jobs.helpers import running_worker
from tests.monitoring.helpers import eventually


async def enqueue(db: Database, job_type: Any, arguments: dict[str, Any], **kw: Any) -> uuid.UUID:
    async with db.unit_of_work() as session:
        job, _ = await service.enqueue(session, cli_context(), job_type, arguments, **kw)
        return job.id


async def job_row(db: Database, job_id: uuid.UUID) -> Any:
    async with db.unit_of_work(write=False) as session:
        return await service.get_job(session, job_id)


async def events(db: Database, job_id: uuid.UUID) -> list[Any]:
    async with db.unit_of_work(write=False) as session:
        return (await service.job_events(session, job_id, 0, 1000)).events


async def finished(db: Database, job_id: uuid.UUID, timeout: float = 20) -> Any:
    async def probe() -> Any:
        job = await job_row(db, job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    return await eventually(probe, timeout=timeout)


async def test_a_job_exists_only_if_the_callers_transaction_commits(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.unit_of_work() as session:
            await service.enqueue(session, cli_context(), helpers.STEPS, {"n": 1})
            raise Boom
    async with db.unit_of_work(write=False) as session:
        assert (
            await service.list_jobs(
                session,
                status=None,
                job_type="test.steps",
                subject_id=None,
                sort=None,
                cursor=None,
                limit=10,
            )
        ).total == 0
    job_id = await enqueue(db, helpers.STEPS, {"n": 1})
    assert (await job_row(db, job_id)).status == "queued"
    assert [e.message for e in await events(db, job_id)] == ["queued"]


async def test_a_job_runs_reports_progress_and_ends_with_its_result(db: Database) -> None:
    job_id = await enqueue(db, helpers.STEPS, {"n": 4, "delay": 0.01})
    async with running_worker(db):
        job = await finished(db, job_id)
    assert job.status == "succeeded"
    assert job.result == {"sum": 6, "resumed_at": 0}
    assert job.progress == 100 and job.attempts == 1
    log = await events(db, job_id)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))  # gapless and ordered
    assert log[-1].message == "succeeded"
    assert any(e.kind == "progress" for e in log)
    async with db.unit_of_work(write=False) as session:
        after = await service.job_events(session, job_id, log[-2].seq, 100)
    assert [e.seq for e in after.events] == [log[-1].seq] and after.last_seq == log[-1].seq
    async with db.unit_of_work(write=False) as session:
        actions = (
            (
                await session.execute(
                    text("SELECT action FROM audit_records WHERE object_id = :id ORDER BY id"),
                    {"id": str(job_id)},
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["job.create", "job.succeeded"]


async def test_a_failing_job_is_retried_with_backoff_then_succeeds(db: Database) -> None:
    job_id = await enqueue(db, helpers.FLAKY, {"fail_times": 1})
    async with running_worker(db):
        job = await finished(db, job_id)
    assert job.status == "succeeded" and job.attempts == 2
    assert job.result == {"attempt": 2}
    messages = [e.message for e in await events(db, job_id)]
    assert "RuntimeError: transient failure 1" in messages
    assert any(m.startswith("retrying in") for m in messages)


async def test_a_database_outage_under_a_job_does_not_use_up_an_attempt(db: Database) -> None:
    # One attempt allowed: had the outage counted, the job would be failed.
    job_id = await enqueue(db, helpers.OUTAGE, {})
    async with running_worker(db):
        job = await finished(db, job_id)
    assert (job.status, job.attempts) == ("succeeded", 1), job.error
    messages = [e.message for e in await events(db, job_id)]
    assert any(m.startswith("handed back by") for m in messages), messages


async def test_a_job_that_keeps_failing_ends_failed_after_its_last_attempt(db: Database) -> None:
    job_id = await enqueue(db, helpers.FLAKY, {"fail_times": 10})
    async with running_worker(db):
        job = await finished(db, job_id)
    assert job.status == "failed" and job.attempts == 3
    assert job.error == "RuntimeError: transient failure 3"


async def test_a_permanent_error_fails_at_once_and_keeps_the_partial_result(db: Database) -> None:
    job_id = await enqueue(db, helpers.REFUSES, {})
    async with running_worker(db):
        job = await finished(db, job_id)
    assert (job.status, job.attempts, job.error) == ("failed", 1, "the arguments are wrong")
    assert job.result == {"checked": 3}


async def test_cancel_reaches_a_queued_and_a_running_job(db: Database) -> None:
    queued = await enqueue(db, helpers.STEPS, {"n": 1}, run_after=utcnow() + timedelta(hours=1))
    async with db.unit_of_work() as session:
        await service.cancel(session, cli_context(), queued)
    assert (await job_row(db, queued)).status == "cancelled"

    running = await enqueue(db, helpers.SLEEPS, {})
    async with running_worker(db):
        await eventually(lambda: _is(db, running, "running"))
        await eventually(lambda: _has_event(db, running, "going to sleep"))
        async with db.unit_of_work() as session:
            await service.cancel(session, cli_context(), running)
        job = await finished(db, running, timeout=10)
    assert job.status == "cancelled"
    assert str(running) in helpers.CANCELLED
    async with db.unit_of_work() as session:
        with pytest.raises(Conflict):
            await service.cancel(session, cli_context(), running)


async def _is(db: Database, job_id: uuid.UUID, status: str) -> bool:
    return (await job_row(db, job_id)).status == status


async def _has_event(db: Database, job_id: uuid.UUID, message: str) -> bool:
    return any(e.message == message for e in await events(db, job_id))


async def test_an_idempotency_key_runs_the_same_request_once(db: Database) -> None:
    first = await enqueue(db, helpers.STEPS, {"n": 1}, idempotency_key="abc")
    again = await enqueue(db, helpers.STEPS, {"n": 1}, idempotency_key="abc")
    assert first == again
    async with db.unit_of_work() as session:
        with pytest.raises(Conflict, match="different request"):
            await service.enqueue(
                session, cli_context(), helpers.STEPS, {"n": 2}, idempotency_key="abc"
            )


async def test_the_concurrency_limit_of_a_type_holds_across_workers(db: Database) -> None:
    ids = [await enqueue(db, helpers.LIMITED, {}) for _ in range(3)]
    async with running_worker(db, owner="w1"), running_worker(db, owner="w2"):
        await eventually(lambda: _count_running(db, ids, at_least=1))
        await asyncio.sleep(1.0)  # several claim rounds of both workers
        assert await _count_running(db, ids, at_least=0) == 1
        for job_id in ids:
            async with db.unit_of_work() as session:
                await service.cancel(session, cli_context(), job_id)


async def _count_running(db: Database, ids: list[uuid.UUID], at_least: int) -> int:
    running = sum([(await job_row(db, i)).status == "running" for i in ids])
    return running if running >= at_least else 0


async def test_a_periodic_job_runs_once_per_period_across_workers(db: Database) -> None:
    async with (
        running_worker(db, periodic_seconds=1, owner="a"),
        running_worker(db, periodic_seconds=1, owner="b"),
    ):
        await asyncio.sleep(3.5)
    async with db.unit_of_work(write=False) as session:
        rows = (
            (
                await session.execute(
                    text("SELECT idempotency_key FROM jobs WHERE type = 'test.tick'")
                )
            )
            .scalars()
            .all()
        )
    assert 2 <= len(rows) <= 5
    assert len(set(rows)) == len(rows)  # never two runs for one period


async def test_a_job_whose_worker_died_is_taken_over_and_resumes_from_its_checkpoint(
    db: Database,
) -> None:
    job_id = await enqueue(db, helpers.STEPS, {"n": 5, "delay": 0.01})
    async with db.unit_of_work() as session:
        # What a worker killed with -9 leaves: running, its lease run out,
        # two steps done.
        job = await service.get_job(session, job_id)
        job.status, job.attempts, job.lease_owner = "running", 1, "dead-worker"
        job.lease_expires_at = utcnow() - timedelta(seconds=1)
        job.checkpoint = {"next": 2, "sum": 1}
    async with running_worker(db):
        job = await finished(db, job_id)
    assert job.status == "succeeded" and job.attempts == 2
    assert job.result == {"sum": 10, "resumed_at": 2}
    assert any("dead-worker stopped renewing" in e.message for e in await events(db, job_id))


async def test_a_stopped_worker_hands_its_jobs_back(db: Database) -> None:
    job_id = await enqueue(db, helpers.SLEEPS, {})
    async with running_worker(db, owner="leaving"):
        await eventually(lambda: _is(db, job_id, "running"))
    job = await job_row(db, job_id)
    assert (job.status, job.attempts, job.lease_owner) == ("queued", 0, None)
    assert await _has_event(db, job_id, "handed back by leaving")

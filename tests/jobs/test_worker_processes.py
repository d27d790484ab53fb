"""Several worker processes on PostgreSQL share the jobs; one is killed
with -9 in the middle of a job. Every job must end exactly once, with the
right result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from infrawatch.core.config import Settings
from infrawatch.core.context import cli_context
from infrawatch.core.db import Database
from infrawatch.jobs import service
from tests.jobs import helpers
from tests.monitoring.helpers import eventually

ROOT = Path(__file__).resolve().parents[2]
JOBS = 24
STEPS = 8


def start_worker(url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.worker_process", url, name],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_workers_killed_mid_job_lose_nothing_and_repeat_nothing(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    if settings.is_sqlite:
        pytest.skip("several worker processes share jobs on PostgreSQL; SQLite has one")
    url = settings.effective_database_url
    ids: list[uuid.UUID] = []
    async with db.unit_of_work() as session:
        for n in range(JOBS):
            job, _ = await service.enqueue(
                session, cli_context(), helpers.STEPS, {"n": STEPS + n % 3, "delay": 0.1}
            )
            ids.append(job.id)
    workers = {
        name: start_worker(url, name, tmp_path / f"{name}.log") for name in ("w1", "w2", "w3")
    }
    try:
        # Kill, with -9, a worker that holds a job with some steps done.
        async def worker_mid_job() -> str | None:
            async with db.unit_of_work(write=False) as session:
                owner = await session.scalar(
                    text(
                        "SELECT lease_owner FROM jobs WHERE status = 'running' "
                        "AND checkpoint IS NOT NULL AND lease_owner LIKE 'w_' LIMIT 1"
                    )
                )
            return str(owner) if owner else None

        victim = await eventually(worker_mid_job, timeout=60)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()

        async def all_ended() -> bool:
            async with db.unit_of_work(write=False) as session:
                value = await session.scalar(
                    text(
                        "SELECT count(*) FROM jobs "
                        "WHERE status NOT IN ('succeeded', 'failed', 'cancelled')"
                    )
                )
            return value == 0

        await eventually(all_ended, timeout=120, interval=0.5)
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in workers.values():
            process.wait(timeout=30)
    async with db.unit_of_work(write=False) as session:
        jobs = {j: await service.get_job(session, j) for j in ids}
        ends = (
            await session.execute(
                text(
                    "SELECT object_id, count(*) FROM audit_records "
                    "WHERE action LIKE 'job.%' AND action != 'job.create' GROUP BY object_id"
                )
            )
        ).all()
        succeeded_events = (
            await session.execute(
                text(
                    "SELECT job_id, count(*) FROM job_events WHERE kind = 'status' "
                    "AND message = 'succeeded' GROUP BY job_id"
                )
            )
        ).all()
    for n, job_id in enumerate(ids):
        job = jobs[job_id]
        expected = sum(range(STEPS + n % 3))
        assert job.status == "succeeded", (job_id, job.status, job.error)
        assert job.result is not None and job.result["sum"] == expected
    # (the app's own worker runs its periodic jobs too: count ours only)
    ours = set(ids)
    assert {uuid.UUID(str(k)): v for k, v in ends if uuid.UUID(str(k)) in ours} == {
        j: 1 for j in ids
    }
    assert {uuid.UUID(str(k)): v for k, v in succeeded_events if uuid.UUID(str(k)) in ours} == {
        j: 1 for j in ids
    }
    taken_over = [j for j in jobs.values() if j.attempts > 1]
    assert taken_over, "the killed worker's job was not taken over"
    assert any(j.result and j.result["resumed_at"] > 0 for j in taken_over)

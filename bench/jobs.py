"""Durable jobs benchmark (not a test).

Enqueues N jobs that each sleep a little (I/O-bound, like a connection
test), runs K job-worker processes against them and reports jobs/s end to
end, the time a job spends on bookkeeping between its claim and its end
(p50/p99), CPU per job in the workers and the database's CPU share, on
SQLite (one worker: the embedded set-up) or PostgreSQL (several workers
sharing with SKIP LOCKED). The baseline in the same run is the same sleeps
in one bare asyncio loop, no database.

    python bench/jobs.py --jobs 2000 --database postgresql --workers 2
    python bench/jobs.py --jobs 1000 --database sqlite --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from benchdb import migrated_database
from infrawatch.core.config import Settings
from infrawatch.core.context import cli_context
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.jobs import service
from infrawatch.jobs.context import JobContext, JobServices
from infrawatch.jobs.registry import JobRegistry, JobType
from infrawatch.jobs.worker import JobWorker, WorkerOptions

BENCH_DB = "iw_bench_jobs"
TICKS = os.sysconf("SC_CLK_TCK")
SLEEP = 0.05


async def pause(ctx: JobContext) -> dict[str, Any]:
    await asyncio.sleep(SLEEP)
    return {"ok": True}


PAUSE = JobType("bench.pause", pause, concurrency=10_000, max_attempts=1)


def registry() -> JobRegistry:
    reg = JobRegistry()
    reg.register(PAUSE)
    return reg


async def run_worker(url: str, name: str, max_running: int) -> None:
    db = Database(url, EventBus())
    worker = JobWorker(
        JobServices(db, db.bus, Keyring([b"b" * 32]), Settings()),
        registry(),
        WorkerOptions(lease_seconds=30, poll_seconds=0.1, max_running=max_running, owner=name),
    )
    await worker.run()


async def prepare(kind: str, workdir: Path, count: int) -> str:
    url = await migrated_database(kind, workdir, BENCH_DB)
    db = Database(url, EventBus())
    for start in range(0, count, 500):
        async with db.unit_of_work() as session:
            for _ in range(start, min(start + 500, count)):
                await service.enqueue(session, cli_context("bench"), PAUSE, {})
    await db.dispose()
    return url


async def progress(url: str) -> tuple[int, list[float]]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        done = await conn.scalar(text("SELECT count(*) FROM jobs WHERE status = 'succeeded'"))
        waits = (
            await conn.execute(
                text("SELECT finished_at, started_at FROM jobs WHERE finished_at IS NOT NULL")
            )
        ).all()
    await engine.dispose()
    return int(done or 0), [_seconds(f) - _seconds(s) - SLEEP for f, s in waits if f and s]


def _seconds(value: Any) -> float:
    """SQLite hands back text, PostgreSQL datetimes; both are UTC."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_cpu() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


async def bare_loop(count: int, concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await asyncio.sleep(SLEEP)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-running", type=int, default=64)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(run_worker(args.worker[0], args.worker[1], args.max_running))
        return
    with tempfile.TemporaryDirectory(prefix="iw-bench-jobs-") as tmp:
        workdir = Path(tmp)
        url = asyncio.run(prepare(args.database, workdir, args.jobs))
        pg_before = postgres_cpu() if args.database == "postgresql" else 0.0
        started = time.perf_counter()
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    url,
                    f"w{i}",
                    "--max-running",
                    str(args.max_running),
                ],
                stdout=subprocess.DEVNULL,
                stderr=(workdir / f"w{i}.log").open("w"),
            )
            for i in range(args.workers)
        ]
        cpu: dict[int, float] = {}
        try:
            while True:
                time.sleep(0.5)
                for w in workers:
                    cpu[w.pid] = cpu_seconds(w.pid)
                done, waits = asyncio.run(progress(url))
                if done >= args.jobs or time.perf_counter() - started > 600:
                    break
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(timeout=30)
        elapsed = time.perf_counter() - started
        pg_cpu = postgres_cpu() - pg_before if args.database == "postgresql" else 0.0
    rate = done / elapsed
    worker_cpu = sum(cpu.values())
    ceiling = asyncio.run(bare_loop(args.jobs, args.max_running * args.workers))
    waits.sort()
    print(
        f"\njobs benchmark: {args.jobs} jobs of {SLEEP * 1000:.0f} ms, {args.database}, "
        f"{args.workers} worker process(es), up to {args.max_running} running each"
    )
    print(f"  {'jobs done':48} {done} in {elapsed:.1f} s")
    print(f"  {'jobs/s end to end':48} {rate:.0f}")
    print(
        f"  {'bookkeeping per job (claim to end, less the sleep)':48} "
        f"p50 {statistics.median(waits) * 1000:.0f} ms, "
        f"p99 {waits[int(len(waits) * 0.99) - 1] * 1000:.0f} ms"
    )
    print(f"  {'CPU per job (workers)':48} {worker_cpu / max(done, 1) * 1000:.2f} ms")
    if args.database == "postgresql":
        print(f"  {'CPU per job (PostgreSQL)':48} {pg_cpu / max(done, 1) * 1000:.2f} ms")
    print(f"  {'bare asyncio loop, same sleeps and concurrency':48} {ceiling:.0f} jobs/s")
    print(f"  {'ratio':48} {rate / ceiling:.2f}")


if __name__ == "__main__":
    main()

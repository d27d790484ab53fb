"""A job worker in its own process, running the test job types against
the database given on the command line (python -m tests.jobs.worker_process URL NAME)."""

from __future__ import annotations

import asyncio
import signal
import sys

from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.jobs.worker import JobWorker, WorkerOptions
from tests.jobs.helpers import registry, services


async def main(url: str, name: str) -> None:
    db = Database(url, EventBus())
    worker = JobWorker(
        services(db), registry(), WorkerOptions(lease_seconds=2.0, poll_seconds=0.2, owner=name)
    )
    task = asyncio.create_task(worker.run())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))

"""Takeover after a kill -9 (not a test).

Three `infrawatch worker` processes share N HTTP monitors on PostgreSQL;
one is killed with SIGKILL once all are checking. The targets are served by
this process, which notes when each monitor was really checked, so gaps are
measured at the target (not from the results table, where the dead worker's
last unflushed rows are missing). Reports the longest gap between two
checks of any monitor after the kill, against the promise: lease + interval.
Checks closer together than half an interval would mean two workers
checking one monitor (split brain); they are counted too.

    python bench/takeover.py --monitors 600 --interval 10 --lease 30 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from benchdb import migrated_database, monitor_row
from infrawatch.core.clock import utcnow
from infrawatch.monitoring.models import Monitor

BENCH_DB = "iw_bench_takeover"


class Target:
    def __init__(self) -> None:
        self.hits: dict[str, list[float]] = collections.defaultdict(list)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits[request.match_info["n"]].append(time.monotonic())
        return web.Response(text="ok")


async def seed(url: str, count: int, interval: int, port: int) -> None:
    engine = create_async_engine(url)
    now = utcnow()
    rows = [
        monitor_row(f"takeover-{n:05}", f"http://127.0.0.1:{port}/m/{n}", interval, now)
        for n in range(count)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(Monitor), rows)
    await engine.dispose()


def worker(url: str, workdir: Path, lease: float, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    env.update(
        {
            "INFRAWATCH_DATA_DIR": str(workdir / "data"),
            "INFRAWATCH_DATABASE_URL": url,
            "INFRAWATCH_ENGINE_LEASE_SECONDS": str(lease),
            "INFRAWATCH_ALERTING_ENABLED": "false",
            "INFRAWATCH_JOBS_ENABLED": "false",
            "INFRAWATCH_LOG_LEVEL": "warning",
        }
    )
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "worker"], env=env, stdout=log, stderr=log
    )


def gaps(hits: dict[str, list[float]], since: float, until: float) -> list[float]:
    """Per monitor, the longest gap between consecutive checks in the window
    (counting from its last check before the window)."""
    longest = []
    for times in hits.values():
        inside = [t for t in times if since <= t <= until]
        before = [t for t in times if t < since]
        series = ([before[-1]] if before else []) + inside + [until]
        longest.append(max(b - a for a, b in itertools.pairwise(series)))
    return longest


def doubles(hits: dict[str, list[float]], since: float, within: float) -> int:
    return sum(
        1
        for times in hits.values()
        for a, b in itertools.pairwise(times)
        if a >= since and b - a < within
    )


async def run(args: argparse.Namespace) -> None:
    target = Target()
    app = web.Application()
    app.router.add_get("/m/{n}", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    bound = args.lease + args.interval
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="iw-takeover-") as folder:
        workdir = Path(folder)
        url = await migrated_database("postgresql", workdir, BENCH_DB)
        await seed(url, args.monitors, args.interval, port)
        workers = [worker(url, workdir, args.lease, f"w{i}") for i in range(3)]
        try:
            warm = args.interval * 3 + 15
            print(
                f"{args.monitors} monitors every {args.interval} s, 3 workers, lease "
                f"{args.lease:g} s, {args.rounds} kill(s); warming up {warm} s",
                flush=True,
            )
            await asyncio.sleep(warm)
            for round_ in range(args.rounds):
                victim = round_ % 3
                before_kill = time.monotonic()
                steady = gaps(target.hits, before_kill - args.interval * 2, before_kill)
                workers[victim].send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                await asyncio.sleep(args.lease + args.interval * 4)
                after = gaps(target.hits, killed_at, time.monotonic())
                longest = max(after)
                worst = max(worst, longest)
                print(
                    f"kill {round_ + 1} (worker {victim}, SIGKILL): steady longest gap "
                    f"{max(steady):.1f} s; after: longest {longest:.1f} s, p99 "
                    f"{statistics.quantiles(after, n=100)[98]:.1f} s, median "
                    f"{statistics.median(after):.1f} s; checks < interval/2 apart: "
                    f"{doubles(target.hits, killed_at - args.interval, args.interval / 2)}",
                    flush=True,
                )
                # Back to three for the next round (the kill -9 loop).
                workers[victim].wait(timeout=30)
                workers[victim] = worker(url, workdir, args.lease, f"w{victim}-{round_}")
                await asyncio.sleep(warm)
        finally:
            for process in workers:
                if process.poll() is None:
                    process.terminate()
            for process in workers:
                process.wait(timeout=30)
    await runner.cleanup()
    print(f"monitors checked: {len(target.hits)} of {args.monitors}")
    print(
        f"longest gap after any kill: {worst:.1f} s; bound lease + interval = {bound:g} s "
        f"({'held' if worst <= bound else 'BROKEN'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=600)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=1, help="kill -9 this many times")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

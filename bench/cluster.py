"""The cluster, measured (not a test).

PostgreSQL + Redis, 2 `infrawatch serve` replicas (API and console only),
3 `infrawatch worker` processes in 2 locations (two in `eu`, one in `us`),
N HTTP monitors at a 30 s interval against a local nginx: most may run
anywhere, a share (--located) lists both locations and is decided by quorum.
Reports:

  - on-time share (checks started within 1 s of schedule) and lateness p99,
    from the workers' own /metrics, over a steady window;
  - CPU per check: the workers alone, and with PostgreSQL and Redis;
  - API list p95 (GET /api/v1/monitors?limit=50) under 20 concurrent
    clients spread over both replicas, against /healthz in the same run;
  - WebSocket delivery across replicas: a change made through replica A,
    the event seen by a socket on replica B (p50/p99 over --changes);
  - the longest check gap after one `eu` worker is killed with -9 (goal:
    lease + interval), from the stored results (rows the dead worker had
    not flushed are missing, so the gap is overstated by up to a flush).

    python bench/cluster.py --monitors 20000 --duration 120 --lease 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect

from benchdb import migrated_database, monitor_row
from engine import (
    TARGET_ADDRESSES,
    cpu_seconds,
    free_port,
    postgres_cpu_seconds,
    scrape,
    start_nginx,
    stored_samples,
)
from infrawatch.core.clock import utcnow
from infrawatch.core.config import Settings
from infrawatch.core.datadir import prepare_data_dir
from infrawatch.monitoring.models import Monitor

BENCH_DB = "iw_bench_cluster"
REDIS_URL = "redis://127.0.0.1:6379/13"
WORKERS = [("eu", "w-eu-1"), ("eu", "w-eu-2"), ("us", "w-us-1")]


def environment(url: str, workdir: Path, lease: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    env.update(
        {
            "INFRAWATCH_DATA_DIR": str(workdir / "data"),
            "INFRAWATCH_DATABASE_URL": url,
            "INFRAWATCH_REDIS_URL": REDIS_URL,
            "INFRAWATCH_ENGINE_LEASE_SECONDS": str(lease),
            "INFRAWATCH_LOG_LEVEL": "warning",
        }
    )
    # What serve's first start makes (the keys every process shares): the
    # commands run before any serve make no installation themselves.
    prepare_data_dir(Settings(data_dir=workdir / "data", database_url=url))
    return env


def start(env: dict[str, str], workdir: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    log = (workdir / f"{name}.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "infrawatch", *args], env=env, stdout=log, stderr=subprocess.STDOUT
    )


async def seed(url: str, count: int, located: float, interval: int, port: int) -> None:
    engine = create_async_engine(url)
    now = utcnow()
    rows = []
    for n in range(count):
        host = TARGET_ADDRESSES[n % len(TARGET_ADDRESSES)]
        row = monitor_row(f"cluster-{n:05}", f"http://{host}:{port}/ok/{n}", interval, now)
        both = n < count * located
        row.update(locations=["eu", "us"] if both else [], located=both, quorum=None)
        rows.append(row)
    async with engine.begin() as conn:
        for start_at in range(0, len(rows), 5000):
            await conn.execute(insert(Monitor), rows[start_at : start_at + 5000])
    await engine.dispose()


def token_for(env: dict[str, str]) -> str:
    def run(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "infrawatch", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    run("users", "create", "bench", "--role", "admin", "--password-stdin", stdin="x" * 20 + "\n")
    return run("tokens", "create", "bench").strip().splitlines()[-1]


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base} never became ready")


async def latencies_under_load(
    bases: list[str], token: str, path: str, clients: int, seconds: float
) -> list[float]:
    seen: list[float] = []
    stop = time.monotonic() + seconds

    async def one(index: int) -> None:
        base = bases[index % len(bases)]
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client:
            while time.monotonic() < stop:
                began = time.perf_counter()
                response = await client.get(path)
                response.raise_for_status()
                seen.append(time.perf_counter() - began)

    await asyncio.gather(*(one(i) for i in range(clients)))
    return seen


async def websocket_delivery(a: str, b: str, token: str, changes: int) -> list[float]:
    """Create servers through replica A; time until B's socket says so."""
    delays: list[float] = []
    ws_url = b.replace("http://", "ws://") + "/ws"
    async with (
        connect(ws_url) as ws,
        httpx.AsyncClient(base_url=a, headers={"Authorization": f"Bearer {token}"}) as api,
    ):
        await ws.send(json.dumps({"type": "auth", "token": token}))
        await ws.recv()  # hello
        await ws.send(json.dumps({"type": "subscribe", "topics": ["inventory.server.*"]}))
        await ws.recv()  # subscribed
        for _ in range(changes):
            name = f"ws-{uuid.uuid4().hex[:8]}"
            began = time.perf_counter()
            # A name only: no address anything could try to reach.
            created = await api.post("/api/v1/servers", json={"name": name})
            created.raise_for_status()
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if message.get("type") == "event" and name in json.dumps(message):
                    delays.append(time.perf_counter() - began)
                    break
            await asyncio.sleep(random.uniform(0.05, 0.2))
    return delays


async def longest_gap(url: str, since: Any, until: Any) -> float:
    """The longest gap between consecutive checks of one monitor from one
    location, in the window (each series starts at its last check before)."""
    series: dict[tuple[Any, Any], list[Any]] = {}
    for monitor_id, sample in await stored_samples(url, since):
        if sample.checked_at <= until:
            series.setdefault((monitor_id, sample.location), []).append(sample.checked_at)
    gaps = [
        (later - earlier).total_seconds()
        for times in series.values()
        for earlier, later in zip(sorted(times), sorted(times)[1:], strict=False)
    ]
    return max(gaps, default=0.0)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def lateness_summary(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> tuple[float, ...]:
    buckets: dict[float, float] = {}
    checks = 0.0
    for a, b in zip(before, after, strict=True):
        checks += b["checks"] - a["checks"]
        for bound, value in b["lateness"].items():
            buckets[bound] = buckets.get(bound, 0.0) + value - a["lateness"].get(bound, 0.0)
    total = buckets.get(float("inf"), 0.0) or 1.0
    on_time = buckets.get(1.0, 0.0) / total
    p99 = next((bound for bound in sorted(buckets) if buckets[bound] >= 0.99 * total), 0.0)
    return checks, on_time, p99


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="iw-bench-cluster-"))
    port = free_port()
    nginx = start_nginx(workdir, port, free_port())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        url = await migrated_database("postgresql", workdir, BENCH_DB)
        env = environment(url, workdir, args.lease)
        subprocess.run(["redis-cli", "-n", "13", "flushdb"], check=False, capture_output=True)
        await seed(url, args.monitors, args.located, args.interval, port)
        token = token_for(env)
        serve_env = {
            **env,
            "INFRAWATCH_ENGINE_ENABLED": "false",
            "INFRAWATCH_ALERTING_ENABLED": "false",
            "INFRAWATCH_JOBS_ENABLED": "false",
        }
        bases = []
        for index in range(2):
            api_port = free_port()
            processes.append(
                start(serve_env, workdir, f"serve-{index}", "serve", "--port", str(api_port))
            )
            bases.append(f"http://127.0.0.1:{api_port}")
        workers: dict[str, subprocess.Popen[bytes]] = {}
        metrics: dict[str, int] = {}
        for location, name in WORKERS:
            metrics[name] = free_port()
            workers[name] = start(
                env,
                workdir,
                name,
                "worker",
                "--location",
                location,
                "--metrics-port",
                str(metrics[name]),
            )
        processes.extend(workers.values())
        for base in bases:
            await wait_ready(base)
        checks_per_interval = args.monitors * (1 + args.located)
        print(
            f"{args.monitors} monitors every {args.interval} s ({args.located:.0%} in both "
            f"locations: {checks_per_interval:.0f} checks per interval), 2 serve, "
            f"3 workers (2 in eu, 1 in us), lease {args.lease:g} s",
            flush=True,
        )
        await asyncio.sleep(args.interval * 2 + 10)  # every monitor checked, leases settled

        first = [scrape(metrics[name]) for _, name in WORKERS]
        cpu_first = sum(cpu_seconds(w.pid) for w in workers.values())
        pg_first = postgres_cpu_seconds()
        redis_first = _redis_cpu()
        began = time.monotonic()
        await asyncio.sleep(args.duration)
        elapsed = time.monotonic() - began
        last = [scrape(metrics[name]) for _, name in WORKERS]
        cpu = sum(cpu_seconds(w.pid) for w in workers.values()) - cpu_first
        pg = postgres_cpu_seconds() - pg_first
        redis = _redis_cpu() - redis_first
        checks, on_time, p99 = lateness_summary(first, last)
        outcomes: dict[str, float] = {}
        for a, b in zip(first, last, strict=True):
            for outcome, count in b["outcomes"].items():
                outcomes[outcome] = (
                    outcomes.get(outcome, 0.0) + count - a["outcomes"].get(outcome, 0)
                )
        print(
            f"steady {elapsed:.0f} s: {checks / elapsed:.0f} checks/s "
            f"(expected {checks_per_interval / args.interval:.0f}); on time (≤ 1 s) "
            f"{on_time:.2%}; lateness p99 ≤ {p99 * 1000:g} ms"
        )
        # A failing check is retried sooner than its interval: more checks than scheduled.
        print("outcomes: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(outcomes.items())))
        print(
            f"CPU per check: workers {cpu / checks * 1000:.2f} ms; with PostgreSQL and Redis "
            f"{(cpu + pg + redis) / checks * 1000:.2f} ms ({(cpu + pg + redis) / elapsed:.2f} "
            f"cores of 2)"
        )

        health = await latencies_under_load(bases, token, "/healthz", 20, args.api_seconds)
        listed = await latencies_under_load(
            bases, token, "/api/v1/monitors?limit=50", 20, args.api_seconds
        )
        print(
            f"API under 20 clients over 2 replicas: GET /api/v1/monitors?limit=50 "
            f"p50 {percentile(listed, 0.5) * 1000:.0f} ms, p95 "
            f"{percentile(listed, 0.95) * 1000:.0f} ms ({len(listed) / args.api_seconds:.0f}/s); "
            f"/healthz p95 {percentile(health, 0.95) * 1000:.0f} ms"
        )

        delays = await websocket_delivery(bases[0], bases[1], token, args.changes)
        print(
            f"WebSocket across replicas ({len(delays)} changes made on one, seen on the "
            f"other): p50 {statistics.median(delays) * 1000:.0f} ms, p99 "
            f"{percentile(delays, 0.99) * 1000:.0f} ms"
        )

        victim = "w-eu-1"
        before_kill = utcnow()
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(timeout=30)
        await asyncio.sleep(args.lease + args.interval * 3)
        gap = await longest_gap(url, before_kill, utcnow())
        bound = args.lease + args.interval
        print(
            f"kill -9 of {victim}: longest gap between two checks of a monitor from one "
            f"location {gap:.1f} s; goal lease + interval = {bound:g} s "
            f"({'held' if gap <= bound else 'MISSED'})"
        )
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        nginx.terminate()
        nginx.wait(timeout=10)


def _redis_cpu() -> float:
    done = subprocess.run(
        ["redis-cli", "info", "cpu"], capture_output=True, text=True, check=False
    ).stdout
    values = dict(line.split(":", 1) for line in done.splitlines() if line.startswith("used_cpu_"))
    return float(values.get("used_cpu_sys", 0)) + float(values.get("used_cpu_user", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=20_000)
    parser.add_argument("--located", type=float, default=0.1, help="share in both locations")
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--lease", type=float, default=15.0)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--api-seconds", type=float, default=20.0)
    parser.add_argument("--changes", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

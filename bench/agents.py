"""Host agents reporting (not a test).

N simulated agents, one process: each has its own server and agent token,
and reports every INTERVAL seconds (spread over the interval, as real
agents starting at random times are) to a real `infrawatch serve` on
loopback. Measures what a report costs the server: CPU seconds of the serve
process per report, and bytes the database grew per report (latest reading
plus its 5 min / hour / day buckets). A baseline in the same run: the same
server answering /healthz at the same rate, so the figure is what a report
adds, not what any request costs.

    python bench/agents.py --agents 2000 --interval 30 --rounds 2 --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from benchdb import migrated_database
from infrawatch.core.clock import utcnow
from infrawatch.core.context import cli_context
from infrawatch.core.crypto import Keyring, hash_token
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.credentials.agent_tokens import AGENT_TOKEN_PREFIX, agent_token_ref
from infrawatch.credentials.models import AgentToken
from infrawatch.inventory import service as inventory

BENCH_DB = "iw_bench_agents"
TABLES = ("agent_reports", "host_metric_rollups")


def reading(n: int, tick: int) -> dict[str, object]:
    return {
        "agent_version": "0.1.0",
        "hostname": f"agent-{n:05}",
        "cpu_percent": random.uniform(0, 100),
        "cpu_count": 2,
        "load": [random.uniform(0, 4), 0.5, 0.4],
        "memory": {
            "total_bytes": 4 << 30,
            "used_bytes": 1 << 30,
            "percent": random.uniform(10, 90),
        },
        "swap": {"total_bytes": 0, "used_bytes": 0, "percent": 0.0},
        "disks": [
            {"mount": "/", "total_bytes": 50 << 30, "used_bytes": 20 << 30, "percent": 40.0},
            {"mount": "/var", "total_bytes": 100 << 30, "used_bytes": 60 << 30, "percent": 60.0},
        ],
        "network": {"bytes_sent": 1000 * tick, "bytes_received": 3000 * tick},
        "uptime_seconds": 86400 + tick * 30,
        "processes": 150,
    }


async def seed(url: str, count: int, keyring: Keyring) -> list[str]:
    """Servers through the inventory service; tokens straight into their table."""
    db = Database(url, EventBus())
    ctx = cli_context("bench")
    now = utcnow()
    secrets: list[str] = []
    for start in range(0, count, 500):
        names = [f"agent-{n:05}" for n in range(start, min(start + 500, count))]
        async with db.unit_of_work() as session:
            ids = await inventory.create_servers(
                session, ctx, [{"name": name, "lifecycle": "active"} for name in names]
            )
            tokens = []
            for server_id in ids:
                token = AGENT_TOKEN_PREFIX + uuid.uuid4().hex
                secrets.append(token)
                tokens.append(
                    {
                        "server_id": server_id,
                        "token_hash": hash_token(token),
                        "token_encrypted": keyring.encrypt(token, agent_token_ref(server_id)),
                        "prefix": token[:12],
                        "created_by": "bench",
                        "created_at": now,
                    }
                )
            await session.execute(insert(AgentToken), tokens)
    await db.dispose()
    return secrets


async def stored_bytes(url: str, db_file: Path | None) -> int:
    if db_file is not None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        await engine.dispose()
        return db_file.stat().st_size
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        total = 0
        for table in TABLES:
            total += int(
                (await conn.execute(text(f"SELECT pg_total_relation_size('{table}')"))).scalar_one()
            )
    await engine.dispose()
    return total


async def drive(
    base: str, tokens: list[str], interval: float, rounds: int, path: str
) -> tuple[int, int, float]:
    """Send one request per agent per interval, spread evenly; -> (sent, failed, seconds)."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    sent = failed = 0
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.monotonic()
        gap = interval / len(tokens)
        pending: set[asyncio.Task[None]] = set()

        async def one(n: int, tick: int) -> None:
            nonlocal sent, failed
            try:
                if path == "report":
                    r = await client.post(
                        "/api/v1/agents/report",
                        json=reading(n, tick),
                        headers={"Authorization": f"Bearer {tokens[n]}"},
                    )
                    ok = r.status_code == 202
                else:
                    ok = (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                # A keep-alive connection the server closed as it was reused:
                # counted as failed, as an agent would retry it next round.
                ok = False
            sent += 1
            failed += not ok

        for tick in range(rounds):
            for n in range(len(tokens)):
                due = started + (tick * len(tokens) + n) * gap
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(n, tick))
                pending.add(task)
                task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        return sent, failed, time.monotonic() - started


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=1) as client:
        for _ in range(300):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("serve did not become ready")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="iw-bench-agents-"))
    url = await migrated_database(args.database, workdir, BENCH_DB)
    db_file = workdir / f"{BENCH_DB}.db" if args.database == "sqlite" else None
    master_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    tokens = await seed(url, args.agents, Keyring.from_secret(master_key))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    env.update(
        INFRAWATCH_DATA_DIR=str(workdir / "data"),
        INFRAWATCH_DATABASE_URL=url,
        INFRAWATCH_ENGINE_ENABLED="false",
        INFRAWATCH_ALERTING_ENABLED="false",
        INFRAWATCH_JOBS_ENABLED="false",
        INFRAWATCH_MASTER_KEY=master_key,
    )
    port = 18000 + random.randint(0, 999)
    log = (workdir / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "infrawatch", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        process = psutil.Process(serve.pid)
        # Warm up: every agent's first report creates its rows.
        await drive(base, tokens, max(args.interval / 3, 5), 1, "report")
        before_bytes = await stored_bytes(url, db_file)
        before_cpu = cpu_seconds(process)
        sent, failed, seconds = await drive(base, tokens, args.interval, args.rounds, "report")
        report_cpu = cpu_seconds(process) - before_cpu
        grown = await stored_bytes(url, db_file) - before_bytes
        before_cpu = cpu_seconds(process)
        base_sent, _, _ = await drive(base, tokens, args.interval, args.rounds, "healthz")
        baseline_cpu = cpu_seconds(process) - before_cpu
    finally:
        serve.terminate()
        serve.wait(30)
    rate = sent / seconds
    print(
        f"database: {args.database}; agents: {args.agents}; "
        f"interval {args.interval:g} s; rounds {args.rounds}"
    )
    print(f"reports sent: {sent} in {seconds:.1f} s ({rate:.1f}/s), failed: {failed}")
    print(
        f"serve CPU: {report_cpu:.1f} s = {1000 * report_cpu / sent:.2f} ms per report "
        f"({100 * report_cpu / seconds:.0f} % of one core)"
    )
    print(
        f"baseline /healthz at the same rate: {1000 * baseline_cpu / base_sent:.2f} ms per request"
    )
    print(
        "a report adds "
        f"{1000 * (report_cpu / sent - baseline_cpu / base_sent):.2f} ms of CPU over /healthz"
    )
    print(
        f"database growth: {grown} bytes = {grown / sent:.1f} bytes per report "
        "(latest readings are replaced; buckets grow once per 5 min / hour / day)"
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Public status page benchmark (not a test).

A page of 100 monitors (4 sections) with 90 days of daily rollups and 24 h
of hourly ones each, plus a few announced incidents, rendered through the
whole app (ASGI, no network) as HTML, as JSON, and as one badge. The
baseline in the same run is /healthz through the same app: the fixed cost
of a request. The issue's target: HTML under 100 ms. "cold" rows clear the
rollup cache before every request (the first reader after it expired, once
a minute per page); the others read it as a crowd does.

    python bench/statuspage.py --database sqlite
    python bench/statuspage.py --database postgresql --monitors 100 --rounds 200
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from benchdb import migrated_database, rollup_row
from infrawatch.app import create_app
from infrawatch.core.clock import utcnow
from infrawatch.core.config import Settings
from infrawatch.core.context import cli_context
from infrawatch.monitoring import repository as monitoring_repository
from infrawatch.monitoring import service as monitoring
from infrawatch.monitoring.rollups import bucket_start
from infrawatch.monitoring.schemas import MonitorCreate
from infrawatch.statuspage import announcements as status_announcements
from infrawatch.statuspage import pages as status_pages
from infrawatch.statuspage import public as status_public
from infrawatch.statuspage.schemas import IncidentCreate, PageCreate

BENCH_DB = "iw_bench_statuspage"


def rollup(monitor_id: uuid.UUID, granularity: int, start: Any, checks: int) -> dict[str, Any]:
    return rollup_row(monitor_id, granularity, start, checks, 1 if random.random() < 0.1 else 0)


async def prepare(app: Any, monitors: int) -> str:
    runtime = app.state.runtime
    presenter = monitoring.Presenter(runtime.keyring, "http://127.0.0.1")
    ctx = cli_context("bench")
    ids: list[uuid.UUID] = []
    async with runtime.db.unit_of_work() as session:
        for i in range(monitors):
            created = await monitoring.create_monitor(
                session,
                ctx,
                MonitorCreate(name=f"svc-{i:03}", type="http", target=f"http://127.0.0.1:9/{i}"),
                presenter,
            )
            ids.append(created.value.id)
    now = utcnow()
    today, hour = bucket_start(now, 86400), bucket_start(now, 3600)
    rows = []
    for monitor_id in ids:
        rows += [rollup(monitor_id, 86400, today - timedelta(days=d), 2880) for d in range(90)]
        rows += [rollup(monitor_id, 3600, hour - timedelta(hours=h), 120) for h in range(24)]
    async with runtime.db.unit_of_work() as session:
        for start in range(0, len(rows), 2000):
            await monitoring_repository.upsert_rollups(session, rows[start : start + 2000])
    sections = [
        {
            "name": f"Section {s}",
            "monitors": [
                {"monitor_id": str(m), "name": f"Service {n}", "show_target": False}
                for n, m in enumerate(ids[s::4])
            ],
        }
        for s in range(4)
    ]
    async with runtime.db.unit_of_work() as session:
        page = await status_pages.create_page(
            session,
            ctx,
            PageCreate.model_validate({"slug": "bench", "title": "Bench", "sections": sections}),
        )
        for i in range(5):
            await status_announcements.create_incident(
                session,
                ctx,
                page.id,
                IncidentCreate(title=f"Incident {i}", impact="minor", message="investigating"),
            )
    return str(ids[0])


async def timed(
    client: httpx.AsyncClient, path: str, rounds: int, cold: bool = False
) -> list[float]:
    samples = []
    for _ in range(rounds):
        if cold:  # the first reader after the rollup cache expired
            status_public.PUBLIC_ROLLUPS.clear()
        started = time.perf_counter()
        response = await client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    return samples


def summary(name: str, samples: list[float], size: int) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"{name:<22} p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   "
        f"max {ordered[-1]:7.1f} ms   {size / 1024:7.1f} KiB"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--monitors", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    random.seed(7)
    with tempfile.TemporaryDirectory() as tmp:
        url = await migrated_database(args.database, Path(tmp), BENCH_DB)
        settings = Settings(
            data_dir=Path(tmp),
            database_url=url,
            engine_enabled=False,
            alerting_enabled=False,
            jobs_enabled=False,
        )
        app = create_app(settings, run_migrations=False)
        async with app.router.lifespan_context(app):
            monitor = await prepare(app, args.monitors)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                paths = {
                    "healthz (baseline)": ("/healthz", False),
                    "status page HTML": ("/status/bench", False),
                    "status page HTML cold": ("/status/bench", True),
                    "status page JSON": ("/status/bench.json", False),
                    "status page JSON cold": ("/status/bench.json", True),
                    "badge (uptime)": (f"/badge/{monitor}/uptime.svg", False),
                }
                for path, _ in paths.values():  # warm up: templates, connections
                    await timed(client, path, 3)
                print(
                    f"{args.monitors} monitors x 90 days on {args.database}, "
                    f"{args.rounds} sequential requests each"
                )
                results = {}
                for name, (path, cold) in paths.items():
                    samples = await timed(client, path, args.rounds, cold)
                    size = len((await client.get(path)).content)
                    results[name] = statistics.median(samples)
                    print(summary(name, samples, size))
                ratio = results["status page HTML"] / results["healthz (baseline)"]
                print(f"HTML / baseline: {ratio:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())

"""Console benchmark (not a test).

The console pages a person opens, at the issue's scale: 100,000 servers and
20,000 monitors (1 % down, 2 % degraded, every one with 24 hours of hourly
rollups and the last hour in 5-minute ones). Each page through the whole
app (ASGI in process, session cookie, templates) as the browser asks for
it. Baseline in the same run: the JSON API's first page of servers, which
the servers page adds templating to. Uptime Kuma's dashboard takes 15-45 s
at 700-1,400 monitors (the issue's figure); the aim here is well under a
second for every page.

    python bench/console.py --database postgresql
    python bench/console.py --database sqlite --servers 20000 --monitors 5000
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import statistics
import tempfile
import time
import uuid
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select, update

from benchdb import rollup_row
from infrawatch.app import create_app
from infrawatch.core.clock import utcnow
from infrawatch.inventory.models import InventoryGeneration, Server
from infrawatch.monitoring.models import SHARD_COUNT, Monitor, MonitorRollup
from infrawatch.monitoring.rollups import bucket_start
from inventory import prepare_database, seed

BATCH = 5000


def monitor_row(n: int, server_id: uuid.UUID | None, now: Any) -> dict[str, Any]:
    rng = random.Random(n)
    roll = rng.random()
    status = "down" if roll < 0.01 else "degraded" if roll < 0.03 else "up"
    monitor_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    return {
        "id": monitor_id,
        "name": f"check-{n:06}",
        "type": "http",
        # 198.18.0.0/15 is set aside for benchmarks; nothing here connects to it.
        "target": f"http://198.18.{n // 250 % 256}.{n % 250 + 1}/health",
        "interval_seconds": 30,
        "timeout_seconds": 10.0,
        "retry_interval_seconds": 30,
        "failure_threshold": 3,
        "success_threshold": 1,
        "conditions": [],
        "settings": {},
        "server_id": server_id,
        "critical": False,
        "paused": False,
        "in_maintenance": False,
        "status": status,
        "status_changed_at": now,
        "shard": zlib.crc32(monitor_id.bytes) % SHARD_COUNT,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


async def seed_monitors(app: Any, count: int) -> None:
    db = app.state.runtime.db
    now = utcnow()
    async with db.unit_of_work(write=False) as session:
        server_ids = list(await session.scalars(select(Server.id).limit(count)))
    rows = [
        monitor_row(n, server_ids[n] if n < len(server_ids) else None, now) for n in range(count)
    ]
    hour, five = bucket_start(now, 3600), bucket_start(now, 300)
    for start in range(0, count, BATCH):
        chunk = rows[start : start + BATCH]
        rollups = []
        for m in chunk:
            rollups += [
                rollup_row(m["id"], 3600, hour - timedelta(hours=h), 120) for h in range(24)
            ]
            rollups += [
                rollup_row(m["id"], 300, five - timedelta(minutes=5 * i), 10) for i in range(12)
            ]
        async with db.unit_of_work() as session:
            await session.execute(insert(Monitor), chunk)
            for r in range(0, len(rollups), 20_000):
                await session.execute(insert(MonitorRollup), rollups[r : r + 20_000])
        print(f"  monitors {min(start + BATCH, count):>6}/{count}", end="\r", flush=True)
    print()
    async with db.engine.connect() as conn:
        if db.is_sqlite:
            await conn.exec_driver_sql("ANALYZE")
        else:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")


async def timed(client: httpx.AsyncClient, path: str, rounds: int) -> list[float]:
    await client.get(path)  # warm
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = await client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--monitors", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--browser", action="store_true", help="also time the host map in Chromium (Playwright)"
    )
    args = parser.parse_args()
    random.seed(11)
    with tempfile.TemporaryDirectory() as folder:
        settings = await prepare_database(args.database, Path(folder))
        settings = settings.model_copy(
            update={"engine_enabled": False, "alerting_enabled": False, "jobs_enabled": False}
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            token, elapsed = await seed(app, args.servers)
            print(f"  servers seeded in {elapsed:.0f} s")
            await seed_monitors(app, args.monitors)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                login = await client.post(
                    "/api/v1/auth/login",
                    json={"username": "bench", "password": "bench-password"},
                )
                assert login.status_code == 200, login.text
                api = {"Authorization": f"Bearer {token}"}
                first = (await client.get("/api/v1/servers?limit=50", headers=api)).json()
                server_id = first["items"][0]["id"]
                deep = first
                for _ in range(200):  # a cursor 10,000 servers in
                    deep = (
                        await client.get(
                            "/api/v1/servers",
                            params={"limit": 50, "cursor": deep["next_cursor"]},
                            headers=api,
                        )
                    ).json()
                pages = {
                    "API servers (baseline)": "/api/v1/servers?limit=50",
                    "overview": "/",
                    "servers, first page": "/servers",
                    "servers, 10,000 in": f"/servers?cursor={deep['next_cursor']}",
                    "servers, search": "/servers?q=web-*+tag:env=prod+region:eu-*",
                    "server page": f"/servers/{server_id}",
                    "monitors, first page": "/monitors",
                    "monitors, down": "/monitors?status=down",
                    "incidents": "/incidents",
                    "audit log": "/audit",
                    "fleet series, 24 h": "/api/v1/fleet/series?range=24h",
                    "fleet series, 30 d": "/api/v1/fleet/series?range=30d",
                    "host map (unchanged)": "/api/v1/servers/map?tag=env",
                }
                print(
                    f"{args.servers:,} servers, {args.monitors:,} monitors on {args.database}; "
                    f"{args.rounds} requests per page"
                )
                for name, path in pages.items():
                    headers = api if path.startswith("/api/") else {}
                    client.headers.update(headers)
                    samples = await timed(client, path, args.rounds)
                    for key in headers:
                        client.headers.pop(key)
                    report(name, samples)
                client.headers.update(api)
                await host_map_figures(app, client, args.rounds)
                if args.browser:
                    await browser_draw(client, args.rounds)


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(
        f"{name:<24} p50 {statistics.median(ordered):7.1f} ms   "
        f"p95 {p95:7.1f} ms   max {ordered[-1]:7.1f} ms"
    )


async def host_map_figures(app: Any, client: httpx.AsyncClient, rounds: int) -> None:
    """The map built afresh (the inventory moved before each request), a
    304 for a page that has it, and what goes over the wire, beside the
    list of objects it replaces."""
    db = app.state.runtime.db
    built = []
    for _ in range(rounds):
        async with db.unit_of_work() as session:
            await session.execute(
                update(InventoryGeneration).values(value=InventoryGeneration.value + 1)
            )
        started = time.perf_counter()
        response = await client.get("/api/v1/servers/map?tag=env")
        built.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    report("host map (rebuilt)", built)
    etag = response.headers["etag"]
    unchanged = []
    for _ in range(rounds):
        started = time.perf_counter()
        again = await client.get("/api/v1/servers/map?tag=env", headers={"If-None-Match": etag})
        unchanged.append((time.perf_counter() - started) * 1000)
        assert again.status_code == 304
    report("host map (304)", unchanged)
    raw = await client.get("/api/v1/servers/map?tag=env", headers={"Accept-Encoding": "identity"})
    zipped = await client.get("/api/v1/servers/map?tag=env", headers={"Accept-Encoding": "gzip"})
    doc = raw.json()
    # What a list of objects would weigh: the shape the map does not use.
    objects = json.dumps(
        [
            {"id": str(uuid.uuid4()), "name": n, "health": doc["states"][int(c)], "env": "prod"}
            for n, c in zip(doc["names"], doc["cells"], strict=True)
        ]
    ).encode()
    print(
        f"host map of {doc['total']:,} servers: {len(raw.content) / 1e6:.2f} MB, "
        f"{int(zipped.headers['content-length']) / 1e6:.2f} MB gzip'd; "
        f"as objects with ids {len(objects) / 1e6:.2f} MB, "
        f"{len(gzip.compress(objects, 5)) / 1e6:.2f} MB gzip'd"
    )


async def browser_draw(client: httpx.AsyncClient, rounds: int) -> None:
    """The overview in Chromium, its requests answered by the app in this
    process: how long the map takes from fetch to drawn canvas, and the
    drawing alone (console.js puts it in data-draw-ms)."""
    from playwright.async_api import async_playwright

    async def answer(route: Any) -> None:
        request = route.request
        response = await client.request(
            request.method, request.url, headers={"Accept-Encoding": "gzip"}
        )
        headers = {k: v for k, v in response.headers.items() if k != "content-encoding"}
        headers["content-length"] = str(len(response.content))
        await route.fulfill(status=response.status_code, headers=headers, body=response.content)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium")
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        await context.add_cookies(
            [
                {"name": c.name, "value": c.value or "", "url": "http://bench"}
                for c in client.cookies.jar
            ]
        )
        await context.route("http://bench/**", answer)
        page = await context.new_page()
        loaded, drawn = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            await page.goto("http://bench/?tag=env")
            await page.wait_for_selector("[data-hostmap][data-draw-ms]", timeout=60_000)
            loaded.append((time.perf_counter() - started) * 1000)
            drawn.append(float(await page.get_attribute("[data-hostmap]", "data-draw-ms") or 0))
        report("overview to drawn map", loaded)
        report("map: parse + draw", drawn)
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main())

"""Inventory benchmark (not a test).

Seeds 100,000 servers with tags and groups through the service layer, then
measures list pages (50 rows) through the full HTTP stack (ASGI app, auth,
serialization): unfiltered, by tag, by free text, by a compound query, deep
in the cursor chain; and one bulk tag of 10,000 servers. Runs on SQLite and
on PostgreSQL and prints one table per engine.

    python bench/inventory.py                      # both engines, 100,000 servers
    python bench/inventory.py --servers 20000 --engines sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from infrawatch.accounts import service as accounts
from infrawatch.accounts.schemas import TokenCreate, UserCreate
from infrawatch.app import create_app
from infrawatch.core.config import Settings
from infrawatch.core.context import Role, cli_context
from infrawatch.inventory import service
from infrawatch.inventory.schemas import GroupCreate

POSTGRES_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REGIONS = ["eu-west", "eu-east", "us-east", "us-west", "ap-south"]
ENVIRONMENTS = ["prod", "staging", "dev"]
ROLES = ["web", "db", "cache", "queue", "worker", "lb"]
SEED_BATCH = 5000


def seed_row(n: int) -> dict[str, Any]:
    # Drawn at random (seeded, so runs repeat): a name that encodes the role
    # must not also fix the environment, or every filter hits a worst case.
    rng = random.Random(n)
    role = rng.choice(ROLES)
    return {
        "name": f"{role}-{n:06}",
        "hostname": f"{role}-{n:06}.fleet.example",
        # 198.18.0.0/15 is set aside for benchmarks; nothing here connects to it.
        "ip_address": str(ipaddress.ip_address("198.18.0.0") + n),
        "ssh_port": 22,
        "region": rng.choice(REGIONS),
        "environment": rng.choice(ENVIRONMENTS),
        "provider": rng.choice(["hetzner", "aws", "ovh"]),
        "os": "debian-12",
        "owner": f"team-{rng.randrange(12)}",
        "description": f"{role} node {n} in rack {rng.randrange(40)}",
        "tags": {
            "env": rng.choice(ENVIRONMENTS),
            "role": role,
            "batch": str(n % 10),
            "rack": f"r{rng.randrange(40)}",
        },
        "groups": [f"pool-{rng.randrange(20)}"],
        "attributes": {"cpu": rng.choice([2, 4, 8, 16]), "memory_gb": 16},
        "lifecycle": "maintenance" if rng.random() < 0.1 else "active",
    }


async def prepare_database(engine_name: str, folder: Path) -> Settings:
    if engine_name == "sqlite":
        return Settings(data_dir=folder, database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}")
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text('DROP DATABASE IF EXISTS "iw_bench" WITH (FORCE)'))
        await conn.execute(text('CREATE DATABASE "iw_bench"'))
    await admin.dispose()
    base = POSTGRES_ADMIN_URL.rpartition("/")[0]
    return Settings(data_dir=folder, database_url=f"{base}/iw_bench")


async def seed(app: Any, count: int) -> tuple[str, float]:
    db = app.state.runtime.db
    ctx = cli_context("bench")
    async with db.unit_of_work() as session:
        await accounts.create_user(
            session,
            ctx,
            UserCreate(username="bench", role=Role.admin, password="bench-password"),  # noqa: S106
        )
        token = (await accounts.create_token(session, ctx, TokenCreate(username="bench"))).token
        for n in range(20):
            from infrawatch.inventory import groups

            await groups.create_group(
                session,
                ctx,
                GroupCreate(name=f"pool-{n}"),
            )
    started = time.perf_counter()
    for start in range(0, count, SEED_BATCH):
        rows = [seed_row(n) for n in range(start, min(start + SEED_BATCH, count))]
        async with db.unit_of_work() as session:
            await service.create_servers(session, ctx, rows)
        print(f"  seeded {min(start + SEED_BATCH, count):>7}/{count}", end="\r", flush=True)
    elapsed = time.perf_counter() - started
    if db.is_sqlite:
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
    else:
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
    print()
    return token, elapsed


async def timed(
    request: Callable[[], Awaitable[httpx.Response]],
    repeat: int,
    before_each: Callable[[], Awaitable[object]] | None = None,
) -> list[float]:
    samples = []
    await request()  # warm caches once
    for _ in range(repeat):
        if before_each is not None:
            await before_each()  # untimed
        started = time.perf_counter()
        response = await request()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:500]
    return samples


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def deep_pages(client: httpx.AsyncClient, pages: int) -> list[float]:
    """Follow the cursor chain, timing each page after the first."""
    samples = []
    response = await client.get("/api/v1/servers", params={"limit": 50})
    for _ in range(pages):
        cursor = response.json()["next_cursor"]
        started = time.perf_counter()
        response = await client.get("/api/v1/servers", params={"limit": 50, "cursor": cursor})
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def run_engine(engine_name: str, count: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        settings = await prepare_database(engine_name, Path(folder))
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            print(f"{engine_name}: seeding {count} servers")
            token, seed_seconds = await seed(app, count)
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://bench",
                headers={"Authorization": f"Bearer {token}"},
            ) as client:

                def page(**params: Any) -> Callable[[], Awaitable[httpx.Response]]:
                    return lambda: client.get("/api/v1/servers", params={"limit": 50, **params})

                cases = {
                    "unfiltered": page(),
                    "by tag (tag=env=prod)": page(tag="env=prod"),
                    'q free text ("rack 17")': page(q='"rack 17"'),
                    "q compound": page(q="web-* tag:env=prod region:eu-* lifecycle:active"),
                    "q group + negation": page(q="group:pool-3 health:!healthy !tag:batch=1"),
                    "sorted -created_at": page(sort="-created_at"),
                }
                results: dict[str, Any] = {
                    "servers": count,
                    "seed_seconds": seed_seconds,
                    "pages": {},
                    "cold": {},
                }
                some_server = (await client.get("/api/v1/servers", params={"limit": 1})).json()
                some_id = some_server["items"][0]["id"]

                async def touch_inventory() -> object:
                    # Any write raises the inventory generation: the next
                    # total must be counted again (the cold path).
                    return await client.patch(
                        f"/api/v1/servers/{some_id}", json={"description": uuid.uuid4().hex}
                    )

                for label, request in cases.items():
                    results["pages"][label] = await timed(request, repeat)
                    results["cold"][label] = await timed(
                        request, max(5, repeat // 3), touch_inventory
                    )
                results["pages"]["cursor chain (pages 2-41)"] = await deep_pages(client, 40)

                # One server in ten carries batch=7: 10,000 of 100,000.
                query = "tag:batch=7"
                started = time.perf_counter()
                response = await client.post(
                    "/api/v1/servers/bulk",
                    json={
                        "q": query,
                        "action": "add_tags",
                        "params": {"tags": {"wave": uuid.uuid4().hex[:8]}},
                    },
                )
                results["bulk_seconds"] = time.perf_counter() - started
                assert response.status_code == 200, response.text[:500]
                results["bulk_changed"] = response.json()["changed"]
        return results


def report(engine_name: str, results: dict[str, Any]) -> None:
    print(
        f"\n## {engine_name}: {results['servers']:,} servers "
        f"(seeded in {results['seed_seconds']:.1f} s, "
        f"{results['servers'] / results['seed_seconds']:,.0f} servers/s)\n"
    )
    print("| list page, 50 rows | p50 ms | p95 ms | max ms | cold p50 ms | cold p95 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, samples in results["pages"].items():
        cold = results["cold"].get(label)
        cold_cells = (
            f"{statistics.median(cold):.1f} | {percentile(cold, 95):.1f}" if cold else "- | -"
        )
        print(
            f"| {label} | {statistics.median(samples):.1f} | {percentile(samples, 95):.1f} "
            f"| {max(samples):.1f} | {cold_cells} |"
        )
    print("\n(cold: the first request after a write, when the cached total is counted again)")
    print(
        f"\nbulk add_tags on {results['bulk_changed']:,} servers: {results['bulk_seconds']:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50, help="timed requests per case")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    for engine_name in args.engines.split(","):
        results = asyncio.run(run_engine(engine_name, args.servers, args.repeat))
        report(engine_name, results)


if __name__ == "__main__":
    main()

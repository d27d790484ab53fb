"""Alert storm benchmark (not a test).

10,000 monitors on 500 servers go down within one 30 s interval, as a
network outage makes them: 10 core servers, 90 racks that depend on one
core each, 400 hosts that depend on one rack each, 20 monitors per server;
rules for the whole fleet, for a tag and for a dynamic group. The
transitions are written by the engine's own writer; the clock starts when
the last one is in the database and stops when alerting has claimed every
one: every incident opened (held under its upstream where one is down) and
every notification queued. Then the same for the recovery.

Printed: seconds until done, transitions per second, SQL statements per
transition and per claimed batch, peak RSS of this process (one process:
the figures include the writer's part only in RSS).

    python bench/alert_storm.py --database sqlite
    python bench/alert_storm.py --database postgresql --monitors 10000 --servers 500
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select

from benchdb import migrated_database, monitor_row
from infrawatch.alerting import channels, processor, rules
from infrawatch.alerting.models import Incident, OutboxMessage
from infrawatch.alerting.schemas import ChannelCreate, RuleCreate
from infrawatch.core.clock import utcnow
from infrawatch.core.context import cli_context
from infrawatch.core.crypto import Keyring
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.inventory import groups
from infrawatch.inventory import service as inventory
from infrawatch.inventory.models import ServerDependency
from infrawatch.inventory.schemas import GroupCreate
from infrawatch.monitoring.engine.writer import ResultWriter
from infrawatch.monitoring.models import Monitor, MonitorTransition
from infrawatch.monitoring.rows import TransitionRow
from inventory import seed_row

MONITORS_PER_SLICE = 1000


class StatementCounter:
    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


async def seed(db: Database, servers: int, monitors: int) -> dict[str, list[uuid.UUID]]:
    """Servers in three tiers (core ← rack ← host) and their monitors, all up."""
    ctx = cli_context("bench")
    keyring = Keyring([b"\x01" * 32])
    core = max(1, servers // 50)
    racks = max(1, servers // 5 - core)
    async with db.unit_of_work() as session:
        await groups.create_group(
            session, ctx, GroupCreate(name="production", query="tag:env=prod")
        )
        for n in range(20):
            await groups.create_group(session, ctx, GroupCreate(name=f"pool-{n}"))
        rows = [seed_row(n) | {"lifecycle": "active"} for n in range(servers)]
        created = await inventory.create_servers(session, ctx, rows)
        ids = list(created)
        tiers = {
            "core": ids[:core],
            "racks": ids[core : core + racks],
            "hosts": ids[core + racks :],
        }
        now = utcnow()
        edges = [
            {"server_id": rack, "depends_on_id": tiers["core"][i % core], "kind": "network"}
            for i, rack in enumerate(tiers["racks"])
        ] + [
            {"server_id": host, "depends_on_id": tiers["racks"][i % racks], "kind": "network"}
            for i, host in enumerate(tiers["hosts"])
        ]
        await session.execute(
            insert(ServerDependency), [edge | {"created_at": now} for edge in edges]
        )
        channels = [
            await channels.create_channel(
                session,
                ctx,
                # Never delivered: the benchmark stops at the queue.
                ChannelCreate(name=f"ops-{n}", url=f"json://127.0.0.1:9/{n}"),
                keyring,
            )
            for n in range(3)
        ]
        await rules.create_rule(
            session, ctx, RuleCreate(name="everything", channel_ids=[channels[0].id])
        )
        await rules.create_rule(
            session,
            ctx,
            RuleCreate(name="prod", tags={"env": "prod"}, channel_ids=[channels[1].id]),
        )
        await rules.create_rule(
            session,
            ctx,
            RuleCreate(name="pool-3", groups=["production"], channel_ids=[channels[2].id]),
        )
    server_ids = tiers["core"] + tiers["racks"] + tiers["hosts"]
    for start in range(0, monitors, MONITORS_PER_SLICE):
        batch = []
        for n in range(start, min(start + MONITORS_PER_SLICE, monitors)):
            row = monitor_row(f"check-{n:05}", f"http://198.18.0.{n % 250 + 1}/health", 30, now)
            batch.append(row | {"server_id": server_ids[n % len(server_ids)], "status": "up"})
        async with db.unit_of_work() as session:
            await session.execute(insert(Monitor), batch)
    return tiers


async def storm(db: Database, to_state: str, spread: float) -> int:
    """Every monitor changes state within `spread` seconds, through the writer."""
    async with db.unit_of_work(write=False) as session:
        monitors = list((await session.execute(select(Monitor.id, Monitor.server_id))).all())
    writer = ResultWriter(db)
    now = utcnow()
    from_state = "up" if to_state == "down" else "down"
    for start in range(0, len(monitors), MONITORS_PER_SLICE):
        rows: list[TransitionRow] = [
            {
                "monitor_id": monitor_id,
                "server_id": server_id,
                "from_state": from_state,
                "to_state": to_state,
                "at": now - timedelta(seconds=spread * (1 - (start + i) / len(monitors))),
                "reason": "connection refused" if to_state == "down" else "200 OK",
                "kind": "state",
            }
            for i, (monitor_id, server_id) in enumerate(
                monitors[start : start + MONITORS_PER_SLICE]
            )
        ]
        async with db.unit_of_work() as session:
            await writer.write_transitions(session, rows)
    return len(monitors)


async def drain(db: Database, counter: StatementCounter) -> dict[str, float]:
    """Claim batches until none is left, as the alerting loop does."""
    statements = counter.count
    batches = 0
    handled = 0
    started = time.perf_counter()
    while True:
        async with db.unit_of_work() as session:
            done = await processor.process_transitions(session, settle_seconds=0)
        if not done:
            break
        batches += 1
        handled += done
    elapsed = time.perf_counter() - started
    statements = counter.count - statements
    return {
        "seconds": elapsed,
        "transitions": handled,
        "batches": batches,
        "statements": statements,
    }


async def counts(db: Database) -> dict[str, int]:
    async with db.unit_of_work(write=False) as session:
        opened = await session.scalar(select(func.count()).select_from(Incident))
        held = await session.scalar(
            select(func.count()).select_from(Incident).where(Incident.held.is_not(None))
        )
        attached = await session.scalar(
            select(func.count()).select_from(Incident).where(Incident.parent_id.is_not(None))
        )
        resolved = await session.scalar(
            select(func.count()).select_from(Incident).where(Incident.status == "resolved")
        )
        queued = await session.scalar(select(func.count()).select_from(OutboxMessage))
        left = await session.scalar(
            select(func.count())
            .select_from(MonitorTransition)
            .where(MonitorTransition.alerted_at.is_(None))
        )
    return {
        "incidents": opened or 0,
        "held": held or 0,
        "attached": attached or 0,
        "resolved": resolved or 0,
        "queued": queued or 0,
        "unclaimed": left or 0,
    }


def report(phase: str, run: dict[str, float], after: dict[str, int]) -> None:
    per_transition = run["statements"] / max(1, run["transitions"])
    per_batch = run["statements"] / max(1, run["batches"])
    print(
        f"| {phase} | {run['transitions']:,.0f} | {run['seconds']:.2f} "
        f"| {run['transitions'] / run['seconds']:,.0f} | {run['batches']:.0f} "
        f"| {per_transition:.2f} | {per_batch:.0f} | {after['incidents']:,} "
        f"| {after['held']:,} / {after['attached']:,} | {after['resolved']:,} "
        f"| {after['queued']:,} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--spread", type=float, default=30.0, help="seconds the storm spans")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = await migrated_database(args.database, Path(folder), "iw_alert_storm")
        db = Database(url, EventBus())
        await seed(db, args.servers, args.monitors)
        counter = StatementCounter(db)
        print(
            f"\n{args.database}: {args.monitors:,} monitors on {args.servers} servers "
            f"(3 tiers of dependencies), 3 rules\n"
        )
        print(
            "| phase | transitions | seconds | per s | batches | statements per transition "
            "| statements per batch | incidents | held / attached | resolved | queued |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        await storm(db, "down", args.spread)
        report("all down", await drain(db, counter), await counts(db))
        await storm(db, "up", args.spread)
        report("all back up", await drain(db, counter), await counts(db))
        left = (await counts(db))["unclaimed"]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\npeak RSS {peak:.0f} MiB; transitions left unclaimed: {left}")
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())

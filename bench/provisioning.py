"""Provisioning benchmark (not a test): real ansible runs against lab hosts.

1. The queue: N runs (the `base` role in check mode) queued at once against
   H lab hosts, through the API of an app with its job worker: runs/minute
   end to end, ansible processes at once (sampled), peak memory of the whole
   process tree, time from enqueue to the run's first event, and the one-
   run-per-server rule held (no two runs of a host overlap).
2. Hardening: the five hardening roles on one fresh host (wall time), then
   again on the now hardened host (changed=0).

Needs root (lab hosts). Builds its hosts and removes them at the end.

    python bench/provisioning.py --runs 200 --hosts 8
    python bench/provisioning.py --runs 40 --hosts 4 --database postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncssh
import httpx

from benchdb import migrated_database
from infrawatch.accounts import service as accounts
from infrawatch.accounts.schemas import TokenCreate, UserCreate
from infrawatch.app import create_app
from infrawatch.core.config import Settings
from infrawatch.core.context import Role, cli_context
from infrawatch.provisioning.lab.hosts import Lab, LabConfig

HARDENING = ["base", "ssh_hardening", "firewall", "fail2ban", "auto_updates"]


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, []))
    return total / 2**20


def ansible_processes() -> int:
    """ansible-playbook processes, not counting their own forks."""
    found = subprocess.run(
        ["pgrep", "-f", "bin/ansible-playbook"], capture_output=True, text=True, check=False
    )
    pids = {int(p) for p in found.stdout.split()}
    top = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        top += parent not in pids
    return top


async def sample(stop: asyncio.Event, figures: dict[str, float]) -> None:
    while not stop.is_set():
        figures["ansible_max"] = max(figures.get("ansible_max", 0), ansible_processes())
        figures["rss_max"] = max(figures.get("rss_max", 0), tree_rss_mib(os.getpid()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def bench_token(app: Any) -> str:
    ctx = cli_context("bench")
    async with app.state.runtime.db.unit_of_work() as session:
        await accounts.create_user(
            session,
            ctx,
            UserCreate(username="bench", role=Role.admin, password="bench-password"),  # noqa: S106
        )
        return (await accounts.create_token(session, ctx, TokenCreate(username="bench"))).token


async def register(client: httpx.AsyncClient, lab: Lab, names: list[str], key: Any) -> list[str]:
    r = await client.post(
        "/api/v1/ssh-keys", json={"name": "bench", "private_key": key.export_private_key().decode()}
    )
    key_id = r.json()["id"]
    ids = []
    for name in names:
        host = lab.get(name)
        r = await client.post(
            "/api/v1/servers",
            json={
                "name": name,
                "ip_address": host.address,
                "provider": "lab",
                "attributes": {"lab_host": name},
            },
        )
        server_id = r.json()["id"]
        await client.post(
            f"/api/v1/ssh-keys/{key_id}/assignments",
            json={"server_id": server_id, "username": "admin"},
        )
        ids.append(server_id)
    return ids


async def wait_all(client: httpx.AsyncClient, run_ids: list[str]) -> list[dict[str, Any]]:
    pending = set(run_ids)
    done: dict[str, dict[str, Any]] = {}
    while pending:
        r = await client.get("/api/v1/provisioning/runs", params={"limit": 500})
        for run in r.json():
            if run["id"] in pending and run["status"] not in ("queued", "running"):
                pending.discard(run["id"])
                done[run["id"]] = run
        await asyncio.sleep(1)
    return [done[i] for i in run_ids]


async def first_event_delay(client: httpx.AsyncClient, run: dict[str, Any]) -> float:
    events = (await client.get(f"/api/v1/jobs/{run['job_id']}/events?limit=20")).json()["events"]
    running = next(e for e in events if e["message"].startswith("running on"))
    created = datetime.fromisoformat(run["created_at"])
    return (datetime.fromisoformat(running["at"]) - created).total_seconds()


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="iw-bench-prov-"))
    lab = Lab(LabConfig(root=workdir / "lab"))
    key = asyncssh.generate_private_key("ssh-ed25519")
    names = [f"bench-{i}" for i in range(args.hosts)]
    started = time.monotonic()
    try:
        for name in [*names, "bench-hard"]:
            lab.create(name, key.export_public_key().decode())
        print(f"{args.hosts + 1} lab hosts up in {time.monotonic() - started:.1f} s")
        url = await migrated_database(args.database, workdir, "iw_bench_provisioning")
        settings = Settings(
            data_dir=workdir / "data",
            database_url=url,
            engine_enabled=False,
            alerting_enabled=False,
            lab_enabled=True,
            lab_dir=lab.config.root,
            provisioning_max_processes=args.processes,
            jobs_max_running=args.processes + 4,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            token = await bench_token(app)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://bench",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            ) as client:
                server_ids = await register(client, lab, [*names, "bench-hard"], key)
                await queue(client, args, server_ids[: args.hosts])
                await hardening(client, server_ids[-1])
    finally:
        for name in [*names, "bench-hard"]:
            with contextlib.suppress(Exception):
                lab.destroy(name)


async def queue(client: httpx.AsyncClient, args: argparse.Namespace, server_ids: list[str]) -> None:
    figures: dict[str, float] = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample(stop, figures))
    begin = time.monotonic()
    run_ids = []
    for i in range(args.runs):
        r = await client.post(
            "/api/v1/provisioning/runs",
            json={
                "servers": [server_ids[i % len(server_ids)]],
                "roles": ["base"],
                "check": True,
                "snapshot": False,
            },
        )
        assert r.status_code == 202, r.text
        run_ids.append(r.json()["id"])
    enqueued = time.monotonic() - begin
    runs = await wait_all(client, run_ids)
    wall = time.monotonic() - begin
    stop.set()
    await sampler
    failed = [r for r in runs if r["status"] != "succeeded"]
    # One run per server at a time: per host, runs must not overlap.
    overlaps = 0
    by_host: dict[str, list[tuple[str, str]]] = {}
    for run in runs:
        by_host.setdefault(run["server_ids"][0], []).append((run["started_at"], run["finished_at"]))
    for spans in by_host.values():
        spans.sort()
        overlaps += sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
    delays = [await first_event_delay(client, r) for r in runs[:: max(len(runs) // 50, 1)]]
    print(
        f"\n== queue: {args.runs} runs (base, check mode) on {args.hosts} hosts, "
        f"{args.processes} ansible processes per worker, {args.database}"
    )
    print(f"enqueued in {enqueued:.1f} s ({args.runs / enqueued:.0f} runs/s through the API)")
    print(f"all ended in {wall:.1f} s: {60 * args.runs / wall:.1f} runs/min; failed {len(failed)}")
    print(f"ansible processes at once (max sampled): {figures.get('ansible_max', 0):.0f}")
    print(f"peak memory of the process tree: {figures.get('rss_max', 0):.0f} MiB")
    print(
        f"enqueue -> first event: p50 {statistics.median(delays):.1f} s, "
        f"max {max(delays):.1f} s (runs wait for their server by design)"
    )
    print(f"overlapping runs on one server: {overlaps}")
    first = sorted(delays)[0]
    print(f"enqueue -> first event of the first runs (no wait): {first:.2f} s")


async def hardening(client: httpx.AsyncClient, server_id: str) -> None:
    print("\n== hardening: the five roles on one fresh host, then again")
    for label in ("fresh host", "already hardened"):
        begin = time.monotonic()
        r = await client.post(
            "/api/v1/provisioning/runs",
            json={"servers": [server_id], "roles": HARDENING, "snapshot": False},
        )
        (run,) = await wait_all(client, [r.json()["id"]])
        recap = run["hosts"][0]["recap"]
        print(
            f"{label}: {time.monotonic() - begin:.1f} s, {run['status']}, "
            f"changed={recap['changed']} ok={recap['ok']}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    asyncio.run(main(parser.parse_args()))

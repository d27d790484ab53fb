"""The per-monitor series, formatted as text: parsed back by Prometheus's
own parser, names that need escaping survive, and formatting tens of
thousands of monitors lets the event loop (the engine's checks) run."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from infrawatch.monitoring.engine.stats import EngineStats
from infrawatch.monitoring.metrics import SLICE, MonitorSnapshot, engine_metrics, per_monitor_text
from tests.monitoring.helpers import tracked_monitor


async def test_series_parse_back_with_escaped_names_and_cumulative_buckets() -> None:
    awkward = 'edge "eu"\\west\nline two'
    tracked = tracked_monitor(awkward, [3, 2, 0, 1])
    idle = tracked_monitor("never checked", [])
    engine = SimpleNamespace(tracked={t.spec.id: t for t in (tracked, idle)})
    monitor_id = str(tracked.spec.id)
    shot = MonitorSnapshot(
        monitors=[(monitor_id, awkward, "http", "degraded", 12.5)],
        latency={monitor_id: (120.0, None)},
    )
    text = await per_monitor_text(shot, engine)
    families = {f.name: f for f in text_string_to_metric_families(text)}

    status = {s.labels["status"]: s.value for s in families["infrawatch_monitor_status"].samples}
    assert status["degraded"] == 1 and sum(status.values()) == 1
    (up,) = families["infrawatch_monitor_up"].samples
    assert up.labels["name"] == awkward and up.value == 1
    (cert,) = families["infrawatch_monitor_certificate_expires_in_seconds"].samples
    assert cert.value == 12.5 * 86400
    (p50,) = families["infrawatch_monitor_latency_p50_seconds"].samples
    assert p50.value == 0.12
    assert not families["infrawatch_monitor_latency_p95_seconds"].samples

    histogram = families["infrawatch_monitor_latency_seconds"].samples
    assert {s.labels["monitor_id"] for s in histogram} == {monitor_id}  # not the idle one
    buckets = [s.value for s in histogram if s.name.endswith("_bucket")]
    assert buckets[:4] == [3, 5, 5, 6] and buckets[-1] == 6
    count = next(s.value for s in histogram if s.name.endswith("_count"))
    assert count == 6


async def test_formatting_many_monitors_gives_the_loop_turns() -> None:
    monitors = 20 * SLICE
    many = [tracked_monitor(f"m{i}", [1]) for i in range(monitors)]
    engine = SimpleNamespace(tracked={t.spec.id: t for t in many})
    shot = MonitorSnapshot(
        monitors=[(str(t.spec.id), t.spec.name, "http", "up", None) for t in many]
    )
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    ticker = asyncio.create_task(other_work())
    await asyncio.sleep(0)
    before = turns
    text = await per_monitor_text(shot, engine, limit=monitors)
    ticker.cancel()
    # One turn per slice of the snapshot and one per slice of the engine's
    # monitors: the checks sharing this loop never wait for the whole.
    assert turns - before >= 2 * (monitors // SLICE) - 2
    assert text.count("infrawatch_monitor_up{") == monitors


async def test_past_the_limit_only_totals_are_exported_and_the_scrape_stays_small() -> None:
    """25,000 monitors per worker: per-status and per-type totals, not a
    dozen lines per monitor."""
    monitors = 25_000
    many = [tracked_monitor(f"m{i}", [1, 2]) for i in range(monitors)]
    engine = SimpleNamespace(tracked={t.spec.id: t for t in many})
    shot = MonitorSnapshot(
        monitors=[
            (str(t.spec.id), t.spec.name, "http", "down" if i % 10 == 0 else "up", None)
            for i, t in enumerate(many)
        ]
    )
    text = await per_monitor_text(shot, engine, limit=1000)
    assert len(text) < 2000
    families = {f.name: f for f in text_string_to_metric_families(text)}
    totals = {s.labels["status"]: s.value for s in families["infrawatch_monitors"].samples}
    assert totals["up"] == 22_500 and totals["down"] == 2_500 and totals["paused"] == 0
    (omitted,) = families["infrawatch_metrics_per_monitor_omitted"].samples
    assert omitted.value == monitors
    assert "monitor_id=" not in text
    # Under the limit, every monitor's series are there again.
    full = await per_monitor_text(shot, engine, limit=monitors)
    assert full.count("infrawatch_monitor_up{") == monitors
    assert "infrawatch_metrics_per_monitor_omitted 0" in full


def test_the_engine_counts_latency_per_monitor_type() -> None:
    stats = EngineStats()
    for latency in (10.0, 30.0, 700.0):
        stats.latency("http", latency)
    stats.latency("tcp", 1.0)
    engine = SimpleNamespace(
        stats=stats,
        tracked={},
        leaser=SimpleNamespace(owned={}),
        writer=SimpleNamespace(depth=0, written_results=0, dropped_results=0, failed_flushes=0),
    )
    (family,) = [
        f for f in engine_metrics(engine) if f.name == "infrawatch_engine_check_latency_seconds"
    ]
    http = {
        s.labels["le"]: s.value
        for s in family.samples
        if s.labels.get("type") == "http" and s.name.endswith("_bucket")
    }
    assert http["0.025"] == 1 and http["0.05"] == 2 and http["1.0"] == 3 and http["+Inf"] == 3
    total = next(
        s.value for s in family.samples if s.name.endswith("_sum") and s.labels["type"] == "http"
    )
    assert total == 0.74

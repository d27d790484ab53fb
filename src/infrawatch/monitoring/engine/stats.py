"""What the engine counts about itself, for /metrics and the benchmark."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from infrawatch.monitoring.rollups import LATENCY_BOUNDS_MS

# Lateness buckets (seconds) for the exported histogram.
LATENESS_BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class EngineStats:
    checks: int = 0
    crashed: int = 0
    queue_depth: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {"up": 0, "degraded": 0, "down": 0})
    lateness_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENESS_BOUNDS) + 1))
    lateness_sum: float = 0.0
    lateness_max: float = 0.0
    started_checks: int = 0
    loop_lag_max: float = 0.0
    gc_pause_max: float = 0.0
    gc_pause_total: float = 0.0
    gc_collections: list[int] = field(default_factory=lambda: [0, 0, 0])

    loop_lag_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENESS_BOUNDS) + 1))
    loop_lag_sum: float = 0.0
    # Churn: shards that came and went, and monitors (re)loaded. In a steady
    # run both stop growing after start-up; if they keep growing, leases move
    # between workers (a stalled loop renewing late) and monitors are loaded
    # again and again.
    shards_gained: int = 0
    shards_lost: int = 0
    monitors_loaded: int = 0
    # Check latency per monitor type: what /metrics keeps when per-monitor
    # series would be too many (a handful of series whatever the fleet).
    latency_by_type: dict[str, list[int]] = field(default_factory=dict)
    latency_sum_by_type: dict[str, float] = field(default_factory=dict)

    def latency(self, kind: str, latency_ms: float) -> None:
        counts = self.latency_by_type.get(kind)
        if counts is None:
            counts = self.latency_by_type[kind] = [0] * (len(LATENCY_BOUNDS_MS) + 1)
            self.latency_sum_by_type[kind] = 0.0
        counts[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1
        self.latency_sum_by_type[kind] += latency_ms

    def loop_lag(self, lag: float) -> None:
        lag = max(0.0, lag)
        self.loop_lag_max = max(self.loop_lag_max, lag)
        self.loop_lag_sum += lag
        self.loop_lag_counts[bisect.bisect_left(LATENESS_BOUNDS, lag)] += 1

    def gc_pause(self, seconds: float, generation: int) -> None:
        self.gc_pause_max = max(self.gc_pause_max, seconds)
        self.gc_pause_total += seconds
        self.gc_collections[generation] += 1

    def started(self, lateness: float) -> None:
        lateness = max(0.0, lateness)
        self.started_checks += 1
        self.lateness_sum += lateness
        self.lateness_max = max(self.lateness_max, lateness)
        for index, bound in enumerate(LATENESS_BOUNDS):
            if lateness <= bound:
                self.lateness_counts[index] += 1
                return
        self.lateness_counts[-1] += 1

    def finished(self, outcome: str) -> None:
        self.checks += 1
        self.outcomes[outcome] += 1

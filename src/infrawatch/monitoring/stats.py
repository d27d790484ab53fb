"""What the engine counts about itself, for /metrics and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field

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

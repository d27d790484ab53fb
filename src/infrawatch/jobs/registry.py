"""Job types. Domains above `jobs` describe theirs (a handler, limits,
retries) and the composition root registers them, so this package imports
no domain that uses it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infrawatch.jobs.context import JobContext

Handler = Callable[["JobContext"], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class JobType:
    name: str
    handler: Handler
    # Running at once across every worker (a claim counts the running ones).
    concurrency: int = 4
    max_attempts: int = 3
    # Retry n waits backoff_seconds * 2**(n-1), capped at an hour.
    backoff_seconds: float = 10.0
    # A run longer than this is cancelled and counts as a failed attempt.
    timeout_seconds: float = 3600.0
    # Operators may start it from the API (others are started by the system).
    description: str = ""
    # Running at once in one worker process (None: only the worker's own cap).
    per_worker: int | None = None

    def retry_delay(self, attempt: int) -> float:
        return float(min(self.backoff_seconds * 2 ** max(attempt - 1, 0), 3600.0))


@dataclass(frozen=True)
class Periodic:
    """Run `type` with `arguments` every `period_seconds`, once across workers."""

    name: str
    type: str
    period_seconds: int
    arguments: dict[str, Any] | None = None


class JobRegistry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self._periodic: dict[str, Periodic] = {}

    def register(self, job_type: JobType) -> None:
        self._types[job_type.name] = job_type

    def schedule(self, periodic: Periodic) -> None:
        self._periodic[periodic.name] = periodic

    def get(self, name: str) -> JobType | None:
        return self._types.get(name)

    @property
    def types(self) -> dict[str, JobType]:
        return dict(self._types)

    @property
    def periodic(self) -> list[Periodic]:
        return list(self._periodic.values())


class Deferred(Exception):  # not an error: the job waits
    """The job cannot start yet (what it needs is busy): it goes back to
    the queue for `seconds`, showing `reason`, and no attempt is spent."""

    def __init__(self, reason: str, seconds: float = 2.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seconds = seconds


class PermanentError(Exception):
    """A failure that another attempt cannot fix (bad arguments, a refused
    key): the job fails at once instead of retrying. `result` is kept on
    the job (what was done before it failed, per server say)."""

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result

"""Logging a failure that repeats (the database away, a link cut) once when
it starts and once when it ends, with a count, instead of a traceback per
attempt: a writer retrying 57 times a second wrote 1.6 GB of log an hour."""

from __future__ import annotations

import logging
import time


class OutageReporter:
    """`failed()` on each failure, `succeeded()` on each success. Where no
    success is ever reported (requests answered 503), a failure after
    `quiet_seconds` without one starts a new outage in the log."""

    def __init__(self, log: logging.Logger, what: str, quiet_seconds: float = 60.0) -> None:
        self.log = log
        self.what = what
        self.quiet_seconds = quiet_seconds
        self.failures = 0
        self._since = 0.0
        self._last = 0.0

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self.failures and now - self._last > self.quiet_seconds:
            self.succeeded()
        self._last = now
        if self.failures == 0:
            self._since = time.monotonic()
            self.log.error(
                "%s failed: %s: %s (retrying; logged again when it works)",
                self.what,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
                # The traceback once: it says where, the count says how often.
                exc_info=exc,
            )
        self.failures += 1

    def succeeded(self) -> None:
        if self.failures:
            self.log.warning(
                "%s works again, after %d failures in %.0f s",
                self.what,
                self.failures,
                time.monotonic() - self._since,
            )
        self.failures = 0

    def delay(self, base: float, ceiling: float = 30.0) -> float:
        """How long to wait before the next attempt: `base` while things
        work, doubling per failure up to `ceiling` while they do not."""
        if not self.failures:
            return base
        return float(min(base * 2.0 ** min(self.failures, 16), max(ceiling, base)))

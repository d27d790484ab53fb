"""The packed raw results: what goes in reads back, text is written once
per bucket, and appends from several writers read back each with its own
words whatever their order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from infrawatch.monitoring.rows import ResultRow
from infrawatch.monitoring.samples import RECORD, TextMemory, pack, unpack

BUCKET = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
MONITOR = uuid.UUID("00000000-0000-4000-8000-00000000a001")


def row(
    seconds: float,
    outcome: str = "up",
    error: str | None = None,
    location: str = "default",
    **extra: object,
) -> ResultRow:
    result = ResultRow(
        monitor_id=MONITOR,
        checked_at=BUCKET + timedelta(seconds=seconds),
        outcome=outcome,
        state="down" if outcome == "down" else "up",
        streak=3,
        latency_ms=12.345,
        status_code=503 if outcome == "down" else 200,
        error=error,
        details=None,
        location=location,
    )
    result.update(extra)  # type: ignore[typeddict-item]
    return result


def test_what_goes_in_reads_back() -> None:
    rows = [
        row(0.25),
        row(30, "degraded"),
        row(60, "down", error="HTTP 503", details={"body": "busy"}, location="eu"),
    ]
    blob, _ = pack(int(BUCKET.timestamp()), rows, set())
    back = list(unpack(BUCKET, blob))
    assert [(s.checked_at, s.outcome, s.state, s.streak) for s in back] == [
        (BUCKET + timedelta(milliseconds=250), "up", "up", 3),
        (BUCKET + timedelta(seconds=30), "degraded", "up", 3),
        (BUCKET + timedelta(seconds=60), "down", "down", 3),
    ]
    assert {s.latency_ms for s in back} == {12.345}
    assert [s.status_code for s in back] == [200, 200, 503]
    assert (back[2].error, back[2].details, back[2].location) == (
        "HTTP 503",
        {"body": "busy"},
        "eu",
    )
    assert (back[0].error, back[0].details, back[0].location) == (None, None, "default")
    # Ids grow in a bucket and across buckets.
    assert back[0].id < back[1].id < back[2].id
    later, _ = pack(int(BUCKET.timestamp()) + 300, [row(300)], set())
    assert next(unpack(BUCKET + timedelta(seconds=300), later)).id > back[2].id


def test_a_check_with_nothing_to_say_costs_one_fixed_record() -> None:
    blob, written = pack(int(BUCKET.timestamp()), [row(n * 30) for n in range(10)], set())
    assert len(blob) == 10 * RECORD.size == 130 and not written


def test_the_same_error_is_written_once_then_referred_to() -> None:
    failing = [row(n * 30, "down", error="connection refused") for n in range(10)]
    blob, written = pack(int(BUCKET.timestamp()), failing, set())
    assert len(written) == 1
    assert blob.count(b"connection refused") == 1
    assert [s.error for s in unpack(BUCKET, blob)] == ["connection refused"] * 10
    # A later append by the writer that committed the text refers to it only.
    more, again = pack(
        int(BUCKET.timestamp()), [row(290, "down", error="connection refused")], written
    )
    assert b"connection refused" not in more and not again
    assert [s.error for s in unpack(BUCKET, blob + more)][-1] == "connection refused"


def test_appends_of_two_writers_read_back_each_with_its_own_words() -> None:
    """Two locations append to one bucket in turn; each refers only to what
    it wrote itself, so interleaving cannot lend one the other's error."""
    start = int(BUCKET.timestamp())
    first, second = TextMemory(), TextMemory()
    blob = b""
    for n in range(4):
        for memory, location, error in ((first, "eu", "timeout"), (second, "us", "refused")):
            part, written = pack(
                start,
                [row(n * 60, "down", error=error, location=location)],
                memory.known(MONITOR, start),
            )
            memory.remember(MONITOR, start, written)
            blob += part
    back = list(unpack(BUCKET, blob))
    assert [(s.location, s.error) for s in back] == [("eu", "timeout"), ("us", "refused")] * 4
    assert blob.count(b"timeout") == blob.count(b"refused") == 1


def test_memory_is_per_bucket_and_forgets_monitors() -> None:
    memory = TextMemory()
    memory.remember(MONITOR, 300, {1, 2})
    assert memory.known(MONITOR, 300) == {1, 2}
    memory.remember(MONITOR, 600, {3})  # a newer bucket replaces the older
    assert memory.known(MONITOR, 300) == set() and memory.known(MONITOR, 600) == {3}
    memory.remember(MONITOR, 300, {9})  # a late write to an older one changes nothing
    assert memory.known(MONITOR, 600) == {3}
    memory.forget([MONITOR])
    assert memory.known(MONITOR, 600) == set()


def test_a_huge_error_is_cut_not_refused() -> None:
    blob, _ = pack(int(BUCKET.timestamp()), [row(0, "down", error="x" * 100_000)], set())
    (sample,) = unpack(BUCKET, blob)
    assert sample.error == "x" * 4000 and sample.outcome == "down"

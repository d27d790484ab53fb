"""Raw check results, packed into the 5-minute rollup row they are counted
in: one upsert per result writes both, and a stored check costs a 13-byte
record instead of a row of its own (a row's header, a 16-byte id and two
index entries were most of the ~250 bytes a check used to cost).

A record is fixed-size integers: milliseconds since the bucket's start,
latency in microseconds, the streak, the HTTP status (0: none) and one byte
for outcome, state and what text follows. Text (error, details, location) is
written once per bucket and then referred to by its CRC-32, so a monitor
failing with the same error for hours stores the message once per bucket;
a check that answered with nothing to say (no error, no details, the
default location) carries no text at all.

Several writers may append to one bucket (a monitor checked from several
locations, a shard changing hands): a reference names its text by content,
never by position, so whatever the order of the appends, each record reads
back with its own text. A writer refers only to text it has itself
committed into that bucket (`TextMemory`)."""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infrawatch.monitoring.rows import ResultRow

RECORD = struct.Struct("<IIHHB")  # offset ms, latency µs, streak, status code, flags
LENGTH = struct.Struct("<H")
CRC = struct.Struct("<I")
OUTCOMES = ("up", "degraded", "down")
STATES = ("pending", "up", "degraded", "down")
TEXT_FOLLOWS = 0x20  # a length and the text itself
TEXT_REFERENCE = 0x40  # the CRC-32 of a text written earlier in the bucket
DEFAULT_LOCATION = "default"  # the engine's own location unless one is configured
MAX_LATENCY_US = 2**32 - 1
MAX_TEXT = 2**16 - 1


# A stored check's id: its bucket's start (epoch seconds) and its place in
# the bucket. Ids grow with time, as the results' row ids did, and stay
# below 2**53 (JavaScript reads them whole).
PER_BUCKET = 10_000


@dataclass(frozen=True)
class Sample:
    """A stored check, read back."""

    id: int
    checked_at: datetime
    outcome: str
    state: str
    streak: int
    latency_ms: float
    status_code: int | None
    error: str | None
    details: dict[str, Any] | None
    location: str | None


def _text_of(row: ResultRow) -> bytes | None:
    """The result's text, or None when it has nothing to say."""
    if row["error"] is None and not row["details"] and row["location"] == DEFAULT_LOCATION:
        return None
    text = json.dumps(
        [row["error"], row["details"] or None, row["location"]],
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    ).encode()
    if len(text) > MAX_TEXT:
        # A record's text has a 16-bit length: an error of 64 KiB is cut
        # (the message is in its first bytes), never refused.
        text = json.dumps([(row["error"] or "")[:4000], None, row["location"]]).encode()
    return text


class TextMemory:
    """Which texts this writer has committed into each monitor's current
    bucket: only those may be referred to instead of written out."""

    def __init__(self) -> None:
        self._written: dict[uuid.UUID, tuple[int, set[int]]] = {}

    def known(self, monitor_id: uuid.UUID, bucket: int) -> set[int]:
        entry = self._written.get(monitor_id)
        return entry[1] if entry is not None and entry[0] == bucket else set()

    def remember(self, monitor_id: uuid.UUID, bucket: int, crcs: set[int]) -> None:
        entry = self._written.get(monitor_id)
        if entry is not None and entry[0] == bucket:
            entry[1].update(crcs)
        elif entry is None or entry[0] < bucket:
            self._written[monitor_id] = (bucket, set(crcs))

    def forget(self, monitor_ids: Iterable[uuid.UUID]) -> None:
        for monitor_id in monitor_ids:
            self._written.pop(monitor_id, None)


def pack(bucket: int, rows: Iterable[ResultRow], known: set[int]) -> tuple[bytes, set[int]]:
    """Records for one monitor's results in the bucket starting at `bucket`
    (epoch seconds), oldest first; `known` are the texts already in the
    stored bucket. Returns the records and the texts they wrote out."""
    out = bytearray()
    written: set[int] = set()
    for row in rows:
        offset = round((row["checked_at"].timestamp() - bucket) * 1000)
        latency = min(MAX_LATENCY_US, max(0, round(row["latency_ms"] * 1000)))
        flags = OUTCOMES.index(row["outcome"]) | STATES.index(row["state"]) << 2
        text = _text_of(row)
        crc = zlib.crc32(text) if text is not None else 0
        if text is not None:
            flags |= TEXT_REFERENCE if crc in known or crc in written else TEXT_FOLLOWS
        status = row["status_code"] or 0
        out += RECORD.pack(offset, latency, min(row["streak"], 65535), status, flags)
        if flags & TEXT_REFERENCE:
            out += CRC.pack(crc)
        elif flags & TEXT_FOLLOWS:
            assert text is not None
            out += LENGTH.pack(len(text)) + text
            written.add(crc)
    return bytes(out), written


def unpack(bucket_start: datetime, blob: bytes) -> Iterator[Sample]:
    """The records of a bucket, in the order they were appended."""
    texts: dict[int, tuple[Any, Any, Any]] = {}
    view = memoryview(blob)
    first_id = int(bucket_start.timestamp()) * PER_BUCKET
    at = 0
    index = 0
    while at < len(view):
        offset, latency, streak, status, flags = RECORD.unpack_from(view, at)
        at += RECORD.size
        error, details, location = None, None, DEFAULT_LOCATION
        if flags & TEXT_FOLLOWS:
            (length,) = LENGTH.unpack_from(view, at)
            raw = bytes(view[at + LENGTH.size : at + LENGTH.size + length])
            at += LENGTH.size + length
            error, details, location = texts[zlib.crc32(raw)] = tuple(json.loads(raw))
        elif flags & TEXT_REFERENCE:
            (crc,) = CRC.unpack_from(view, at)
            at += CRC.size
            # A reference always follows its text in the same bucket; were
            # it ever missing, the record still reads, without its words.
            error, details, location = texts.get(crc, (None, None, None))
        yield Sample(
            id=first_id + min(index, PER_BUCKET - 1),
            checked_at=bucket_start + timedelta(milliseconds=offset),
            outcome=OUTCOMES[flags & 0x03],
            state=STATES[flags >> 2 & 0x07],
            streak=streak,
            latency_ms=latency / 1000,
            status_code=status or None,
            error=error,
            details=details,
            location=location,
        )
        index += 1

"""Waiting for a wake-up or a timeout in a background loop.

`asyncio.wait_for(event.wait(), t)` can swallow a cancellation on Python
3.11 when the event is set in the same moment (CPython gh-86296): the loop
then runs on after its owner cancelled it, and a shutdown waits forever
(seen: a test's app teardown hung on the job worker). `asyncio.timeout`
does not lose the cancellation."""

from __future__ import annotations

import asyncio


async def wait_or_timeout(event: asyncio.Event, seconds: float) -> bool:
    """True if the event was set, False if the time ran out."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True

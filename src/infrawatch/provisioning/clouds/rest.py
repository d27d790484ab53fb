"""One HTTP client for the REST providers: a token bucket per account,
429 answered by waiting what `Retry-After` says, 5xx and dropped
connections retried with backoff — for reads and idempotent writes only.
A create is never re-sent blindly: the flow looks its build tag up first
(`create_once`)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from infrawatch.provisioning.clouds.base import NodeNotFound, ProviderError

MAX_ATTEMPTS = 6
MAX_WAIT_SECONDS = 60.0
REQUEST_TIMEOUT = 30.0


class TokenBucket:
    """`rate` requests a second on average, bursts of `burst`. One per
    provider account per process, so every job of a worker shares it."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = max(rate, 0.01)
        self.capacity = max(burst, 1)
        self._tokens = float(self.capacity)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


_buckets: dict[str, TokenBucket] = {}


def bucket_for(account_key: str, rate: float, burst: int) -> TokenBucket:
    bucket = _buckets.get(account_key)
    if bucket is None or (bucket.rate, bucket.capacity) != (max(rate, 0.01), max(burst, 1)):
        bucket = _buckets[account_key] = TokenBucket(rate, burst)
    return bucket


def retry_after_seconds(value: str | None, fallback: float) -> float:
    """`Retry-After` is seconds or an HTTP date; either is capped."""
    if not value:
        return fallback
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return fallback
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_WAIT_SECONDS)


def backoff(attempt: int) -> float:
    return float(min(0.5 * 2**attempt, 10.0))


@dataclass
class Response:
    status: int
    body: Any


class RestClient:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        bucket: TokenBucket,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", **headers}
        self.bucket = bucket
        self.sleep = sleep
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # Seen by tests and the bench: how often the provider pushed back.
        self.throttled = 0

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        retry: bool = True,
    ) -> Response:
        """`retry=False` for a create: one attempt, a retryable error raised."""
        attempts = MAX_ATTEMPTS if retry else 1
        for attempt in range(attempts):
            await self.bucket.take()
            try:
                response = await self._once(method, path, body, params)
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = ProviderError(
                    f"{method} {path}: {type(exc).__name__} {exc}".strip(), retryable=True
                )
                if attempt + 1 < attempts:
                    await self.sleep(backoff(attempt))
                    continue
                raise problem from None
            status, headers, data = response
            if status == 429 or status >= 500:
                self.throttled += status == 429
                problem = ProviderError(
                    f"{method} {path}: {status} {_message(data)}", status=status, retryable=True
                )
                if attempt + 1 < attempts:
                    fallback = backoff(attempt)
                    wait = (
                        retry_after_seconds(headers.get("Retry-After"), fallback)
                        if status == 429
                        else fallback
                    )
                    await self.sleep(wait)
                    continue
                raise problem
            if status == 404:
                raise NodeNotFound(f"{method} {path}: not found ({_message(data)})", status=404)
            if status >= 400:
                raise ProviderError(f"{method} {path}: {status} {_message(data)}", status=status)
            return Response(status, data)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _once(
        self, method: str, path: str, body: Any, params: dict[str, Any] | None
    ) -> tuple[int, Any, Any]:
        session = self._client()
        async with session.request(
            method, self.base_url + path, json=body, params=params
        ) as response:
            text = await response.text()
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = text[:200]
            return response.status, response.headers, data


def _message(data: Any) -> str:
    """The provider's own words, from the shapes DigitalOcean (`message`),
    Linode (`errors[].reason`) and Vultr (`error`) use."""
    if isinstance(data, dict):
        if isinstance(data.get("errors"), list) and data["errors"]:
            return "; ".join(
                str(e.get("reason", e)) if isinstance(e, dict) else str(e) for e in data["errors"]
            )
        for key in ("message", "error", "detail"):
            if data.get(key):
                return str(data[key])
    return str(data or "")[:200]

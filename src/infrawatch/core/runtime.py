"""What a running process holds (settings, database, bus) and the FastAPI
dependencies that hand those to routes."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from infrawatch.core.concurrency import Versioned
from infrawatch.core.config import Settings
from infrawatch.core.counts import CountCache
from infrawatch.core.crypto import Keyring
from infrawatch.core.datadir import prepare_data_dir
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus, create_event_bus
from infrawatch.core.keys import load_keyring

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: EventBus
    keyring: Keyring
    counts: CountCache = field(default_factory=CountCache)
    # The monitoring engine and alerting running in this process, if any
    # (typed loosely: core may not import the domains above it).
    engine: Any = None
    alerting: Any = None
    # The job worker of this process, and the job types it knows.
    jobs: Any = None
    job_registry: Any = None


def assemble_runtime(
    settings: Settings, job_registry: Callable[[Settings], Any], *, create_data_dir: bool = True
) -> Runtime:
    """The parts every process shares: its data folder (a master key made
    there if none was given), event bus, database and keyring. The caller
    brings the job registry: core may not import the domains that fill it,
    and a CLI command that runs no job is quicker without importing them."""
    settings = prepare_data_dir(settings, create=create_data_dir)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    bus = create_event_bus(redis_url)
    return Runtime(
        settings=settings,
        db=Database(settings.effective_database_url, bus),
        bus=bus,
        keyring=load_keyring(settings),
        job_registry=job_registry(settings),
    )


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_settings(request: Request) -> Settings:
    return get_runtime(request).settings


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    db = get_runtime(request).db
    async with db.unit_of_work(write=request.method not in SAFE_METHODS) as session:
        yield session


# scope="function": the transaction commits before the response is sent, so
# a failed commit is the client's error response and a client's next request
# always sees its own change.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def _write_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_runtime(request).db.unit_of_work(write=True) as session:
        yield session


# For the few GET routes that write (push pings): on SQLite a read
# transaction that later writes fails at once if another writer got in first.
WriteSession = Annotated[AsyncSession, Depends(_write_session, scope="function")]


def get_count_cache(request: Request) -> CountCache:
    return get_runtime(request).counts


Counts = Annotated[CountCache, Depends(get_count_cache)]


def get_keyring(request: Request) -> Keyring:
    return get_runtime(request).keyring


KeyringDep = Annotated[Keyring, Depends(get_keyring)]


def request_id(request: Request) -> str:
    value: str = request.state.request_id
    return value


def source_ip(request: Request) -> str | None:
    peer = request.client.host if request.client else None
    trusted = get_settings(request).trusted_proxies
    forwarded = request.headers.get("x-forwarded-for")
    if peer and forwarded and _is_trusted(peer, trusted):
        # The rightmost address not added by one of our proxies is the client.
        for hop in reversed([h.strip() for h in forwarded.split(",")]):
            if not _is_trusted(hop, trusted):
                return hop[:64]
    return peer


def _is_trusted(address: str, trusted: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in trusted)


# The ETag a client read, sent back on a change: 412 if the object moved on.
IfMatch = Annotated[
    str | None,
    Header(max_length=256, description="the ETag you read; 412 if the object changed since"),
]
T = TypeVar("T")


def with_etag(response: Response, versioned: Versioned[T]) -> T:
    response.headers["ETag"] = versioned.etag
    return versioned.value

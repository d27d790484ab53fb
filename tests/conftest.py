"""Fixtures shared by the whole suite.

Every test that asks for `api` (or `db`) runs twice: on SQLite and on
PostgreSQL. Each xdist worker gets its own PostgreSQL database and its own
SQLite template; each test starts from an empty, migrated schema."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from infrawatch import migrations
from infrawatch.accounts.models import ApiToken, User
from infrawatch.accounts.passwords import hash_password
from infrawatch.app import create_app
from infrawatch.core.clock import utcnow
from infrawatch.core.config import Settings
from infrawatch.core.crypto import hash_token
from infrawatch.core.db import Base, Database

POSTGRES_ADMIN_URL = os.environ.get(
    "INFRAWATCH_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI") == "true"
PASSWORD = "correct horse battery staple"


def unavailable(what: str) -> None:
    """Under CI a missing service fails the run; on a laptop it skips."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true", pytrace=False)
    pytest.skip(f"{what} is not available")


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


async def _admin(statement: str) -> None:
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await admin.dispose()


async def _create_postgres_database(name: str) -> str:
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@dataclass
class Backend:
    name: str
    url: str
    template: Path | None = None  # SQLite: a migrated file copied per test


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("sqlite-template")
        template = folder / "template.db"
        engine = create_async_engine(f"sqlite+aiosqlite:///{template}")
        await migrations.upgrade(engine)
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        await engine.dispose()
        yield Backend("sqlite", "", template)
        return
    # One database per pytest process and worker, so two runs side by side
    # never drop each other's database.
    name = f"iw_test_{os.getpid()}_{worker_id()}"
    try:
        url = await asyncio.wait_for(_create_postgres_database(name), 10)
    except Exception as exc:
        unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL} ({type(exc).__name__}: {exc})")
    engine = create_async_engine(url)
    await migrations.upgrade(engine)
    await engine.dispose()
    yield Backend("postgresql", url)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# inventory_generation keeps its one row: emptying it would freeze the number.
TABLES = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "inventory_generation"]


@pytest.fixture
async def settings(backend: Backend, tmp_path: Path) -> Settings:
    if backend.template is not None:
        db_file = tmp_path / "infrawatch.db"
        shutil.copyfile(backend.template, db_file)
        return Settings(
            data_dir=tmp_path,
            database_url=f"sqlite+aiosqlite:///{db_file}",
            engine_enabled=False,  # engine and alerting tests start their own
            alerting_enabled=False,
        )
    engine = create_async_engine(backend.url)
    async with engine.begin() as conn:
        # TRUNCATE fires no row triggers, so the append-only audit guard stays.
        await conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    return Settings(
        data_dir=tmp_path, database_url=backend.url, engine_enabled=False, alerting_enabled=False
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    application = create_app(settings, run_migrations=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def db(app: object) -> Database:
    database: Database = app.state.runtime.db  # type: ignore[attr-defined]
    return database


_hash_cache: dict[str, str] = {}


async def make_user(db: Database, username: str, role: str, *, read_only: bool = False) -> str:
    """A user and an API token for it; returns the token. The password hash is
    computed once per session: argon2 is slow on purpose."""
    if PASSWORD not in _hash_cache:
        _hash_cache[PASSWORD] = await hash_password(PASSWORD)
    async with db.unit_of_work() as session:
        user = (
            await session.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username})
        ).scalar()
        if user is None:
            user_row = User(
                id=uuid.uuid4(),
                username=username,
                role=role,
                password_hash=_hash_cache[PASSWORD],
                is_active=True,
                created_at=utcnow(),
            )
            session.add(user_row)
            await session.flush()
            user = user_row.id
        secret = f"iw_test_{uuid.uuid4().hex}"
        session.add(
            ApiToken(
                id=uuid.uuid4(),
                user_id=user if isinstance(user, uuid.UUID) else uuid.UUID(str(user)),
                kind="api",
                name=f"{username}-token",
                token_hash=hash_token(secret),
                prefix=secret[:10],
                read_only=read_only,
                created_at=utcnow(),
            )
        )
    return secret


class Clients:
    def __init__(self, app: object, tokens: dict[str, str]) -> None:
        self._app = app
        self._clients: list[httpx.AsyncClient] = []
        self.anon = self.client(None)
        self.admin = self.client(tokens["admin"])
        self.operator = self.client(tokens["operator"])
        self.viewer = self.client(tokens["viewer"])
        self.tokens = tokens

    def client(self, token: str | None, source_ip: str = "127.0.0.1") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self._app, client=(source_ip, 40000)),  # type: ignore[arg-type]
            base_url="http://testserver",
            headers=headers,
        )
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()


@pytest.fixture
async def api(app: object, db: Database) -> AsyncIterator[Clients]:
    tokens = {role: await make_user(db, role, role) for role in ("admin", "operator", "viewer")}
    clients = Clients(app, tokens)
    yield clients
    await clients.close()


@pytest.fixture
def cli_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """Environment for an `infrawatch` process on this test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAWATCH_")}
    env["INFRAWATCH_DATA_DIR"] = str(tmp_path / "data")
    # Background checking and alerting only where a test asks for them.
    env["INFRAWATCH_ENGINE_ENABLED"] = "false"
    env["INFRAWATCH_ALERTING_ENABLED"] = "false"
    if settings.database_url is not None and not settings.is_sqlite:
        env["INFRAWATCH_DATABASE_URL"] = settings.database_url.get_secret_value()
    installed(env)
    return env


def installed(env: dict[str, str]) -> None:
    """What `serve`'s first start leaves for the other commands, which make
    no installation themselves: the data dir with its keys and, on SQLite,
    the database file (the command migrates it, as serve would)."""
    import sqlite3

    from infrawatch.core.datadir import prepare_data_dir

    settings = prepare_data_dir(
        Settings(
            data_dir=Path(env["INFRAWATCH_DATA_DIR"]),
            database_url=env.get("INFRAWATCH_DATABASE_URL"),
        )
    )
    if settings.sqlite_path is not None:
        sqlite3.connect(settings.sqlite_path).close()

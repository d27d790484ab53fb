"""The database going away: the API says 503 with Retry-After, the loops
log the outage once (not a traceback per retry) and back off."""

from __future__ import annotations

import asyncio
import logging
import uuid

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from infrawatch.app import create_app
from infrawatch.core.clock import utcnow
from infrawatch.core.config import Settings
from infrawatch.core.db import Database
from infrawatch.core.events import EventBus
from infrawatch.monitoring.engine.writer import ResultWriter
from infrawatch.monitoring.rows import ResultRow
from tests.conftest import Backend, Clients
from tests.monitoring.proxy import proxied


async def test_the_api_answers_503_with_retry_after_while_the_database_is_away(
    api: Clients, backend: Backend, settings: Settings
) -> None:
    if backend.name != "postgresql":
        pytest.skip("the outage is a TCP proxy in front of PostgreSQL")
    url = make_url(backend.url)
    async with proxied(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = create_app(
            settings.model_copy(update={"database_url": SecretStr(through)}), run_migrations=False
        )
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://testserver",
                headers={"Authorization": f"Bearer {api.tokens['viewer']}"},
            )
            assert (await client.get("/api/v1/servers")).status_code == 200
            await proxy.cut()
            for path in ("/api/v1/servers", "/api/v1/monitors", "/readyz"):
                away = await client.get(path)
                assert away.status_code == 503, (path, away.text)
                if path != "/readyz":
                    assert away.headers["retry-after"] == "5"
                    assert "database is unavailable" in away.json()["detail"]
            await proxy.restore()
            back = await client.get("/api/v1/servers")
            assert back.status_code == 200, back.text
            await client.aclose()


def _result() -> ResultRow:
    return ResultRow(
        monitor_id=uuid.uuid4(),
        checked_at=utcnow(),
        outcome="up",
        state="up",
        streak=1,
        latency_ms=1.0,
        status_code=200,
        error=None,
        details=None,
        location="default",
    )


async def test_the_writer_logs_an_outage_once_and_backs_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    away = Database("postgresql+asyncpg://postgres@127.0.0.1:9/nothing", EventBus())
    writer = ResultWriter(away, flush_seconds=0.05, max_rows=10)
    caplog.set_level(logging.WARNING, logger="infrawatch")
    task = asyncio.create_task(writer.run())
    try:
        # Checks keep coming, and a full buffer wakes the writer each time.
        for _ in range(300):
            for _ in range(10):
                writer.add_result(_result())
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await away.dispose()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "writing monitor results" in errors[0].getMessage()
    # 3 s of failures with a 50 ms base: backing off, about six tries, not 300.
    assert writer.failed_flushes <= 8, writer.failed_flushes

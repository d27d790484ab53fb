"""Passwords in monitor targets are kept encrypted and shown as ***;
push URLs are shown only to those who may change monitors."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web
from sqlalchemy import select, text

from infrawatch.app import create_app
from infrawatch.core.db import Base
from infrawatch.core.redaction import redact_userinfo as redact
from infrawatch.monitoring.target_secrets import split_password, with_password
from tests.alerting.receiver import receiving
from tests.alerting.test_flow import _channel_and_rule, running_alerting
from tests.conftest import Clients, make_user
from tests.monitoring.helpers import eventually, running_engine
from tests.monitoring.servers import serve_http
from tests.web.test_pages import _signed_in

PASSWORD = "s3cr3t-Pa55"


def test_the_password_is_split_off_and_put_back_as_written() -> None:
    masked, password = split_password("https://ops:p%40ss@example.test:443/health?x=1")
    assert masked == "https://ops:***@example.test:443/health?x=1" and password == "p%40ss"
    assert with_password(masked, password) == "https://ops:p%40ss@example.test:443/health?x=1"
    assert split_password("https://ops@example.test/") == ("https://ops@example.test/", None)
    assert redact("GET http://a:b@c/ failed; see https://x:y@z/") == (
        "GET http://a:***@c/ failed; see https://x:***@z/"
    )


def _basic_auth_app(state: dict[str, Any]) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401)
        return web.Response(status=state["status"], text="ok")

    app = web.Application()
    app.router.add_get("/", handle)
    return app


async def _everything_stored(db: Any) -> str:
    chunks = []
    async with db.unit_of_work(write=False) as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(select(table)):
                chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)


async def test_a_target_password_is_used_but_never_stored_shown_or_sent_in_clear(
    api: Clients, app: Any, db: Any
) -> None:
    state = {"status": 200}
    async with serve_http(_basic_auth_app(state)) as (_, port), receiving() as receiver:
        target = f"http://ops:{PASSWORD}@127.0.0.1:{port}/"
        created = await api.operator.post(
            "/api/v1/monitors",
            json={
                "name": "basic",
                "type": "http",
                "target": target,
                "interval_seconds": 1,
                "failure_threshold": 1,
            },
        )
        assert created.status_code == 201, created.text
        monitor = created.json()
        assert monitor["target"] == f"http://ops:***@127.0.0.1:{port}/"
        await _channel_and_rule(api, receiver)
        runtime = app.state.runtime
        async with running_engine(db, runtime.bus, runtime.keyring), running_alerting(app):

            async def status(wanted: str) -> bool:
                shown = await api.viewer.get(f"/api/v1/monitors/{monitor['id']}")
                return bool(shown.json()["status"] == wanted)

            await eventually(lambda: status("up"))  # the password reached the target
            # A form sends back what it was shown: the stored password stays.
            kept = await api.operator.patch(
                f"/api/v1/monitors/{monitor['id']}",
                json={"target": monitor["target"], "interval_seconds": 2},
            )
            assert kept.status_code == 200, kept.text
            state["status"] = 500
            await eventually(lambda: status("down"))
            await eventually(lambda: _any(receiver))
        check = await api.operator.post(f"/api/v1/monitors/{monitor['id']}/check")
        assert check.json()["status_code"] == 500  # the check-now path has the password too
        # A new password is a change the audit records, without the value.
        changed = await api.operator.patch(
            f"/api/v1/monitors/{monitor['id']}",
            json={"target": f"http://ops:other-pw@127.0.0.1:{port}/"},
        )
        assert changed.status_code == 200 and changed.headers["ETag"] != kept.headers["ETag"]
    seen = [
        created.text,
        kept.text,
        changed.text,
        check.text,
        (await api.viewer.get(f"/api/v1/monitors/{monitor['id']}")).text,
        (await api.viewer.get(f"/api/v1/monitors/{monitor['id']}/results")).text,
        (await api.admin.get(f"/api/v1/audit?object_id={monitor['id']}")).text,
        (await api.admin.get("/metrics")).text,
        " ".join(r.raw.decode() for r in receiver.received),
        (await (await _signed_in(api, "viewer")).get(f"/monitors/{monitor['id']}")).text,
        await _everything_stored(db),
    ]
    for text_seen in seen:
        assert PASSWORD not in text_seen and "other-pw" not in text_seen
    audit = (await api.admin.get(f"/api/v1/audit?object_id={monitor['id']}")).json()["items"]
    assert any("target_password" in str(r["changes"]) for r in audit), audit


async def _any(receiver: Any) -> bool:
    return len(receiver.on("/alerts")) > 0


async def test_passwords_an_older_version_stored_in_clear_are_sealed_at_start(
    settings: Any, api: Clients, db: Any
) -> None:
    created = await api.operator.post(
        "/api/v1/monitors",
        json={"name": "old", "type": "http", "target": "http://127.0.0.1:9/"},
    )
    async with db.unit_of_work() as session:
        await session.execute(
            text("UPDATE monitors SET target = :t WHERE id = :id"),
            {
                "t": f"http://ops:{PASSWORD}@127.0.0.1:9/",
                "id": created.json()["id"].replace("-", "")
                if db.is_sqlite
                else created.json()["id"],
            },
        )
    restarted = create_app(settings, run_migrations=False)
    async with restarted.router.lifespan_context(restarted):
        pass
    stored = await _everything_stored(db)
    assert PASSWORD not in stored and "http://ops:***@127.0.0.1:9/" in stored


async def test_push_urls_are_shown_only_to_those_who_may_change_monitors(
    api: Clients, db: Any
) -> None:
    created = await api.operator.post("/api/v1/monitors", json={"name": "cron", "type": "push"})
    monitor = created.json()
    token = monitor["settings"]["token"]
    assert monitor["push_url"].endswith(token)
    read_only = api.client(await make_user(db, "ro-operator", "operator", read_only=True))
    for client in (api.viewer, read_only):
        shown = await client.get(f"/api/v1/monitors/{monitor['id']}")
        listed = await client.get("/api/v1/monitors")
        for response in (shown, listed):
            assert response.status_code == 200
            assert token not in response.text, response.request.url
        assert shown.json()["push_url"] is None and "token" not in shown.json()["settings"]
    page = await (await _signed_in(api, "viewer")).get(f"/monitors/{monitor['id']}")
    assert page.status_code == 200 and token not in page.text
    assert token in (await api.admin.get(f"/api/v1/monitors/{monitor['id']}")).text
    operator_page = await (await _signed_in(api, "operator")).get(f"/monitors/{monitor['id']}")
    assert token in operator_page.text

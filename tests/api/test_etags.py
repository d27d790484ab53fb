"""One way for every object with a version: GET and PATCH send its ETag, a
PATCH with a stale If-Match is a 412 that changes nothing, a current one
goes through and moves the ETag on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import httpx
import pytest

from infrawatch.core.clock import utcnow
from tests.conftest import Clients
from tests.monitoring.helpers import create_http_monitor, create_server


async def _made(response: Awaitable[httpx.Response]) -> str:
    made = await response
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _channel(api: Clients) -> str:
    return await _made(
        api.operator.post(
            "/api/v1/notification-channels", json={"name": "ops", "url": "json://127.0.0.1:9/x"}
        )
    )


async def _server(api: Clients) -> str:
    return await create_server(api, "web-1")


async def _group(api: Clients) -> str:
    return await _made(api.operator.post("/api/v1/groups", json={"name": "frontends"}))


async def _template(api: Clients) -> str:
    return await _made(
        api.operator.post(
            "/api/v1/templates", json={"name": "web", "defaults": {"lifecycle": "active"}}
        )
    )


async def _monitor(api: Clients) -> str:
    return await create_http_monitor(api, "http://127.0.0.1:9/")


async def _rule(api: Clients) -> str:
    channel = await _channel(api)
    return await _made(
        api.operator.post("/api/v1/alert-rules", json={"name": "all", "channel_ids": [channel]})
    )


async def _window(api: Clients) -> str:
    now = utcnow()
    body = {
        "name": "patching",
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
    }
    return await _made(api.operator.post("/api/v1/maintenance-windows", json=body))


async def _page(api: Clients) -> str:
    return await _made(
        api.operator.post(
            "/api/v1/status-pages", json={"slug": "public", "title": "Public", "sections": []}
        )
    )


async def _key(api: Clients) -> str:
    return await _made(api.admin.post("/api/v1/ssh-keys", json={"name": "deploy"}))


async def _secret(api: Clients) -> str:
    return await _made(api.admin.post("/api/v1/secrets", json={"name": "db", "value": "hunter2"}))


CASES: list[tuple[str, Callable[[Clients], Awaitable[str]], dict[str, object], str]] = [
    ("servers", _server, {"description": "edge"}, "description"),
    ("groups", _group, {"description": "edge"}, "description"),
    ("templates", _template, {"description": "edge"}, "description"),
    ("monitors", _monitor, {"interval_seconds": 45}, "interval_seconds"),
    ("notification-channels", _channel, {"enabled": False}, "enabled"),
    ("alert-rules", _rule, {"enabled": False}, "enabled"),
    ("maintenance-windows", _window, {"description": "kernel"}, "description"),
    ("status-pages", _page, {"title": "Status"}, "title"),
    ("ssh-keys", _key, {"rotation_interval_days": 30}, "rotation_interval_days"),
    ("secrets", _secret, {"description": "pg"}, "description"),
]


@pytest.mark.parametrize(("kind", "make", "change", "field"), CASES, ids=[c[0] for c in CASES])
async def test_every_versioned_object_takes_if_match_and_sends_its_etag(
    api: Clients,
    kind: str,
    make: Callable[[Clients], Awaitable[str]],
    change: dict[str, object],
    field: str,
) -> None:
    url = f"/api/v1/{kind}/{await make(api)}"
    first = await api.admin.get(url)
    assert first.status_code == 200, first.text
    tag = first.headers["ETag"]

    stale = '"0"'
    refused = await api.admin.patch(url, json=change, headers={"If-Match": stale})
    assert refused.status_code == 412, refused.text
    unchanged = await api.admin.get(url)
    assert unchanged.headers["ETag"] == tag
    assert unchanged.json()[field] == first.json()[field]

    done = await api.admin.patch(url, json=change, headers={"If-Match": tag})
    assert done.status_code == 200, done.text
    assert done.json()[field] == change[field]
    assert done.headers["ETag"] != tag
    assert (await api.admin.get(url)).headers["ETag"] == done.headers["ETag"]

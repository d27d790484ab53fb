"""Every console page renders for every role, shows a viewer no control
the API would refuse, and sends strangers to the login page."""

from __future__ import annotations

import re
import uuid

import httpx

from infrawatch.core.db import Database
from tests.conftest import PASSWORD, Clients
from tests.monitoring.helpers import create_http_monitor, create_server

HTML = {"Accept": "text/html"}


async def _signed_in(api: Clients, role: str) -> httpx.AsyncClient:
    client = api.client(None)
    response = await client.post(
        "/api/v1/auth/login", json={"username": role, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return client


async def _fixtures(api: Clients) -> dict[str, str]:
    server = await create_server(api, "web-1")
    monitor = await create_http_monitor(api, "http://127.0.0.1:9/", server_id=server)
    page = await api.operator.post(
        "/api/v1/status-pages",
        json={
            "slug": "public",
            "title": "Public",
            "custom_domain": "status.example.test",
            "sections": [{"name": "Web", "monitors": [{"monitor_id": monitor, "name": "Site"}]}],
        },
    )
    key = await api.admin.post("/api/v1/ssh-keys", json={"name": "deploy"})
    channel = await api.operator.post(
        "/api/v1/notification-channels", json={"name": "ops", "url": "json://127.0.0.1:9/hook"}
    )
    rule = await api.operator.post(
        "/api/v1/alert-rules", json={"name": "all", "channel_ids": [channel.json()["id"]]}
    )
    assert rule.status_code == 201, rule.text
    return {
        "server": server,
        "monitor": monitor,
        "page": page.json()["id"],
        "key": key.json()["id"],
    }


def _pages(ids: dict[str, str]) -> list[str]:
    return [
        "/",
        "/servers",
        "/servers?q=web-*&sort=-health",
        f"/servers/{ids['server']}",
        "/monitors",
        "/monitors?status=pending",
        f"/monitors/{ids['monitor']}",
        "/incidents",
        "/alerting",
        "/status-pages",
        f"/status-pages/{ids['page']}",
        "/credentials",
        f"/credentials/keys/{ids['key']}",
        "/tools",
        "/jobs",
        "/audit",
        "/audit?action=server.*",
    ]


async def test_every_page_renders_for_admin(api: Clients, db: Database) -> None:
    ids = await _fixtures(api)
    admin = await _signed_in(api, "admin")
    for path in [*_pages(ids), "/admin", "/monitors/new?type=dns"]:
        response = await admin.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert '<main id="main">' in response.text
        assert 'name="csrf-token" content=""' not in response.text, path
    servers = (await admin.get("/servers")).text
    assert "New server" in servers and 'data-api="POST /api/v1/servers/bulk"' in servers
    alerting = (await admin.get("/alerting")).text
    assert "PATCH /api/v1/notification-channels/" in alerting and "Disable" in alerting
    assert "json://127.0.0.1:9/hook" not in alerting  # channel URLs are write-only


async def test_viewer_sees_no_control_that_would_be_refused(api: Clients) -> None:
    ids = await _fixtures(api)
    viewer = await _signed_in(api, "viewer")
    for path in _pages(ids):
        response = await viewer.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        actions = set(re.findall(r'data-api="([A-Z]+ [^"]+)"', response.text))
        assert actions == {"POST /api/v1/auth/logout"}, (path, actions)
        assert "New server" not in response.text
    for path in ("/admin", "/monitors/new"):
        refused = await viewer.get(path, headers=HTML)
        assert refused.status_code == 403, path
        assert "text/html" in refused.headers["content-type"]


async def test_strangers_are_sent_to_login(api: Clients) -> None:
    stranger = api.client(None)
    response = await stranger.get("/servers?q=web", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/servers%3Fq%3Dweb"
    htmx = await stranger.get("/servers", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"].startswith("/login?next=")
    login = await stranger.get("/login?next=//evil.example/x")
    assert 'data-then="go:/"' in login.text  # never an open redirect
    assert 'data-then="go:/servers"' in (await stranger.get("/login?next=/servers")).text


async def test_custom_domain_and_html_errors(api: Clients) -> None:
    await _fixtures(api)
    stranger = api.client(None)
    by_domain = await stranger.get("/", headers={"Host": "status.example.test:8000"})
    assert by_domain.status_code == 200 and "Site" in by_domain.text
    assert "web-1" not in by_domain.text
    admin = await _signed_in(api, "admin")
    missing = await admin.get(f"/servers/{uuid.uuid4()}", headers=HTML)
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "no such server" in missing.text and "<h1>404</h1>" in missing.text
    api_missing = await admin.get(f"/api/v1/servers/{uuid.uuid4()}", headers=HTML)
    assert api_missing.headers["content-type"] == "application/json"

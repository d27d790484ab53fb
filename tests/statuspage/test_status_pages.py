"""Status pages: managed through the API, shown to the public with only
what was published, with incidents, a feed and badges."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from infrawatch.core.clock import utcnow
from infrawatch.core.db import Database
from infrawatch.monitoring import repository as monitoring_repository
from infrawatch.monitoring.models import Monitor
from infrawatch.monitoring.rollups import aggregate
from infrawatch.statuspage.schemas import PublicPage
from tests.conftest import Clients
from tests.monitoring.helpers import create_http_monitor

SECRET_TARGET = "http://127.0.0.1:9/internal-admin-path"
ATOM = "{http://www.w3.org/2005/Atom}"


def _xml(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314  (our own server's output)


async def _monitor(api: Clients, name: str, target: str = SECRET_TARGET) -> str:
    return await create_http_monitor(api, target, name=name, interval_seconds=30)


async def _page(api: Clients, slug: str, sections: list[dict[str, Any]], **fields: Any) -> dict:
    body = {"slug": slug, "title": f"{slug} status", "sections": sections, **fields}
    response = await api.operator.post("/api/v1/status-pages", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _set_status(db: Database, monitor_id: str, status: str) -> None:
    async with db.unit_of_work() as session:
        await session.execute(
            update(Monitor).where(Monitor.id == uuid.UUID(monitor_id)).values(status=status)
        )


async def _seed_history(db: Database, monitor_id: str, days_ago: int, up: int, down: int) -> None:
    """Rollups as the engine's writer makes them, for a day in the past."""
    at = utcnow() - timedelta(days=days_ago)
    results = [(uuid.UUID(monitor_id), at, "up", 120.0)] * up
    results += [(uuid.UUID(monitor_id), at, "down", 900.0)] * down
    async with db.unit_of_work() as session:
        await monitoring_repository.upsert_rollups(session, aggregate(results))


async def test_managing_pages_validates_and_checks_roles(api: Clients) -> None:
    monitor = await _monitor(api, "db-primary-eu")
    missing = str(uuid.uuid4())
    bad = await api.operator.post(
        "/api/v1/status-pages",
        json={
            "slug": "acme",
            "title": "Acme",
            "sections": [{"name": "Core", "monitors": [{"monitor_id": missing, "name": "API"}]}],
        },
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "sections", 0, "monitors", 0, "monitor_id"]
    for field, value in (
        ("slug", "Has.Dots"),
        ("custom_domain", "not a domain"),
        ("logo_url", "javascript:alert(1)"),
    ):
        body = {"slug": "acme", "title": "Acme", field: value}
        response = await api.operator.post("/api/v1/status-pages", json=body)
        assert response.status_code == 422, (field, response.text)
        assert field in str(response.json()["detail"])
    viewer = await api.viewer.post("/api/v1/status-pages", json={"slug": "acme", "title": "Acme"})
    assert viewer.status_code == 403

    sections = [{"name": "Core", "monitors": [{"monitor_id": monitor, "name": "API"}]}]
    page = await _page(api, "acme", sections, custom_domain="Status.Example.COM")
    assert page["custom_domain"] == "status.example.com"
    duplicate = await api.operator.post("/api/v1/status-pages", json={"slug": "acme", "title": "x"})
    assert duplicate.status_code == 409
    same_domain = await api.operator.post(
        "/api/v1/status-pages",
        json={"slug": "other", "title": "x", "custom_domain": "status.example.com"},
    )
    assert same_domain.status_code == 409

    listed = await api.viewer.get("/api/v1/status-pages")
    assert [p["slug"] for p in listed.json()] == ["acme"]
    stale = await api.operator.patch(
        f"/api/v1/status-pages/{page['id']}", json={"title": "New"}, headers={"If-Match": '"9"'}
    )
    assert stale.status_code == 412
    renamed = await api.operator.patch(
        f"/api/v1/status-pages/{page['id']}", json={"title": "New"}, headers={"If-Match": '"1"'}
    )
    assert renamed.status_code == 200 and renamed.json()["version"] == 2
    audit = await api.admin.get("/api/v1/audit", params={"object_type": "status_page"})
    actions = {r["action"] for r in audit.json()["items"]}
    assert {"status_page.create", "status_page.update"} <= actions


async def test_public_page_shows_only_what_was_published(api: Clients, db: Database) -> None:
    hidden = await _monitor(api, "db-primary-eu-internal")
    shown = await _monitor(api, "web-frontend-7", "http://127.0.0.1:9/health")
    await _set_status(db, hidden, "up")
    await _set_status(db, shown, "up")
    await _seed_history(db, hidden, days_ago=3, up=99, down=1)
    sections = [
        {
            "name": "Platform",
            "monitors": [
                {"monitor_id": hidden, "name": "Database"},
                {"monitor_id": shown, "name": "Website", "show_target": True},
            ],
        }
    ]
    await _page(api, "acme", sections, description="Acme's services")

    html = await api.anon.get("/status/acme")
    assert html.status_code == 200
    text = html.text
    assert "Database" in text and "Website" in text
    assert "db-primary-eu-internal" not in text and "internal-admin-path" not in text
    assert "web-frontend-7" not in text  # the monitor's own name stays internal
    assert "http://127.0.0.1:9/health" in text  # show_target was chosen for this one
    assert "All systems operational" in text
    assert text.count("<rect") == 2 * 90  # one bar per day per monitor
    assert "99.00 % up, 1 of 100 checks failed" in text  # the tooltip of the seeded day

    data = (await api.anon.get("/status/acme.json")).json()
    PublicPage.model_validate(data)  # built by hand for speed: must keep the documented shape
    assert data["overall"] == "operational"
    database = data["sections"][0]["monitors"][0]
    assert database["name"] == "Database" and database["target"] is None
    assert len(database["days"]) == 90
    assert database["days"][-4]["uptime_percent"] == 99.0
    assert database["uptime_90d"] == 99.0
    assert "db-primary-eu-internal" not in str(data)

    await _set_status(db, hidden, "down")
    data = (await api.anon.get("/status/acme.json")).json()
    assert data["overall"] == "partial_outage"
    await _set_status(db, shown, "down")
    assert (await api.anon.get("/status/acme.json")).json()["overall"] == "major_outage"
    assert "Major outage" in (await api.anon.get("/status/acme")).text

    # A deleted monitor leaves the page; it does not break it.
    assert (await api.operator.delete(f"/api/v1/monitors/{hidden}")).status_code == 204
    data = (await api.anon.get("/status/acme.json")).json()
    assert [m["name"] for m in data["sections"][0]["monitors"]] == ["Website"]


async def test_unpublished_and_unknown_pages_are_404(api: Clients) -> None:
    page = await _page(api, "draft", [], published=False)
    for path in ("/status/draft", "/status/draft.json", "/status/draft/feed.atom", "/status/nope"):
        assert (await api.anon.get(path)).status_code == 404, path
    await api.operator.patch(f"/api/v1/status-pages/{page['id']}", json={"published": True})
    assert (await api.anon.get("/status/draft")).status_code == 200


async def test_incidents_with_updates_feed_and_escaping(api: Clients) -> None:
    monitor = await _monitor(api, "api-1")
    page = await _page(
        api, "acme", [{"name": "Core", "monitors": [{"monitor_id": monitor, "name": "API"}]}]
    )
    base = f"/api/v1/status-pages/{page['id']}/incidents"
    created = await api.operator.post(
        base,
        json={"title": "Slow logins", "impact": "major", "message": "Looking <script>x()</script>"},
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["status"] == "investigating"
    wrong = await api.operator.post(
        f"{base}/{incident['id']}/updates", json={"status": "completed", "message": "?"}
    )
    assert wrong.status_code == 422 and "status" in str(wrong.json()["detail"])
    for status in ("identified", "monitoring"):
        response = await api.operator.post(
            f"{base}/{incident['id']}/updates", json={"status": status, "message": f"now {status}"}
        )
        assert response.status_code == 201, response.text
    maintenance_without_times = await api.operator.post(
        base, json={"kind": "maintenance", "title": "DB upgrade", "message": "planned"}
    )
    assert maintenance_without_times.status_code == 422
    start = utcnow() + timedelta(days=1)
    planned = await api.operator.post(
        base,
        json={
            "kind": "maintenance",
            "title": "DB upgrade",
            "impact": "none",
            "message": "planned",
            "scheduled_start": start.isoformat(),
            "scheduled_end": (start + timedelta(hours=2)).isoformat(),
        },
    )
    assert planned.status_code == 201 and planned.json()["status"] == "scheduled"

    html = (await api.anon.get("/status/acme")).text
    assert "Slow logins" in html and "Scheduled maintenance" in html and "DB upgrade" in html
    assert "<script>x()" not in html and "&lt;script&gt;" in html
    data = (await api.anon.get("/status/acme.json")).json()
    assert data["overall"] == "partial_outage"  # a major incident, though every monitor is fine
    assert [u["status"] for u in data["active_incidents"][0]["updates"]] == [
        "monitoring",
        "identified",
        "investigating",
    ]

    resolved = await api.operator.post(
        f"{base}/{incident['id']}/updates", json={"status": "resolved", "message": "fixed"}
    )
    assert resolved.json()["resolved_at"] is not None
    data = (await api.anon.get("/status/acme.json")).json()
    assert data["active_incidents"] == [] and data["past_incidents"][0]["title"] == "Slow logins"

    feed = await api.anon.get("/status/acme/feed.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    root = _xml(feed.content)
    titles = [e.findtext(f"{ATOM}title") for e in root.findall(f"{ATOM}entry")]
    assert "Slow logins (resolved)" in titles and "DB upgrade (scheduled)" in titles
    content = root.find(f"{ATOM}entry/{ATOM}content")
    assert content is not None and content.attrib["type"] == "text"


async def test_badges_only_for_published_monitors(api: Clients, db: Database) -> None:
    monitor = await _monitor(api, "api-1")
    unpublished = await _monitor(api, "secret-1")
    await _set_status(db, monitor, "up")
    await _seed_history(db, monitor, days_ago=0, up=3, down=1)
    await _page(api, "acme", [{"name": "C", "monitors": [{"monitor_id": monitor, "name": "API"}]}])

    status = await api.anon.get(f"/badge/{monitor}/status.svg")
    assert status.status_code == 200
    assert status.headers["content-type"].startswith("image/svg+xml")
    root = _xml(status.content)
    assert root.attrib["aria-label"] == "API: up"
    uptime = _xml((await api.anon.get(f"/badge/{monitor}/uptime.svg?duration=24h")).content)
    assert uptime.attrib["aria-label"] == "uptime 24h: 75.00%"
    latency = _xml((await api.anon.get(f"/badge/{monitor}/latency.svg")).content)
    # The answered checks' average: the failed check's 900 ms is no response time.
    assert latency.attrib["aria-label"] == "response time 24h: 120 ms"
    cert = _xml((await api.anon.get(f"/badge/{monitor}/cert.svg?label=TLS")).content)
    assert cert.attrib["aria-label"] == "TLS: no certificate"

    assert (await api.anon.get(f"/badge/{unpublished}/status.svg")).status_code == 404
    assert (await api.anon.get(f"/badge/{uuid.uuid4()}/status.svg")).status_code == 404
    assert (await api.anon.get(f"/badge/{monitor}/nope.svg")).status_code == 422
    assert (await api.anon.get("/badge/not-a-uuid/status.svg")).status_code == 422


async def test_a_title_that_says_status_is_not_said_twice(api: Clients) -> None:
    monitor = await _monitor(api, "api-2")
    sections = [{"name": "Core", "monitors": [{"monitor_id": monitor, "name": "API"}]}]
    await _page(api, "acme-status", sections, title="Acme Status")
    await _page(api, "beta", sections, title="Beta")
    for slug, title in (("acme-status", "Acme Status"), ("beta", "Beta status")):
        page = (await api.anon.get(f"/status/{slug}")).text
        feed = (await api.anon.get(f"/status/{slug}/feed.atom")).text
        assert f"<title>{title}</title>" in page and f"<title>{title}</title>" in feed
        assert "status status" not in (page + feed).lower()

"""Maintenance windows are edited in place (PATCH), checked as a whole as on
create; a refused change leaves the window as it was."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from infrawatch.core.clock import utcnow
from tests.conftest import Clients


async def _window(api: Clients, **fields: Any) -> dict[str, Any]:
    now = utcnow()
    body = {
        "name": "patching",
        "starts_at": (now + timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
        **fields,
    }
    made = await api.operator.post("/api/v1/maintenance-windows", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_a_window_is_renamed_moved_and_made_recurring(api: Clients) -> None:
    window = await _window(api, tags={"env": "prod"})
    url = f"/api/v1/maintenance-windows/{window['id']}"
    now = utcnow()
    moved = await api.operator.patch(
        url,
        json={
            "name": "kernel updates",
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(minutes=30)).isoformat(),
            "tags": {"env": None},
        },
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["name"] == "kernel updates" and moved.json()["active"] is True
    assert moved.json()["tags"] == {"env": None}

    recurring = await api.operator.patch(
        url,
        json={"starts_at": None, "ends_at": None, "cron": "0 2 * * sun", "duration_minutes": 90},
    )
    assert recurring.status_code == 200, recurring.text
    assert recurring.json()["cron"] == "0 2 * * sun" and recurring.json()["starts_at"] is None
    by_days = await api.operator.patch(url, json={"weekdays": ["sat"], "start_time": "03:30"})
    assert by_days.status_code == 200, by_days.text
    assert by_days.json()["cron"] == "30 3 * * 6"

    trail = await api.admin.get("/api/v1/audit", params={"object_id": window["id"]})
    actions = [r["action"] for r in trail.json()["items"]]
    assert actions.count("maintenance.update") == 3


async def test_a_bad_change_is_a_422_naming_the_field_and_changes_nothing(api: Clients) -> None:
    window = await _window(api)
    url = f"/api/v1/maintenance-windows/{window['id']}"
    backwards = await api.operator.patch(
        url, json={"name": "renamed", "ends_at": (utcnow() - timedelta(days=1)).isoformat()}
    )
    assert backwards.status_code == 422
    assert "ends_at must be after starts_at" in backwards.text
    both = await api.operator.patch(url, json={"cron": "0 2 * * *", "duration_minutes": 5})
    assert both.status_code == 422 and "either" in both.text
    bad_cron = await api.operator.patch(
        url, json={"starts_at": None, "ends_at": None, "cron": "61 * * * *", "duration_minutes": 5}
    )
    assert bad_cron.status_code == 422 and "cron" in bad_cron.text
    unknown = await api.operator.patch(url, json={"colour": "red"})
    assert unknown.status_code == 422 and "colour" in unknown.text
    nameless = await api.operator.patch(url, json={"name": None})
    assert nameless.status_code == 422 and "name" in nameless.text
    assert (await api.viewer.get(url)).json() == window  # as it was

    other = await _window(api, name="other")
    taken = await api.operator.patch(
        f"/api/v1/maintenance-windows/{other['id']}", json={"name": "patching"}
    )
    assert taken.status_code == 409


async def test_if_match_guards_a_window_and_viewers_cannot_edit(api: Clients) -> None:
    window = await _window(api)
    url = f"/api/v1/maintenance-windows/{window['id']}"
    stale = await api.operator.patch(url, json={"name": "x"}, headers={"If-Match": 'W/"99"'})
    assert stale.status_code == 412
    assert (await api.viewer.patch(url, json={"name": "x"})).status_code == 403
    missing = await api.operator.patch(
        "/api/v1/maintenance-windows/00000000-0000-0000-0000-000000000000", json={"name": "x"}
    )
    assert missing.status_code == 404

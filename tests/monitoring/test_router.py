from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Clients

HTTP = {"name": "shop", "type": "http", "target": "http://127.0.0.1:9/health"}


async def _create(api: Clients, **fields: Any) -> dict[str, Any]:
    response = await api.operator.post("/api/v1/monitors", json={**HTTP, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_monitor_is_created_with_defaults_and_read_back(api: Clients) -> None:
    monitor = await _create(api, conditions=["[STATUS] == 200"])
    assert monitor["interval_seconds"] == 30 and monitor["failure_threshold"] == 3
    assert monitor["status"] == "pending" and monitor["last_checked_at"] is None
    assert monitor["settings"]["accepted_status_codes"] == ["200-399"]
    read = await api.viewer.get(f"/api/v1/monitors/{monitor['id']}")
    assert read.json() == monitor and read.headers["ETag"]
    page = (await api.viewer.get("/api/v1/monitors?type=http")).json()
    assert page["total"] == 1 and page["items"][0]["id"] == monitor["id"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"type": "http", "target": "ftp://x/"}, ["body", "target"]),
        ({"type": "tcp", "target": "db.internal"}, ["body", "target"]),
        ({"type": "ping", "target": "host:22"}, ["body", "target"]),
        ({"conditions": ["[STATUS] = 200"]}, ["body", "conditions", 0]),
        ({"conditions": ["[DNS_RCODE] == NOERROR"]}, ["body", "conditions", 0]),
        ({"settings": {"method": "BREW"}}, ["body", "settings", "method"]),
        ({"settings": {"unknown": 1}}, ["body", "settings", "unknown"]),
        ({"interval_seconds": 0}, ["body", "interval_seconds"]),
        ({"interval_seconds": 5, "timeout_seconds": 10}, ["body", "timeout_seconds"]),
        (
            {"type": "dns", "target": "example.test", "settings": {"record_type": "ZZ"}},
            ["body", "settings", "record_type"],
        ),
        ({"server_id": "00000000-0000-0000-0000-000000000001"}, ["body", "server_id"]),
        ({"settings": {"json_path": "$..[?(@.x)]"}}, ["body", "settings", "json_path"]),
        ({"conditions": ["[STATUS] === banana"]}, ["body", "conditions", 0]),
        ({"target": None}, ["body", "target"]),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    api: Clients, body: dict[str, Any], loc: list[Any]
) -> None:
    response = await api.operator.post("/api/v1/monitors", json={**HTTP, **body})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert (await api.viewer.get("/api/v1/monitors")).json()["total"] == 0


async def test_an_explicit_null_means_not_set(api: Clients) -> None:
    push = await api.operator.post(
        "/api/v1/monitors",
        json={
            "name": "cron",
            "type": "push",
            "target": None,
            "conditions": None,
            "interval_seconds": None,
            "settings": None,
            "server_id": None,
        },
    )
    assert push.status_code == 201, push.text
    assert push.json()["target"] == "" and push.json()["interval_seconds"] == 30
    monitor = await _create(api, interval_seconds=60, conditions=["[STATUS] == 200"])
    reset = await api.operator.patch(
        f"/api/v1/monitors/{monitor['id']}", json={"interval_seconds": None, "conditions": None}
    )
    assert reset.status_code == 200, reset.text
    assert reset.json()["interval_seconds"] == 30 and reset.json()["conditions"] == []
    no_name = await api.operator.patch(f"/api/v1/monitors/{monitor['id']}", json={"name": None})
    assert no_name.status_code == 422 and no_name.json()["detail"][0]["loc"] == ["body", "name"]


async def test_names_are_unique(api: Clients) -> None:
    await _create(api)
    response = await api.operator.post("/api/v1/monitors", json=HTTP)
    assert response.status_code == 409


async def test_viewers_read_but_cannot_change_monitors(api: Clients) -> None:
    monitor = await _create(api)
    assert (
        await api.viewer.post("/api/v1/monitors", json={**HTTP, "name": "x"})
    ).status_code == 403
    assert (await api.viewer.post(f"/api/v1/monitors/{monitor['id']}/pause")).status_code == 403
    assert (await api.viewer.get(f"/api/v1/monitors/{monitor['id']}/uptime")).status_code == 200


async def test_update_pause_resume_and_delete_are_audited(api: Clients) -> None:
    monitor = await _create(api)
    path = f"/api/v1/monitors/{monitor['id']}"
    stale = await api.operator.patch(
        path, json={"interval_seconds": 60}, headers={"If-Match": '"999"'}
    )
    assert stale.status_code == 412
    changed = await api.operator.patch(path, json={"interval_seconds": 60, "critical": True})
    assert changed.status_code == 200 and changed.json()["critical"] is True
    assert (await api.operator.post(f"{path}/pause")).json()["status"] == "paused"
    assert (await api.operator.post(f"{path}/resume")).json()["status"] == "pending"
    assert (await api.operator.patch(path, json={"name": None})).status_code == 422
    assert (await api.operator.delete(path)).status_code == 204
    assert (await api.viewer.get(path)).status_code == 404
    audit = (await api.admin.get(f"/api/v1/audit?object_id={monitor['id']}")).json()["items"]
    assert sorted(r["action"] for r in audit) == [
        "monitor.create",
        "monitor.delete",
        "monitor.update",
        "monitor.update",
        "monitor.update",
    ]


async def test_a_push_monitor_shows_its_url_and_takes_pings_without_a_bearer_token(
    api: Clients,
) -> None:
    monitor = await _create(
        api, type="push", target="", settings={"period_seconds": 60, "grace_seconds": 30}
    )
    token = monitor["settings"]["token"]
    assert monitor["push_url"].endswith(f"/api/v1/push/{token}")
    assert monitor["settings"]["period_seconds"] == 60
    for suffix in ("", "/start", "/fail", "/0", "/3"):
        response = await api.anon.get(f"/api/v1/push/{token}{suffix}")
        assert response.status_code == 200, (suffix, response.text)
    assert (await api.anon.post("/api/v1/push/not-a-real-token")).status_code == 404
    assert (await api.anon.get(f"/api/v1/push/{token}/999")).status_code == 422
    check = (await api.operator.post(f"/api/v1/monitors/{monitor['id']}/check")).json()
    assert check["outcome"] == "down" and "exit code 3" in check["error"]


async def test_the_push_token_is_not_stored_in_clear(api: Clients, db: Any) -> None:
    from sqlalchemy import text

    monitor = await _create(api, type="push", target="")
    token = monitor["settings"]["token"]
    async with db.unit_of_work(write=False) as session:
        row = (await session.execute(text("SELECT * FROM monitors"))).one()
    assert token not in " ".join(str(v) for v in row)

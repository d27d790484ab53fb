from __future__ import annotations

from tests.conftest import Clients

MONITORS = [
    {"name": "{server} http", "type": "http", "target": "http://{hostname}:8080/health"},
    {"name": "{server} ssh", "type": "ssh", "target": "{ip}:22", "critical": True},
]


async def _template(api: Clients) -> str:
    response = await api.operator.post(
        "/api/v1/templates", json={"name": "web", "defaults": {"lifecycle": "active"}}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_template_carries_monitors_to_every_server_it_stamps_out(api: Clients) -> None:
    template_id = await _template(api)
    saved = await api.operator.put(f"/api/v1/templates/{template_id}/monitors", json=MONITORS)
    assert saved.status_code == 200, saved.text
    assert (await api.viewer.get(f"/api/v1/templates/{template_id}/monitors")).json() == MONITORS
    created = await api.operator.post(
        f"/api/v1/templates/{template_id}/instantiate",
        json={"count": 2, "name_pattern": "web-{n:02}", "overrides": {"ip_address": "192.0.2.7"}},
    )
    assert created.status_code in (200, 201), created.text
    servers = {s["name"]: s["id"] for s in created.json()}
    monitors = (await api.viewer.get("/api/v1/monitors")).json()["items"]
    by_name = {m["name"]: m for m in monitors}
    assert sorted(by_name) == ["web-01 http", "web-01 ssh", "web-02 http", "web-02 ssh"]
    assert by_name["web-02 http"]["target"] == "http://192.0.2.7:8080/health"
    assert by_name["web-01 ssh"]["server_id"] == servers["web-01"]
    assert by_name["web-01 ssh"]["critical"] is True


async def test_a_bad_template_monitor_is_refused_when_saved(api: Clients) -> None:
    template_id = await _template(api)
    no_placeholder = await api.operator.put(
        f"/api/v1/templates/{template_id}/monitors",
        json=[{"name": "same for all", "type": "tcp", "target": "{ip}:22"}],
    )
    assert no_placeholder.status_code == 422
    bad_condition = await api.operator.put(
        f"/api/v1/templates/{template_id}/monitors",
        json=[
            {
                "name": "{server}",
                "type": "tcp",
                "target": "{ip}:22",
                "conditions": ["[STATUS] == 200"],
            }
        ],
    )
    assert bad_condition.status_code == 422
    assert (await api.viewer.get(f"/api/v1/templates/{template_id}/monitors")).json() == []


async def test_instantiating_is_all_or_nothing_with_monitors(api: Clients) -> None:
    template_id = await _template(api)
    await api.operator.put(f"/api/v1/templates/{template_id}/monitors", json=MONITORS[:1])
    taken = await api.operator.post(
        "/api/v1/monitors", json={"name": "web-02 http", "type": "tcp", "target": "192.0.2.1:80"}
    )
    assert taken.status_code == 201
    failed = await api.operator.post(
        f"/api/v1/templates/{template_id}/instantiate",
        json={"count": 3, "name_pattern": "web-{n:02}"},
    )
    assert failed.status_code == 409
    assert (await api.viewer.get("/api/v1/servers")).json()["total"] == 0
    assert (await api.viewer.get("/api/v1/monitors")).json()["total"] == 1


async def test_a_template_monitor_keeps_its_target_password_encrypted(
    api: Clients, app: object, db: object
) -> None:
    from sqlalchemy import select

    from infrawatch.monitoring.models import Monitor
    from infrawatch.monitoring.service import target_password

    template_id = await _template(api)
    spec = {"name": "{server} admin", "type": "http", "target": "http://ops:t3mpl-pw@{ip}:81/"}
    saved = await api.operator.put(f"/api/v1/templates/{template_id}/monitors", json=[spec])
    assert saved.status_code == 200, saved.text
    assert saved.json()[0]["target"] == "http://ops:***@{ip}:81/"
    # Saved again as shown (with ***), the password stays.
    again = await api.operator.put(f"/api/v1/templates/{template_id}/monitors", json=saved.json())
    assert "t3mpl-pw" not in again.text
    await api.operator.post(
        f"/api/v1/templates/{template_id}/instantiate",
        json={"count": 1, "name_pattern": "adm-{n}", "overrides": {"ip_address": "127.0.0.1"}},
    )
    [monitor] = (await api.viewer.get("/api/v1/monitors")).json()["items"]
    assert monitor["target"] == "http://ops:***@127.0.0.1:81/"
    async with db.unit_of_work(write=False) as session:  # type: ignore[attr-defined]
        row = (await session.scalars(select(Monitor))).one()
        keyring = app.state.runtime.keyring  # type: ignore[attr-defined]
        assert target_password(row, keyring) == "t3mpl-pw"

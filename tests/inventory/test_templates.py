from __future__ import annotations

from tests.conftest import Clients
from tests.inventory.helpers import names


async def _template(api: Clients) -> str:
    await api.operator.post("/api/v1/groups", json={"name": "web"})
    response = await api.operator.post(
        "/api/v1/templates",
        json={
            "name": "web-node",
            "defaults": {
                "tags": {"role": "web"},
                "groups": ["web"],
                "region": "eu-1",
                "attributes": {"size": "m"},
                "lifecycle": "planned",
            },
        },
    )
    assert response.status_code == 201, response.text
    template_id: str = response.json()["id"]
    return template_id


async def test_instantiate_creates_the_servers_with_the_template_defaults(api: Clients) -> None:
    template_id = await _template(api)
    response = await api.operator.post(
        f"/api/v1/templates/{template_id}/instantiate", json={"count": 5, "name_pattern": "web-{n}"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert [s["name"] for s in created] == ["web-1", "web-2", "web-3", "web-4", "web-5"]
    assert all(
        s["tags"] == {"role": "web"}
        and s["groups"] == ["web"]
        and s["lifecycle"] == "planned"
        and s["region"] == "eu-1"
        and s["attributes"] == {"size": "m"}
        for s in created
    )


async def test_instantiate_is_all_or_nothing(api: Clients) -> None:
    template_id = await _template(api)
    await api.operator.post("/api/v1/servers", json={"name": "web-003"})
    response = await api.operator.post(
        f"/api/v1/templates/{template_id}/instantiate",
        json={"count": 5, "name_pattern": "web-{n:03}"},
    )
    assert response.status_code == 409
    assert "web-003" in response.json()["detail"]
    assert await names(api.viewer) == ["web-003"]


async def test_overrides_and_padding(api: Clients) -> None:
    template_id = await _template(api)
    response = await api.operator.post(
        f"/api/v1/templates/{template_id}/instantiate",
        json={
            "count": 2,
            "name_pattern": "edge-{n:02}",
            "start": 9,
            "overrides": {"region": "us-1"},
        },
    )
    assert [s["name"] for s in response.json()] == ["edge-09", "edge-10"]
    assert {s["region"] for s in response.json()} == {"us-1"}


async def test_a_pattern_without_a_number_is_refused(api: Clients) -> None:
    template_id = await _template(api)
    response = await api.operator.post(
        f"/api/v1/templates/{template_id}/instantiate", json={"count": 2, "name_pattern": "web"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "name_pattern"


async def test_templates_refuse_unknown_groups_and_can_be_edited(api: Clients) -> None:
    bad = await api.operator.post(
        "/api/v1/templates", json={"name": "t", "defaults": {"groups": ["nope"]}}
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "defaults", "groups"]
    template_id = await _template(api)
    url = f"/api/v1/templates/{template_id}"
    etag = (await api.viewer.get(url)).headers["etag"]
    updated = await api.operator.patch(
        url, json={"description": "web tier"}, headers={"If-Match": etag}
    )
    assert updated.status_code == 200
    stale = await api.operator.patch(url, json={"description": "x"}, headers={"If-Match": etag})
    assert stale.status_code == 412

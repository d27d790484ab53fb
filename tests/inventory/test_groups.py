from __future__ import annotations

from tests.conftest import Clients
from tests.inventory.helpers import create_server, names


async def test_static_groups_hold_the_servers_put_in_them(api: Clients) -> None:
    group = (await api.operator.post("/api/v1/groups", json={"name": "edge"})).json()
    assert group["dynamic"] is False
    await create_server(api.operator, "a", groups=["edge"])
    await create_server(api.operator, "b")
    members = (await api.viewer.get(f"/api/v1/groups/{group['id']}/servers")).json()
    assert [s["name"] for s in members["items"]] == ["a"]
    assert (await api.viewer.get(f"/api/v1/groups/{group['id']}")).json()["member_count"] == 1


async def test_dynamic_groups_are_always_current(api: Clients) -> None:
    group = (
        await api.operator.post(
            "/api/v1/groups", json={"name": "prod-eu", "query": "tag:env=prod region:eu-*"}
        )
    ).json()
    assert group["dynamic"] is True
    await create_server(api.operator, "a", tags={"env": "prod"}, region="eu-1")
    b = await create_server(api.operator, "b", tags={"env": "dev"}, region="eu-1")
    assert await names(api.viewer, q="group:prod-eu") == ["a"]
    await api.operator.patch(f"/api/v1/servers/{b['id']}", json={"tags": {"env": "prod"}})
    assert await names(api.viewer, q="group:prod-eu") == ["a", "b"]
    shown = (await api.viewer.get(f"/api/v1/servers/{b['id']}")).json()
    assert shown["groups"] == ["prod-eu"]
    assert (await api.viewer.get(f"/api/v1/groups/{group['id']}")).json()["member_count"] == 2


async def test_a_server_cannot_be_put_in_a_dynamic_group_by_hand(api: Clients) -> None:
    await api.operator.post("/api/v1/groups", json={"name": "auto", "query": "tag:x"})
    response = await api.operator.post("/api/v1/servers", json={"name": "a", "groups": ["auto"]})
    assert response.status_code == 422
    assert "dynamic" in response.json()["detail"][0]["msg"]
    missing = await api.operator.post("/api/v1/servers", json={"name": "a", "groups": ["nope"]})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "groups"]


async def test_dynamic_groups_may_nest_but_not_loop(api: Clients) -> None:
    await api.operator.post("/api/v1/groups", json={"name": "prod", "query": "tag:env=prod"})
    inner = (
        await api.operator.post(
            "/api/v1/groups", json={"name": "prod-web", "query": "group:prod tag:role=web"}
        )
    ).json()
    await create_server(api.operator, "w", tags={"env": "prod", "role": "web"})
    await create_server(api.operator, "d", tags={"env": "prod", "role": "db"})
    assert await names(api.viewer, q="group:prod-web") == ["w"]
    outer = (await api.viewer.get("/api/v1/groups")).json()
    prod = next(g for g in outer if g["name"] == "prod")
    loop = await api.operator.patch(
        f"/api/v1/groups/{prod['id']}", json={"query": "group:prod-web"}
    )
    assert loop.status_code == 422
    assert "contains itself" in loop.json()["detail"][0]["msg"]
    bad = await api.operator.patch(f"/api/v1/groups/{inner['id']}", json={"query": "colour:red"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "query"]


async def test_a_static_group_with_members_cannot_turn_dynamic(api: Clients) -> None:
    group = (await api.operator.post("/api/v1/groups", json={"name": "edge"})).json()
    await create_server(api.operator, "a", groups=["edge"])
    response = await api.operator.patch(f"/api/v1/groups/{group['id']}", json={"query": "tag:x"})
    assert response.status_code == 409


async def test_group_names_are_unique_and_deleting_a_group_keeps_its_servers(api: Clients) -> None:
    group = (await api.operator.post("/api/v1/groups", json={"name": "edge"})).json()
    assert (await api.operator.post("/api/v1/groups", json={"name": "edge"})).status_code == 409
    server = await create_server(api.operator, "a", groups=["edge"])
    assert (await api.operator.delete(f"/api/v1/groups/{group['id']}")).status_code == 204
    assert (await api.viewer.get(f"/api/v1/servers/{server['id']}")).json()["groups"] == []


async def test_a_group_whose_query_names_itself_is_refused_on_create_and_patch(
    api: Clients,
) -> None:
    created = await api.operator.post(
        "/api/v1/groups", json={"name": "loop", "query": "group:loop"}
    )
    assert created.status_code == 422, created.text
    assert created.json()["detail"][0]["loc"] == ["body", "query"]
    assert "contains itself" in created.json()["detail"][0]["msg"]
    assert (await api.viewer.get("/api/v1/groups")).json() == []
    # Through another group, on create too.
    other = await api.operator.post("/api/v1/groups", json={"name": "a", "query": "group:b"})
    assert other.status_code == 201, other.text
    cycle = await api.operator.post("/api/v1/groups", json={"name": "b", "query": "group:a"})
    assert cycle.status_code == 422, cycle.text
    assert "contains itself" in cycle.json()["detail"][0]["msg"]

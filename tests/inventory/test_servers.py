from __future__ import annotations

from tests.conftest import Clients
from tests.inventory.helpers import create_server


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


async def test_a_server_can_be_created_read_and_listed(api: Clients) -> None:
    created = await create_server(
        api.operator,
        "web-01",
        hostname="web-01.example.test",
        ip_address="2001:db8::1",
        tags={"env": "prod", "role": "web"},
        attributes={"rack": "r1", "u": 12},
    )
    assert created["lifecycle"] == "active"
    assert created["health"] == "unknown"
    assert created["tags"] == {"env": "prod", "role": "web"}
    assert created["ssh_port"] == 22

    response = await api.viewer.get(f"/api/v1/servers/{created['id']}")
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json()["attributes"] == {"rack": "r1", "u": 12}

    listing = (await api.viewer.get("/api/v1/servers")).json()
    assert listing["total"] == 1
    assert listing["next_cursor"] is None
    assert listing["items"][0]["name"] == "web-01"


async def test_a_duplicate_live_name_is_a_conflict_but_a_deleted_name_is_free(api: Clients) -> None:
    first = await create_server(api.operator, "db-01")
    duplicate = await api.operator.post("/api/v1/servers", json={"name": "db-01"})
    assert duplicate.status_code == 409
    assert "db-01" in duplicate.json()["detail"]

    assert (await api.operator.delete(f"/api/v1/servers/{first['id']}")).status_code == 204
    second = await create_server(api.operator, "db-01")
    assert second["id"] != first["id"]


async def test_bad_fields_are_refused_with_the_field_named(api: Clients) -> None:
    cases = {
        "ip_address": {"name": "x", "ip_address": "300.1.1.1"},
        "hostname": {"name": "x", "hostname": "-bad-.example"},
        "ssh_port": {"name": "x", "ssh_port": 70000},
        "name": {"name": "bad\x00name"},
        "tags": {"name": "x", "tags": {"bad key!": "v"}},
        "attributes": {"name": "x", "attributes": {"deep": nested(20)}},
    }
    for field, body in cases.items():
        response = await api.operator.post("/api/v1/servers", json=body)
        assert response.status_code == 422, (field, response.text)
        locs = [entry["loc"] for entry in response.json()["detail"]]
        assert any(field in loc for loc in locs), (field, locs)
    assert (await api.viewer.get("/api/v1/servers")).json()["total"] == 0


async def test_health_cannot_be_set_through_the_api(api: Clients) -> None:
    server = await create_server(api.operator, "app-01")
    response = await api.operator.patch(
        f"/api/v1/servers/{server['id']}", json={"health": "healthy"}
    )
    assert response.status_code == 422
    assert "health is read-only" in response.text
    created = await api.operator.post("/api/v1/servers", json={"name": "app-02", "health": "down"})
    assert created.status_code == 422


async def test_patch_changes_only_what_is_sent_and_is_audited(api: Clients) -> None:
    server = await create_server(api.operator, "app-01", region="eu-1", tags={"env": "dev"})
    response = await api.operator.patch(
        f"/api/v1/servers/{server['id']}", json={"region": "eu-2", "tags": {"env": "prod"}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == "eu-2"
    assert body["tags"] == {"env": "prod"}
    assert body["name"] == "app-01"
    assert response.headers["etag"] == '"2"'

    history = (await api.viewer.get(f"/api/v1/servers/{server['id']}/history")).json()
    actions = [r["action"] for r in history["items"]]
    assert actions == ["server.update", "server.create"]
    update = history["items"][0]
    assert update["actor_username"] == "operator"
    assert update["token_name"] == "operator-token"
    assert update["source_ip"] == "127.0.0.1"
    assert update["changes"] == {
        "before": {"region": "eu-1", "tags": {"env": "dev"}},
        "after": {"region": "eu-2", "tags": {"env": "prod"}},
    }


async def test_a_stale_if_match_gets_412_and_changes_nothing(api: Clients) -> None:
    server = await create_server(api.operator, "app-01")
    url = f"/api/v1/servers/{server['id']}"
    etag = (await api.viewer.get(url)).headers["etag"]
    assert (
        await api.operator.patch(url, json={"os": "debian"}, headers={"If-Match": etag})
    ).status_code == 200
    stale = await api.operator.patch(url, json={"os": "ubuntu"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert (await api.viewer.get(url)).json()["os"] == "debian"
    fresh = (await api.viewer.get(url)).headers["etag"]
    put = await api.operator.put(url, json={"name": "app-01"}, headers={"If-Match": fresh})
    assert put.status_code == 200
    assert put.json()["os"] is None  # PUT resets what it leaves out


async def test_null_for_a_required_field_in_patch_is_refused(api: Clients) -> None:
    server = await create_server(api.operator, "app-01")
    response = await api.operator.patch(f"/api/v1/servers/{server['id']}", json={"name": None})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "name"


async def test_lifecycle_moves_only_along_allowed_transitions(api: Clients) -> None:
    server = await create_server(api.operator, "new-01", lifecycle="planned")
    url = f"/api/v1/servers/{server['id']}"
    refused = await api.operator.patch(url, json={"lifecycle": "active"})
    assert refused.status_code == 409
    assert "allowed from planned: decommissioned, failed, provisioning" in refused.json()["detail"]
    for step in (
        "provisioning",
        "active",
        "maintenance",
        "active",
        "decommissioning",
        "decommissioned",
    ):
        response = await api.operator.patch(url, json={"lifecycle": step})
        assert response.status_code == 200, response.text
    final = await api.operator.patch(url, json={"lifecycle": "active"})
    assert final.status_code == 409
    assert "none (it is final)" in final.json()["detail"]

    history = (await api.viewer.get(f"{url}/history", params={"limit": 100})).json()["items"]
    moves = [
        (r["changes"]["before"]["lifecycle"], r["changes"]["after"]["lifecycle"])
        for r in history
        if r["action"] == "server.update"
    ]
    assert moves[0] == ("decommissioning", "decommissioned")
    assert len(moves) == 6


async def test_delete_hides_restore_brings_back_and_purge_is_for_admins(api: Clients) -> None:
    server = await create_server(api.operator, "old-01")
    url = f"/api/v1/servers/{server['id']}"
    assert (await api.operator.delete(url)).status_code == 204
    assert (await api.viewer.get("/api/v1/servers")).json()["total"] == 0
    hidden = (await api.viewer.get("/api/v1/servers", params={"include_deleted": "true"})).json()
    assert hidden["items"][0]["deleted_at"] is not None

    restored = await api.operator.post(f"{url}/restore")
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    assert (await api.viewer.get("/api/v1/servers")).json()["total"] == 1

    assert (await api.operator.delete(url, params={"purge": "true"})).status_code == 403
    assert (await api.admin.delete(url, params={"purge": "true"})).status_code == 204
    assert (await api.viewer.get(url)).status_code == 404
    purge_records = (
        await api.viewer.get("/api/v1/audit", params={"action": "server.purge"})
    ).json()
    assert purge_records["total"] == 1


async def test_restore_is_refused_when_the_name_was_taken_meanwhile(api: Clients) -> None:
    old = await create_server(api.operator, "edge-01")
    await api.operator.delete(f"/api/v1/servers/{old['id']}")
    await create_server(api.operator, "edge-01")
    response = await api.operator.post(f"/api/v1/servers/{old['id']}/restore")
    assert response.status_code == 409
    assert "edge-01" in response.json()["detail"]


async def test_a_deleted_server_cannot_be_patched(api: Clients) -> None:
    server = await create_server(api.operator, "gone-01")
    await api.operator.delete(f"/api/v1/servers/{server['id']}")
    response = await api.operator.patch(f"/api/v1/servers/{server['id']}", json={"os": "x"})
    assert response.status_code == 404
    assert "restore" in response.json()["detail"]


async def test_an_unknown_server_is_404(api: Clients) -> None:
    response = await api.viewer.get("/api/v1/servers/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert (await api.viewer.get("/api/v1/servers/not-a-uuid")).status_code == 422

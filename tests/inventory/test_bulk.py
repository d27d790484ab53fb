from __future__ import annotations

from typing import Any

from tests.conftest import Clients
from tests.inventory.helpers import create_server, names


async def _bulk(api: Clients, **body: Any) -> Any:
    response = await api.operator.post("/api/v1/servers/bulk", json=body)
    return response


async def test_add_tags_by_query_changes_only_what_differs_and_shares_one_request_id(
    api: Clients,
) -> None:
    for n in range(6):
        await create_server(api.operator, f"web-{n}", tags={"wave": "1"} if n == 0 else {})
    await create_server(api.operator, "db-0")
    response = await _bulk(api, q="web-*", action="add_tags", params={"tags": {"wave": "1"}})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["matched"], result["changed"]) == (6, 5)
    assert sorted(await names(api.viewer, q="tag:wave=1")) == [f"web-{n}" for n in range(6)]
    records = (
        await api.viewer.get("/api/v1/audit", params={"request_id": result["request_id"]})
    ).json()
    assert records["total"] == 6  # five server records and the summary
    assert {r["action"] for r in records["items"]} == {"server.update", "server.bulk.add_tags"}


async def test_set_lifecycle_is_all_or_nothing(api: Clients) -> None:
    a = await create_server(api.operator, "a", lifecycle="active")
    b = await create_server(api.operator, "b", lifecycle="planned")
    response = await _bulk(
        api, ids=[a["id"], b["id"]], action="set_lifecycle", params={"lifecycle": "maintenance"}
    )
    assert response.status_code == 409
    assert "nothing changed" in response.json()["detail"]
    assert await names(api.viewer, q="lifecycle:maintenance") == []
    ok = await _bulk(
        api, ids=[a["id"]], action="set_lifecycle", params={"lifecycle": "maintenance"}
    )
    assert ok.json()["changed"] == 1
    history = (await api.viewer.get(f"/api/v1/servers/{a['id']}/history")).json()["items"]
    assert history[0]["changes"] == {
        "before": {"lifecycle": "active"},
        "after": {"lifecycle": "maintenance"},
    }


async def test_remove_tags_groups_update_delete_and_restore(api: Clients) -> None:
    await api.operator.post("/api/v1/groups", json={"name": "edge"})
    for n in range(3):
        await create_server(api.operator, f"s{n}", tags={"tmp": "x", "keep": "y"})
    assert (await _bulk(api, q="s*", action="remove_tags", params={"keys": ["tmp"]})).json()[
        "changed"
    ] == 3
    assert await names(api.viewer, q="tag:tmp") == []
    assert await names(api.viewer, q="tag:keep") == ["s0", "s1", "s2"]
    assert (await _bulk(api, q="s*", action="add_group", params={"group": "edge"})).json()[
        "changed"
    ] == 3
    assert (await _bulk(api, q="s0", action="remove_group", params={"group": "edge"})).json()[
        "changed"
    ] == 1
    assert await names(api.viewer, q="group:edge") == ["s1", "s2"]
    updated = await _bulk(
        api, q="s*", action="update", params={"region": "eu-9", "owner": "team-a"}
    )
    assert updated.json()["changed"] == 3
    assert await names(api.viewer, q="region:eu-9") == ["s0", "s1", "s2"]
    assert (await _bulk(api, q="s*", action="delete")).json()["changed"] == 3
    assert await names(api.viewer) == []
    assert (await _bulk(api, q="s*", action="restore")).json()["changed"] == 3
    assert await names(api.viewer) == ["s0", "s1", "s2"]


async def test_bad_bulk_requests_are_422_and_change_nothing(api: Clients) -> None:
    await create_server(api.operator, "a")
    both = await _bulk(api, q="a", ids=[], action="delete")
    assert both.status_code == 422
    bad_params = await _bulk(api, q="a", action="add_tags", params={"tags": {"bad key": "v"}})
    assert bad_params.status_code == 422
    assert bad_params.json()["detail"][0]["loc"][:3] == ["body", "params", "tags"]
    null_port = await _bulk(api, q="a", action="update", params={"ssh_port": None})
    assert null_port.status_code == 422
    assert null_port.json()["detail"][0]["loc"] == ["body", "params", "ssh_port"]
    unknown = await _bulk(api, ids=["00000000-0000-0000-0000-000000000001"], action="delete")
    assert unknown.status_code == 422
    dynamic = await api.operator.post("/api/v1/groups", json={"name": "dyn", "query": "tag:x"})
    assert dynamic.status_code == 201
    refused = await _bulk(api, q="a", action="add_group", params={"group": "dyn"})
    assert refused.status_code == 422
    assert await names(api.viewer) == ["a"]


async def test_a_query_matching_more_than_the_limit_is_refused(api: Clients, app: Any) -> None:
    app.state.runtime.settings.bulk_max_servers = 2
    for n in range(3):
        await create_server(api.operator, f"n{n}")
    response = await _bulk(api, q="n*", action="add_tags", params={"tags": {"a": "b"}})
    assert response.status_code == 422
    assert "more than 2" in response.json()["detail"][0]["msg"]
    assert await names(api.viewer, q="tag:a") == []


async def test_restore_in_bulk_refuses_when_a_name_was_taken(api: Clients) -> None:
    old = await create_server(api.operator, "x")
    await _bulk(api, ids=[old["id"]], action="delete")
    await create_server(api.operator, "x")
    response = await _bulk(api, ids=[old["id"]], action="restore")
    assert response.status_code == 409

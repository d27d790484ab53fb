"""List totals are cached under the inventory generation: a repeat is served
from the cache, and any change that can move a server in or out of a filter
makes the next total exact again."""

from __future__ import annotations

from typing import Any

from tests.conftest import Clients
from tests.inventory.helpers import create_server


async def _total(api: Clients, **params: Any) -> int:
    response = await api.viewer.get("/api/v1/servers", params=params)
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def test_a_repeated_total_comes_from_the_cache(api: Clients, app: Any) -> None:
    await create_server(api.operator, "a", tags={"env": "prod"})
    counts = app.state.runtime.counts
    assert await _total(api, q="tag:env=prod") == 1
    hits = counts.hits
    assert await _total(api, q="tag:env=prod") == 1
    assert counts.hits == hits + 1


async def test_every_kind_of_change_refreshes_the_total(api: Clients) -> None:
    group = (await api.operator.post("/api/v1/groups", json={"name": "edge"})).json()
    a = await create_server(api.operator, "a", tags={"env": "prod"})
    assert await _total(api, q="tag:env=prod") == 1
    assert await _total(api, q="group:edge") == 0

    await create_server(api.operator, "b", tags={"env": "prod"})
    assert await _total(api, q="tag:env=prod") == 2

    await api.operator.post(
        "/api/v1/servers/bulk",
        json={"q": "a", "action": "remove_tags", "params": {"keys": ["env"]}},
    )
    assert await _total(api, q="tag:env=prod") == 1

    await api.operator.patch(f"/api/v1/servers/{a['id']}", json={"groups": ["edge"]})
    assert await _total(api, q="group:edge") == 1

    await api.operator.delete(f"/api/v1/servers/{a['id']}")
    assert await _total(api, q="group:edge") == 0

    await api.operator.post(f"/api/v1/servers/{a['id']}/restore")
    await api.operator.delete(f"/api/v1/groups/{group['id']}")
    assert await _total(api, q="group:edge") == 0

    await api.operator.post("/api/v1/groups", json={"name": "prod", "query": "tag:env=prod"})
    assert await _total(api, q="group:prod") == 1
    prod = next(g for g in (await api.viewer.get("/api/v1/groups")).json() if g["name"] == "prod")
    await api.operator.patch(f"/api/v1/groups/{prod['id']}", json={"query": "name:*"})
    assert await _total(api, q="group:prod") == 2

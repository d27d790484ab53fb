from __future__ import annotations

from tests.conftest import Clients
from tests.inventory.helpers import create_server


async def _chain(api: Clients) -> dict[str, str]:
    """app1, app2 → db → storage; web → app1."""
    ids = {
        n: (await create_server(api.operator, n))["id"]
        for n in ("storage", "db", "app1", "app2", "web")
    }
    for down, up, kind in (
        ("db", "storage", "storage"),
        ("app1", "db", "database"),
        ("app2", "db", "database"),
        ("web", "app1", "network"),
    ):
        response = await api.operator.post(
            f"/api/v1/servers/{ids[down]}/dependencies", json={"server_id": ids[up], "kind": kind}
        )
        assert response.status_code == 201, response.text
    return ids


async def test_upstream_and_everything_downstream(api: Clients) -> None:
    ids = await _chain(api)
    upstream = (await api.viewer.get(f"/api/v1/servers/{ids['app1']}/dependencies")).json()
    assert [(d["server"]["name"], d["kind"]) for d in upstream] == [("db", "database")]
    dependents = (await api.viewer.get(f"/api/v1/servers/{ids['storage']}/dependents")).json()
    assert sorted((d["server"]["name"], d["depth"]) for d in dependents) == [
        ("app1", 2),
        ("app2", 2),
        ("db", 1),
        ("web", 3),
    ]
    # Each row says when its edge was made, on this list as on the other.
    assert all(d["created_at"] for d in dependents), dependents
    assert all(d["created_at"] for d in upstream), upstream
    shallow = (
        await api.viewer.get(f"/api/v1/servers/{ids['storage']}/dependents", params={"depth": 2})
    ).json()
    assert sorted(d["server"]["name"] for d in shallow) == ["app1", "app2", "db"]


async def test_cycles_self_edges_and_duplicates_are_refused(api: Clients) -> None:
    ids = await _chain(api)
    cycle = await api.operator.post(
        f"/api/v1/servers/{ids['storage']}/dependencies", json={"server_id": ids["web"]}
    )
    assert cycle.status_code == 409
    assert "cycle" in cycle.json()["detail"]
    itself = await api.operator.post(
        f"/api/v1/servers/{ids['db']}/dependencies", json={"server_id": ids["db"]}
    )
    assert itself.status_code == 409
    again = await api.operator.post(
        f"/api/v1/servers/{ids['db']}/dependencies", json={"server_id": ids["storage"]}
    )
    assert again.status_code == 409


async def test_removing_an_edge_and_deleted_servers_drop_out(api: Clients) -> None:
    ids = await _chain(api)
    assert (
        await api.operator.delete(f"/api/v1/servers/{ids['web']}/dependencies/{ids['app1']}")
    ).status_code == 204
    await api.operator.delete(f"/api/v1/servers/{ids['app2']}")
    dependents = (await api.viewer.get(f"/api/v1/servers/{ids['db']}/dependents")).json()
    assert [d["server"]["name"] for d in dependents] == ["app1"]
    history = (await api.viewer.get(f"/api/v1/servers/{ids['web']}/history")).json()["items"]
    assert history[0]["action"] == "server.dependency.remove"

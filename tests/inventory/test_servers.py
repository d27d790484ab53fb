from __future__ import annotations

from tests.conftest import Clients
from tests.inventory.helpers import create_server


async def test_a_server_can_be_created_read_and_listed(api: Clients) -> None:
    created = await create_server(
        api.operator, "web-01", hostname="web-01.example.test", ip_address="2001:db8::1",
        tags={"env": "prod", "role": "web"}, attributes={"rack": "r1", "u": 12},
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

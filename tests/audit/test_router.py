from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Clients
from tests.inventory.helpers import create_server


async def test_the_audit_log_filters_by_object_actor_action_and_time(api: Clients) -> None:
    a = await create_server(api.operator, "a")
    await create_server(api.admin, "b")
    await api.operator.patch(f"/api/v1/servers/{a['id']}", json={"os": "debian"})

    def count(**params: Any) -> Any:
        return api.viewer.get("/api/v1/audit", params=params)

    assert (await count(object_type="server", object_id=a["id"])).json()["total"] == 2
    assert (await count(actor="admin")).json()["total"] == 1
    assert (await count(action="server.update")).json()["total"] == 1
    assert (await count(action="server.*")).json()["total"] == 3
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await count(since=future)).json()["total"] == 0
    assert (await count(until=future)).json()["total"] == 3
    page = (await count(limit=2)).json()
    rest = (await count(limit=2, cursor=page["next_cursor"])).json()
    assert len(page["items"]) + len(rest["items"]) == 3
    assert rest["next_cursor"] is None
    # A crafted cursor is a 422 naming it, also one too big for an id (it
    # reached PostgreSQL as an integer out of range).
    for crafted in ("abc", "9" * 40, "-1"):
        refused = await count(cursor=crafted)
        assert refused.status_code == 422 and "cursor" in refused.text, crafted


async def test_no_route_changes_the_audit_trail_and_the_database_refuses_too(
    api: Clients, db: Any
) -> None:
    await create_server(api.operator, "a")
    for method in ("PATCH", "PUT", "DELETE", "POST"):
        response = await api.admin.request(method, "/api/v1/audit", json={})
        assert response.status_code == 405
    for statement in ("UPDATE audit_records SET action = 'forged'", "DELETE FROM audit_records"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.unit_of_work() as session:
                await session.execute(text(statement))
    assert (await api.viewer.get("/api/v1/audit")).json()["items"][0]["action"] == "server.create"


async def test_a_client_chosen_request_id_is_echoed_and_ties_the_records(api: Clients) -> None:
    response = await api.operator.post(
        "/api/v1/servers", json={"name": "a"}, headers={"X-Request-ID": "deploy-42"}
    )
    assert response.headers["x-request-id"] == "deploy-42"
    records = (await api.viewer.get("/api/v1/audit", params={"request_id": "deploy-42"})).json()
    assert [r["action"] for r in records["items"]] == ["server.create"]
    unsafe = await api.viewer.get("/api/v1/servers", headers={"X-Request-ID": "bad id\twith tab"})
    assert unsafe.headers["x-request-id"] != "bad id\twith tab"

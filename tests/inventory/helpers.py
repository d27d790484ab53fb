from __future__ import annotations

from typing import Any

import httpx


async def create_server(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/servers", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def names(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/api/v1/servers", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return [s["name"] for s in response.json()["items"]]

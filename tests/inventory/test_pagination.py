from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.conftest import Clients
from tests.inventory.helpers import create_server


async def _all_pages(client: httpx.AsyncClient, **params: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/servers", params=query)).json()
        seen.extend(s["name"] for s in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_pages_cover_every_server_once_in_order(api: Clients) -> None:
    for n in range(23):
        await create_server(api.operator, f"srv-{n:02}", region=None if n % 3 == 0 else f"r{n % 4}")
    assert await _all_pages(api.viewer, limit=5) == [f"srv-{n:02}" for n in range(23)]
    by_region = await _all_pages(api.viewer, limit=4, sort="-region,name")
    assert len(by_region) == 23
    assert len(set(by_region)) == 23
    page = (await api.viewer.get("/api/v1/servers", params={"limit": 5})).json()
    assert page["total"] == 23


async def test_the_cursor_stays_correct_while_rows_are_inserted(api: Clients) -> None:
    for n in range(10):
        await create_server(api.operator, f"m-{n}")
    first = (await api.viewer.get("/api/v1/servers", params={"limit": 4})).json()
    assert [s["name"] for s in first["items"]] == ["m-0", "m-1", "m-2", "m-3"]
    # Rows that sort before the cursor and after it appear meanwhile.
    await create_server(api.operator, "a-new")
    await create_server(api.operator, "m-35")
    rest = (
        await api.viewer.get(
            "/api/v1/servers", params={"limit": 100, "cursor": first["next_cursor"]}
        )
    ).json()
    assert [s["name"] for s in rest["items"]] == ["m-35", "m-4", "m-5", "m-6", "m-7", "m-8", "m-9"]


async def test_sort_by_newest_first_uses_created_at(api: Clients) -> None:
    for name in ("first", "second", "third"):
        await create_server(api.operator, name)
    assert await _all_pages(api.viewer, sort="-created_at", limit=2) == ["third", "second", "first"]


async def test_bad_sort_and_cursor_are_422(api: Clients) -> None:
    bad_sort = await api.viewer.get("/api/v1/servers", params={"sort": "password"})
    assert bad_sort.status_code == 422
    assert bad_sort.json()["detail"][0]["loc"] == ["query", "sort"]
    bad_cursor = await api.viewer.get("/api/v1/servers", params={"cursor": "garbage"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"][0]["loc"] == ["query", "cursor"]
    # Nested deep enough to exhaust the JSON parser's stack, and far too long.
    for crafted in ("[" * 1400, '{"k":' * 5000):
        cursor = base64.urlsafe_b64encode(crafted.encode()).decode()
        for path in ("/api/v1/servers", "/api/v1/monitors", "/api/v1/audit"):
            deep = await api.viewer.get(path, params={"cursor": cursor})
            assert deep.status_code == 422, (path, deep.text)
            assert deep.json()["detail"][0]["loc"] == ["query", "cursor"]
    await create_server(api.operator, "a")
    await create_server(api.operator, "b")
    cursor = (await api.viewer.get("/api/v1/servers", params={"limit": 1})).json()["next_cursor"]
    mixed = await api.viewer.get("/api/v1/servers", params={"cursor": cursor, "sort": "-name"})
    assert mixed.status_code == 422

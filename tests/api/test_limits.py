"""Request bodies have a ceiling, checked before anything parses them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.conftest import Clients

LIMIT = 2 * 1024 * 1024  # the default INFRAWATCH_MAX_BODY_BYTES


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    yield b'{"username": "admin", "password": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b'"}'


async def test_a_declared_oversized_body_is_413_before_it_is_read(api: Clients) -> None:
    body = b'{"username":"admin","password":"' + b"x" * (LIMIT + 1) + b'"}'
    response = await api.anon.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert "INFRAWATCH_MAX_BODY_BYTES" in response.json()["detail"]
    assert response.headers["connection"] == "close"


async def test_a_chunked_body_is_counted_as_it_arrives(api: Clients) -> None:
    response = await api.anon.post(
        "/api/v1/auth/login",
        content=_chunks(LIMIT + 1),
        headers={"Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    # Under the limit, the same route answers as usual.
    small = await api.anon.post(
        "/api/v1/auth/login",
        content=_chunks(16, size=8),
        headers={"Content-Type": "application/json"},
    )
    assert small.status_code == 401, small.text


async def test_a_server_import_may_be_larger_than_an_api_body(api: Clients) -> None:
    rows = "".join(f"imp-{i:06d},planned\n" for i in range(LIMIT // 18 + 1000))
    csv = ("name,lifecycle\n" + rows).encode()
    assert len(csv) > LIMIT
    response = await api.operator.post(
        "/api/v1/servers/import?dry_run=true",
        content=csv,
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code != 413, response.text

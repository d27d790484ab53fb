"""Walks every route in the OpenAPI document, so a new route is covered the
day it is added."""

from __future__ import annotations

import re
import uuid
from typing import Any

from infrawatch.api.router import PUBLIC_API_PATHS
from tests.conftest import Clients, make_user

MUTATING = {"post", "put", "patch", "delete"}
# Mutations every signed-in user may make about themselves.
SELF_SERVICE = {
    ("post", f"/api/v1/auth/{path}") for path in ("logout", "totp", "totp/confirm", "totp/disable")
}
ADMIN_ONLY_PREFIXES = ("/api/v1/users", "/api/v1/tokens")


def _routes(app: Any) -> list[tuple[str, str]]:
    routes = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/api/v1") and path not in PUBLIC_API_PATHS:
            routes.extend((method, path) for method in operations)
    assert len(routes) > 30
    return routes


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


async def test_every_api_route_refuses_anonymous_callers(api: Clients, app: Any) -> None:
    for method, path in _routes(app):
        response = await api.anon.request(method.upper(), _concrete(path), json={})
        assert response.status_code == 401, (method, path, response.text)
        bad = await api.client("iw_not-a-real-token").request(
            method.upper(), _concrete(path), json={}
        )
        assert bad.status_code == 401, (method, path)


async def test_viewers_and_read_only_tokens_cannot_mutate_anything(
    api: Clients, app: Any, db: Any
) -> None:
    read_only = api.client(await make_user(db, "admin", "admin", read_only=True))
    for method, path in _routes(app):
        if method not in MUTATING or (method, path) in SELF_SERVICE:
            continue
        response = await api.viewer.request(method.upper(), _concrete(path), json={})
        assert response.status_code == 403, (method, path, response.text)
        response = await read_only.request(method.upper(), _concrete(path), json={})
        assert response.status_code == 403, (method, path, response.text)


async def test_operators_cannot_touch_users_or_tokens(api: Clients, app: Any) -> None:
    for method, path in _routes(app):
        if path.startswith(ADMIN_ONLY_PREFIXES):
            response = await api.operator.request(method.upper(), _concrete(path), json={})
            assert response.status_code == 403, (method, path)


async def test_viewers_can_read(api: Clients) -> None:
    for path in (
        "/api/v1/servers",
        "/api/v1/groups",
        "/api/v1/templates",
        "/api/v1/audit",
        "/api/v1/auth/me",
    ):
        assert (await api.viewer.get(path)).status_code == 200, path


# Only admins manage credentials; operators may run a connection test.
CREDENTIAL_PREFIXES = ("/api/v1/ssh-keys", "/api/v1/secrets")
OPERATOR_CREDENTIAL_ACTIONS = {("post", "/api/v1/ssh-keys/{key_id}/test")}


async def test_operators_cannot_manage_credentials(api: Clients, app: Any) -> None:
    checked = 0
    for method, path in _routes(app):
        if not path.startswith(CREDENTIAL_PREFIXES) or method not in MUTATING:
            continue
        if (method, path) in OPERATOR_CREDENTIAL_ACTIONS:
            continue
        response = await api.operator.request(method.upper(), _concrete(path), json={})
        assert response.status_code == 403, (method, path, response.text)
        checked += 1
    assert checked >= 8
    assert (await api.viewer.get("/api/v1/secrets")).status_code == 403

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from infrawatch.accounts.models import LoginFailure
from tests.conftest import PASSWORD, Clients


async def _login(api: Clients, username: str, password: str) -> httpx.Response:
    return await api.anon.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


async def test_login_gives_a_session_that_works_and_logout_ends_it(api: Clients) -> None:
    response = await _login(api, "operator", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["role"] == "operator"
    cookie = response.headers.get_list("set-cookie")
    assert any(
        "infrawatch_session=" in c and "HttpOnly" in c and "SameSite=lax" in c for c in cookie
    )

    session = api.client(body["token"])
    assert (await session.get("/api/v1/auth/me")).json()["username"] == "operator"
    assert (await session.post("/api/v1/auth/logout")).status_code == 204
    assert (await session.get("/api/v1/auth/me")).status_code == 401

    audit = (await api.admin.get("/api/v1/audit", params={"action": "auth.*"})).json()["items"]
    assert [r["action"] for r in audit] == ["auth.logout", "auth.login"]


async def test_cookie_sessions_need_the_csrf_header_to_change_anything(api: Clients) -> None:
    login = await _login(api, "operator", PASSWORD)
    csrf = login.json()["csrf_token"]
    browser = api.client(None)
    browser.cookies.set("infrawatch_session", login.json()["token"])
    assert (await browser.get("/api/v1/servers")).status_code == 200
    refused = await browser.post("/api/v1/servers", json={"name": "x"})
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    accepted = await browser.post(
        "/api/v1/servers", json={"name": "x"}, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 201


async def test_a_failed_login_is_a_401_and_is_audited(api: Clients) -> None:
    response = await _login(api, "operator", "wrong password")
    assert response.status_code == 401
    assert (await _login(api, "nobody", "whatever")).status_code == 401
    failures = (await api.admin.get("/api/v1/audit", params={"action": "auth.login_failed"})).json()
    assert failures["total"] == 2
    assert {r["actor_username"] for r in failures["items"]} == {"operator", "nobody"}
    assert all(r["source_ip"] == "127.0.0.1" for r in failures["items"])


async def test_repeated_failures_for_a_user_get_429_even_with_the_right_password(
    api: Clients,
) -> None:
    for _ in range(5):
        assert (await _login(api, "viewer", "nope")).status_code == 401
    blocked = await _login(api, "viewer", PASSWORD)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "too many failed logins for this user from this address" in blocked.json()["detail"]
    assert (await _login(api, "operator", PASSWORD)).status_code == 200


async def _login_from(api: Clients, ip: str, username: str, password: str) -> httpx.Response:
    client = api.client(None, source_ip=ip)
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


async def test_strangers_failing_cannot_lock_the_admin_out(api: Clients, app: Any) -> None:
    """The attack: anonymous failures for `admin` from anywhere. The admin,
    from an address that has not failed, still logs in."""
    settings = app.state.runtime.settings
    settings.login_max_failures_per_user = 12
    for n in range(12):
        response = await _login_from(api, f"198.51.100.{n // 4}", "admin", "guess")
        assert response.status_code in (401, 429)
    assert (await _login_from(api, "203.0.113.7", "admin", PASSWORD)).status_code == 200
    # Past the per-user ceiling, an address that has failed for this user waits.
    ceiling = await _login_from(api, "198.51.100.0", "admin", PASSWORD)
    assert ceiling.status_code == 429 and "for this user;" in ceiling.json()["detail"]


async def test_waits_double_with_each_failure_past_the_free_tries(api: Clients, db: Any) -> None:
    for _ in range(5):
        await _login(api, "viewer", "nope")
    first = await _login(api, "viewer", PASSWORD)
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    # Age the failures past their waits; each further failure doubles the next.
    for extra, expected in ((1, "2"), (2, "4"), (3, "8")):
        async with db.unit_of_work() as session:
            for failure in await session.scalars(select(LoginFailure)):
                failure.at -= timedelta(seconds=2**extra)
        assert (await _login(api, "viewer", "nope")).status_code == 401
        waited = await _login(api, "viewer", PASSWORD)
        assert waited.status_code == 429 and waited.headers["retry-after"] == expected, waited


async def test_an_admin_unlocks_a_user(api: Clients) -> None:
    for _ in range(5):
        await _login(api, "viewer", "nope")
    assert (await _login(api, "viewer", PASSWORD)).status_code == 429
    users = (await api.admin.get("/api/v1/users")).json()
    viewer = next(u for u in users if u["username"] == "viewer")
    assert (await api.operator.post(f"/api/v1/users/{viewer['id']}/unlock")).status_code == 403
    unlocked = await api.admin.post(f"/api/v1/users/{viewer['id']}/unlock")
    assert unlocked.status_code == 200 and unlocked.json()["forgotten"] == 5
    assert (await _login(api, "viewer", PASSWORD)).status_code == 200


async def test_repeated_failures_from_one_address_get_429(api: Clients, app: Any) -> None:
    app.state.runtime.settings.login_max_failures_per_ip = 3
    for n in range(3):
        await _login(api, f"guess{n}", "nope")
    blocked = await _login(api, "operator", PASSWORD)
    assert blocked.status_code == 429
    assert "this address" in blocked.json()["detail"]


async def test_tokens_are_shown_once_stored_hashed_and_revocable(api: Clients) -> None:
    created = await api.admin.post(
        "/api/v1/tokens", json={"username": "operator", "name": "ci", "read_only": True}
    )
    assert created.status_code == 201
    secret = created.json()["token"]
    listed = (await api.admin.get("/api/v1/tokens")).json()
    ci = next(t for t in listed if t["name"] == "ci")
    assert "token" not in ci
    assert ci["prefix"] == secret[:10]

    client = api.client(secret)
    assert (await client.get("/api/v1/servers")).status_code == 200
    assert (await client.post("/api/v1/servers", json={"name": "x"})).status_code == 403
    listed = (await api.admin.get("/api/v1/tokens")).json()
    assert next(t for t in listed if t["name"] == "ci")["last_used_at"] is not None

    assert (await api.admin.delete(f"/api/v1/tokens/{ci['id']}")).status_code == 200
    assert (await client.get("/api/v1/servers")).status_code == 401
    actions = [
        r["action"]
        for r in (await api.admin.get("/api/v1/audit", params={"object_type": "token"})).json()[
            "items"
        ]
    ]
    assert actions == ["token.revoke", "token.create"]


async def test_an_expired_token_is_refused(api: Clients, db: Any) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from infrawatch.accounts.models import ApiToken
    from infrawatch.core.clock import utcnow

    created = (
        await api.admin.post("/api/v1/tokens", json={"username": "viewer", "expires_in_days": 1})
    ).json()
    async with db.unit_of_work() as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.name == created["name"], ApiToken.prefix == created["prefix"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await api.client(created["token"]).get("/api/v1/servers")
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_admins_manage_users_and_the_last_admin_stays(api: Clients) -> None:
    created = await api.admin.post(
        "/api/v1/users", json={"username": "alice", "role": "viewer", "password": "s3cret-pass"}
    )
    assert created.status_code == 201
    assert "password" not in created.json()
    assert (
        await api.admin.post(
            "/api/v1/users", json={"username": "alice", "role": "viewer", "password": "s3cret-pass"}
        )
    ).status_code == 409
    short = await api.admin.post(
        "/api/v1/users", json={"username": "bob", "role": "viewer", "password": "short"}
    )
    assert short.status_code == 422
    assert short.json()["detail"][0]["loc"] == ["body", "password"]

    alice = created.json()["id"]
    promoted = await api.admin.patch(f"/api/v1/users/{alice}", json={"role": "operator"})
    assert promoted.json()["role"] == "operator"
    assert (await _login(api, "alice", "s3cret-pass")).status_code == 200

    admin_id = (await api.admin.get("/api/v1/auth/me")).json()["id"]
    last = await api.admin.patch(f"/api/v1/users/{admin_id}", json={"role": "viewer"})
    assert last.status_code == 409
    deactivated = await api.admin.patch(f"/api/v1/users/{alice}", json={"is_active": False})
    assert deactivated.json()["is_active"] is False
    assert (await _login(api, "alice", "s3cret-pass")).status_code == 401
    update_record = (await api.admin.get("/api/v1/audit", params={"action": "user.update"})).json()[
        "items"
    ][0]
    assert "hash" not in str(update_record)

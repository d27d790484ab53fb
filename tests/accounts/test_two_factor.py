"""Two-factor logins on both engines: enrolment with a QR code, codes that
work once, recovery codes, a role that requires it, an admin's reset, and
the secret and codes never stored in clear."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyotp
from sqlalchemy import text

from infrawatch.core.db import Database
from tests.conftest import PASSWORD, Clients
from tests.live import data_env, infrawatch_async


async def _login(api: Clients, username: str, otp: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"username": username, "password": PASSWORD}
    if otp is not None:
        body["otp"] = otp
    return await api.anon.post("/api/v1/auth/login", json=body)


async def _session(api: Clients, username: str, otp: str | None = None) -> httpx.AsyncClient:
    response = await _login(api, username, otp)
    assert response.status_code == 200, response.text
    return api.client(response.json()["token"])


async def _enrol(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    started = await client.post("/api/v1/auth/totp")
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/InfraWatch:")
    assert body["qr_svg"].startswith("<svg")
    secret = body["secret"]
    confirmed = await client.post(
        "/api/v1/auth/totp/confirm", json={"code": pyotp.TOTP(secret).now()}
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


def _code_at(secret: str, steps_ahead: int) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


async def _actions(api: Clients, action: str) -> int:
    found = (await api.admin.get("/api/v1/audit", params={"action": action})).json()
    return int(found["total"])


async def test_after_enrolment_a_login_needs_a_code_that_works_once(api: Clients) -> None:
    secret, _ = await _enrol(await _session(api, "operator"))
    without = await _login(api, "operator")
    assert without.status_code == 401 and "otp" in without.json()["detail"]
    # The next step's code counts (a phone a little ahead), once.
    code = _code_at(secret, 1)
    assert (await _login(api, "operator", code)).status_code == 200
    replayed = await _login(api, "operator", code)
    assert replayed.status_code == 401 and "two-factor" in replayed.json()["detail"]
    me = (await (await _session(api, "viewer")).get("/api/v1/auth/me")).json()
    assert me["totp_enabled_at"] is None
    assert await _actions(api, "auth.totp_enrolment_started") == 1
    assert await _actions(api, "auth.totp_enrolled") == 1
    # A missing code is not a failure (the password was right); a used one is.
    assert await _actions(api, "auth.login_failed") == 1


async def test_a_recovery_code_logs_in_once_and_is_audited(api: Clients) -> None:
    _, codes = await _enrol(await _session(api, "operator"))
    assert (await _login(api, "operator", codes[3].upper())).status_code == 200
    again = await _login(api, "operator", codes[3])
    assert again.status_code == 401
    assert await _actions(api, "auth.recovery_code_used") == 1


async def test_a_wrong_confirmation_code_names_the_field_and_enables_nothing(
    api: Clients,
) -> None:
    client = await _session(api, "operator")
    assert (await client.post("/api/v1/auth/totp")).status_code == 200
    wrong = await client.post("/api/v1/auth/totp/confirm", json={"code": "000000"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "code"]
    assert (await client.get("/api/v1/auth/me")).json()["totp_enabled_at"] is None
    assert (await _login(api, "operator")).status_code == 200
    no_start = await (await _session(api, "viewer")).post(
        "/api/v1/auth/totp/confirm", json={"code": "123456"}
    )
    assert no_start.status_code == 409


async def test_a_role_that_requires_it_gets_a_session_that_may_only_enrol(
    api: Clients,
) -> None:
    settings = api._app.state.runtime.settings  # type: ignore[attr-defined]
    settings.totp_required_roles = "operator,admin"
    try:
        response = await _login(api, "operator")
        assert response.status_code == 200 and response.json()["must_enrol_totp"] is True
        client = api.client(response.json()["token"])
        refused = await client.get("/api/v1/servers")
        assert refused.status_code == 403 and "enrol" in refused.json()["detail"]
        secret, _ = await _enrol(client)
        assert (await client.get("/api/v1/servers")).status_code == 200
        off = await client.post("/api/v1/auth/totp/disable", json={"code": _code_at(secret, 1)})
        assert off.status_code == 409 and "required" in off.json()["detail"]
        viewer = await _login(api, "viewer")
        assert viewer.json()["must_enrol_totp"] is False
    finally:
        settings.totp_required_roles = ""


async def test_an_admin_resets_a_users_two_factor_and_a_user_turns_their_own_off(
    api: Clients,
) -> None:
    await _enrol(await _session(api, "operator"))
    users = (await api.admin.get("/api/v1/users")).json()
    operator = next(u for u in users if u["username"] == "operator")
    assert operator["totp_enabled_at"] is not None
    path = f"/api/v1/users/{operator['id']}/totp/reset"
    assert (await api.operator.post(path)).status_code == 403
    reset = await api.admin.post(path)
    assert reset.status_code == 200 and reset.json()["totp_enabled_at"] is None
    assert await _actions(api, "user.totp_reset") == 1
    client = await _session(api, "operator")  # the password alone again

    _, codes = await _enrol(client)
    wrong = await client.post("/api/v1/auth/totp/disable", json={"code": "999999"})
    assert wrong.status_code == 422
    off = await client.post("/api/v1/auth/totp/disable", json={"code": codes[0]})
    assert off.status_code == 204
    assert (await _login(api, "operator")).status_code == 200
    assert await _actions(api, "auth.totp_disabled") == 1


async def test_the_secret_and_recovery_codes_are_not_stored_in_clear(
    api: Clients, db: Database
) -> None:
    secret, codes = await _enrol(await _session(api, "operator"))
    async with db.unit_of_work(write=False) as session:
        stored = (
            await session.execute(
                text("SELECT totp_secret_encrypted FROM users WHERE username = 'operator'")
            )
        ).scalar_one()
        hashes = (await session.execute(text("SELECT code_hash FROM recovery_codes"))).scalars()
        kept = " ".join(hashes)
    assert secret not in stored and len(stored) > len(secret)
    assert all(code not in kept and code.replace("-", "") not in kept for code in codes)


async def test_the_console_sends_a_session_that_must_enrol_to_the_enrolment_page(
    api: Clients,
) -> None:
    settings = api._app.state.runtime.settings  # type: ignore[attr-defined]
    settings.totp_required_roles = "operator"
    browser = api.client(None)
    try:
        login = await browser.post(
            "/api/v1/auth/login", json={"username": "operator", "password": PASSWORD, "otp": None}
        )
        assert login.status_code == 200 and login.json()["must_enrol_totp"] is True
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        moved = await browser.get("/servers", headers={"accept": "text/html"})
        assert moved.status_code == 303 and moved.headers["location"] == "/account/two-factor"
        page = await browser.get("/account/two-factor")
        assert page.status_code == 200 and "Set up" in page.text
        # No live stream for it: /ws refuses such a session, and the page
        # would be sent to /login and back for ever.
        assert "data-live data-since" not in page.text
        assert (await browser.post("/api/v1/auth/totp", headers=csrf)).status_code == 200
        page = await browser.get("/account/two-factor")
        assert "<svg" in page.text and "data-totp-secret" in page.text
        secret = page.text.split("data-totp-secret>")[1].split("<")[0]
        confirmed = await browser.post(
            "/api/v1/auth/totp/confirm", json={"code": pyotp.TOTP(secret).now()}, headers=csrf
        )
        assert confirmed.status_code == 200, confirmed.text
        assert (await browser.get("/servers")).status_code == 200
        page = await browser.get("/account/two-factor")
        assert "recovery code(s) left" in page.text and "data-live data-since" in page.text
    finally:
        settings.totp_required_roles = ""


async def test_the_command_line_resets_two_factor_for_a_locked_out_admin(
    api: Clients, cli_env: dict[str, str]
) -> None:
    await _enrol(await _session(api, "admin"))
    assert (await _login(api, "admin")).status_code == 401
    env = data_env(cli_env, api)
    reset = await infrawatch_async(env, "users", "reset-2fa", "admin")
    assert reset.returncode == 0 and "two-factor reset for admin" in reset.stdout
    assert (await _login(api, "admin")).status_code == 200
    unknown = await infrawatch_async(env, "users", "reset-2fa", "nobody")
    assert unknown.returncode != 0 and "nobody" in unknown.stderr

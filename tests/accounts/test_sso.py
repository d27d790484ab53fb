"""Single sign-on through a real OpenID Connect provider on loopback, on
both engines: the code flow with PKCE, users made on first sign-on with the
role their groups give, and every way a sign-on must fail (a forged state,
a reused code, another nonce, another key, no mapped group, a local user's
name)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from tests.accounts.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_KEY,
    Provider,
    running_provider,
)
from tests.conftest import Clients


@pytest.fixture
async def provider(api: Clients) -> AsyncIterator[Provider]:
    settings = api._app.state.runtime.settings  # type: ignore[attr-defined]
    async with running_provider() as running:
        settings.oidc_issuer = running.base
        settings.oidc_client_id = CLIENT_ID
        settings.oidc_client_secret = SecretStr(CLIENT_SECRET)
        settings.oidc_role_map = "ops=operator,infra-admins=admin"
        try:
            yield running
        finally:
            settings.oidc_issuer = ""
            settings.oidc_client_id = ""


async def _to_provider(browser: httpx.AsyncClient, next_path: str = "/servers") -> str:
    started = await browser.get("/auth/oidc/login", params={"next": next_path})
    assert started.status_code == 303, started.text
    return started.headers["location"]


async def _back_from_provider(authorize_url: str) -> str:
    async with httpx.AsyncClient() as outside:
        answered = await outside.get(authorize_url)
    assert answered.status_code == 302, answered.text
    back = urlsplit(answered.headers["location"])
    return f"{back.path}?{back.query}"


async def _sign_on(api: Clients) -> tuple[httpx.AsyncClient, httpx.Response]:
    browser = api.client(None)
    callback = await _back_from_provider(await _to_provider(browser))
    return browser, await browser.get(callback)


async def _audit(api: Clients, action: str) -> list[dict[str, object]]:
    found = await api.admin.get("/api/v1/audit", params={"action": action})
    return list(found.json()["items"])


async def test_a_first_sign_on_makes_the_user_with_the_role_their_groups_give(
    api: Clients, provider: Provider
) -> None:
    authorize = await _to_provider(api.client(None))
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    assert query["redirect_uri"] == ["http://testserver/auth/oidc/callback"]

    browser, done = await _sign_on(api)
    assert done.status_code == 303 and done.headers["location"] == "/servers"
    me = (await browser.get("/api/v1/auth/me")).json()
    assert me["username"] == "alice" and me["role"] == "operator"
    assert (await browser.get("/servers")).status_code == 200
    assert provider.token_requests[-1]["code_verifier"]
    [login] = await _audit(api, "auth.sso_login")
    assert login["changes"]["after"] == {
        "issuer": provider.base,
        "groups": ["ops"],
        "role": "operator",
    }
    assert len(await _audit(api, "user.create")) == 1

    provider.user["groups"] = ["ops", "infra-admins"]
    browser, done = await _sign_on(api)
    assert (await browser.get("/api/v1/auth/me")).json()["role"] == "admin"
    users = [u for u in (await api.admin.get("/api/v1/users")).json() if u["username"] == "alice"]
    assert len(users) == 1
    # An SSO user has no password: the login form cannot be used for them.
    refused = await api.anon.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "anything at all"}
    )
    assert refused.status_code == 401


async def test_a_forged_state_a_missing_cookie_and_a_reused_code_are_refused(
    api: Clients, provider: Provider
) -> None:
    browser = api.client(None)
    callback = await _back_from_provider(await _to_provider(browser))
    forged = callback.replace("state=", "state=x")
    refused = await browser.get(forged)
    assert refused.status_code == 400 and "state" in refused.json()["detail"]
    stranger = await api.client(None).get(callback)
    assert stranger.status_code == 400 and "cookie" in stranger.json()["detail"]
    assert (await browser.get(callback)).status_code == 303
    again = await browser.get(callback)  # the cookie is gone, and so is the code
    assert again.status_code == 400
    assert len(await _audit(api, "auth.sso_failed")) == 3


@pytest.mark.parametrize("trouble", ["nonce", "key", "audience"])
async def test_an_id_token_not_made_for_this_login_is_refused(
    api: Clients, provider: Provider, trouble: str
) -> None:
    if trouble == "nonce":
        provider.nonce_override = "someone-elses-nonce"
    elif trouble == "key":
        provider.sign_with = OTHER_KEY
    else:
        provider.audience_override = "another-client"
    _, done = await _sign_on(api)
    assert done.status_code == 400, done.text
    assert "ID token" in done.json()["detail"]
    assert await _audit(api, "auth.sso_login") == []


async def test_no_mapped_group_and_a_local_users_name_are_refused(
    api: Clients, provider: Provider
) -> None:
    provider.user["groups"] = ["finance"]
    _, done = await _sign_on(api)
    assert done.status_code == 403 and "INFRAWATCH_OIDC_ROLE_MAP" in done.json()["detail"]
    provider.user.update(groups=["ops"], preferred_username="operator", sub="user-0002")
    _, done = await _sign_on(api)
    assert done.status_code == 409 and "not made by single sign-on" in done.json()["detail"]
    [failure, _] = await _audit(api, "auth.sso_failed")
    assert "operator" in str(failure["changes"])


async def test_the_login_page_offers_sign_on_only_when_it_is_set_up(
    api: Clients, provider: Provider
) -> None:
    page = await api.anon.get("/login")
    assert "Log in with single sign-on" in page.text and "/auth/oidc/login" in page.text
    settings = api._app.state.runtime.settings  # type: ignore[attr-defined]
    settings.oidc_issuer = ""
    assert "/auth/oidc/login" not in (await api.anon.get("/login")).text
    assert (await api.anon.get("/auth/oidc/login")).status_code == 404


async def test_groups_sent_only_by_the_userinfo_endpoint_give_the_role(
    api: Clients, provider: Provider
) -> None:
    provider.user["groups"] = ["infra-admins"]
    provider.userinfo_only = {"groups"}
    browser, done = await _sign_on(api)
    assert done.status_code == 303, done.text
    assert (await browser.get("/api/v1/auth/me")).json()["role"] == "admin"
    assert provider.userinfo_requests == 1
    # With everything in the ID token, the userinfo endpoint is not asked.
    provider.userinfo_only = set()
    await _sign_on(api)
    assert provider.userinfo_requests == 1


async def test_a_userinfo_answer_about_another_user_is_refused(
    api: Clients, provider: Provider
) -> None:
    provider.user["groups"] = ["infra-admins"]
    provider.userinfo_only = {"groups"}
    provider.userinfo_sub_override = "someone-else"
    _, done = await _sign_on(api)
    assert done.status_code == 400, done.text
    assert "another user" in done.json()["detail"]
    assert await _audit(api, "auth.sso_login") == []
    [failure] = await _audit(api, "auth.sso_failed")
    assert "another user" in str(failure["changes"])

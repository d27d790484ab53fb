"""A small OpenID Connect provider on loopback for the sign-on tests:
discovery, an authorization endpoint that signs in whoever the test says,
a token endpoint that checks the client, the redirect and PKCE (S256) and
gives each code once, a userinfo endpoint for its access tokens, and its
signing keys. Knobs let a test make it
misbehave (another nonce, another key, another audience)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.monitoring.servers import serve_http

CLIENT_ID = "infrawatch-test"
CLIENT_SECRET = "provider-client-secret-for-tests"
SIGNING_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)


@dataclass
class Provider:
    base: str = ""
    user: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    nonce_override: str | None = None
    audience_override: str | None = None
    sign_with: RSAKey = field(default_factory=lambda: SIGNING_KEY)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    # Claims sent only by the userinfo endpoint, not in the ID token (as
    # Keycloak does with groups unless a mapper says otherwise).
    userinfo_only: set[str] = field(default_factory=set)
    userinfo_sub_override: str | None = None
    access_tokens: set[str] = field(default_factory=set)
    userinfo_requests: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/userinfo", self._userinfo)
        return app

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.base,
                "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token",
                "jwks_uri": f"{self.base}/jwks",
                "userinfo_endpoint": f"{self.base}/userinfo",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.json_response({"error": "unauthorized_client"}, status=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.json_response({"error": "invalid_request", "why": "PKCE"}, status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "challenge": q["code_challenge"],
            "nonce": q.get("nonce"),
            "redirect_uri": q["redirect_uri"],
            "scope": q.get("scope", ""),
        }
        query = urlencode({"code": code, "state": q.get("state", "")})
        raise web.HTTPFound(f"{q['redirect_uri']}?{query}")

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=401)
        issued = self.codes.pop(form.get("code", ""), None)  # a code works once
        if issued is None or form.get("redirect_uri") != issued["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != issued["challenge"]:
            return web.json_response({"error": "invalid_grant", "why": "PKCE"}, status=400)
        now = int(time.time())
        claims = {
            "iss": self.base,
            "aud": self.audience_override or CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": self.nonce_override or issued["nonce"],
            **{k: v for k, v in self.user.items() if k not in self.userinfo_only},
        }
        access_token = "at-" + secrets.token_hex(8)
        self.access_tokens.add(access_token)
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.sign_with)
        return web.json_response(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "id_token": id_token,
            }
        )

    async def _userinfo(self, request: web.Request) -> web.Response:
        self.userinfo_requests += 1
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.access_tokens:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(
            {**self.user, "sub": self.userinfo_sub_override or self.user["sub"]}
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [SIGNING_KEY.as_dict(private=False)]})


@contextlib.asynccontextmanager
async def running_provider() -> AsyncIterator[Provider]:
    provider = Provider(
        user={
            "sub": "user-0001",
            "preferred_username": "alice",
            "email": "alice@example.test",
            "groups": ["ops"],
        }
    )
    async with serve_http(provider.app()) as (_, port):
        provider.base = f"http://127.0.0.1:{port}"
        yield provider

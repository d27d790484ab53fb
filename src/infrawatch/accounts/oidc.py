"""Single sign-on with OpenID Connect: the authorization code flow with
PKCE (S256), a state and a nonce kept in an encrypted cookie, the ID token's
signature checked against the provider's published keys and its issuer,
audience, expiry and nonce against what we asked for (joserfc, authlib's
JOSE library; authlib's PKCE helpers). The groups claim decides the role;
when the ID token leaves it (or the username) out, the userinfo endpoint is
asked, as many providers send groups only there."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from infrawatch.core.config import Settings
from infrawatch.core.context import Role
from infrawatch.core.crypto import Keyring, SecretRef
from infrawatch.core.errors import AppError, Forbidden, UpstreamFailed

STATE_REF = SecretRef("oidc", "login_state", "browser")
STATE_TTL_SECONDS = 600  # a login left at the provider's page longer starts again
CACHE_SECONDS = 3600
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
TIMEOUT = aiohttp.ClientTimeout(total=10)


class SsoFailed(AppError):
    status_code = 400


@dataclass(frozen=True)
class ProviderInfo:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None


@dataclass(frozen=True)
class Identity:
    issuer: str
    subject: str  # issuer and `sub`: unique across providers
    username: str
    groups: list[str]


_cache: dict[str, tuple[float, Any]] = {}


def enabled(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


async def _get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.get(url, headers=headers) as response,
        ):
            if response.status != 200:
                raise UpstreamFailed(f"the identity provider answered {response.status} for {url}")
            if response.content_type == "application/jwt":
                raise UpstreamFailed(
                    f"{url} answers with a signed JWT, which is not read here; "
                    "have the provider answer JSON or put the claims in the ID token"
                )
            return await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise UpstreamFailed(f"the identity provider cannot be reached ({exc})") from None


async def _cached(key: str, url: str, fresh: bool = False) -> Any:
    found = _cache.get(key)
    if found is not None and not fresh and time.monotonic() - found[0] < CACHE_SECONDS:
        return found[1]
    value = await _get_json(url)
    _cache[key] = (time.monotonic(), value)
    return value


async def provider(settings: Settings) -> ProviderInfo:
    issuer = settings.oidc_issuer.rstrip("/")
    meta = await _cached(f"meta {issuer}", f"{issuer}/.well-known/openid-configuration")
    if not isinstance(meta, dict) or meta.get("issuer", "").rstrip("/") != issuer:
        raise UpstreamFailed("the identity provider's discovery document names another issuer")
    try:
        return ProviderInfo(
            meta["issuer"],
            meta["authorization_endpoint"],
            meta["token_endpoint"],
            meta["jwks_uri"],
            meta.get("userinfo_endpoint") or None,
        )
    except KeyError as exc:
        raise UpstreamFailed(f"the discovery document lacks {exc}") from None


def _client_secret(settings: Settings) -> str:
    secret = settings.oidc_client_secret
    return secret.get_secret_value() if secret else ""


async def begin(
    settings: Settings, keyring: Keyring, redirect_uri: str, next_path: str
) -> tuple[str, str]:
    """(the provider's authorization URL, the encrypted state for a cookie)."""
    info = await provider(settings)
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings.oidc_client_id,
            "redirect_uri": redirect_uri,
            "scope": settings.oidc_scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    remembered = {"state": state, "nonce": nonce, "verifier": verifier, "next": next_path}
    remembered["at"] = str(int(time.time()))
    cookie = keyring.encrypt(json.dumps(remembered), STATE_REF)
    separator = "&" if "?" in info.authorization_endpoint else "?"
    return f"{info.authorization_endpoint}{separator}{query}", cookie


def _remembered(keyring: Keyring, cookie: str | None) -> dict[str, str]:
    if not cookie:
        raise SsoFailed("this sign-on was not started here (no state cookie); start again")
    try:
        remembered = json.loads(keyring.decrypt(cookie, STATE_REF))
    except Exception:
        raise SsoFailed("the sign-on state cookie is not ours; start again") from None
    if time.time() - int(remembered.get("at", 0)) > STATE_TTL_SECONDS:
        raise SsoFailed("this sign-on took too long; start again")
    return {str(k): str(v) for k, v in remembered.items()}


async def finish(
    settings: Settings,
    keyring: Keyring,
    cookie: str | None,
    params: dict[str, str],
    redirect_uri: str,
) -> tuple[Identity, str]:
    """The identity the provider vouches for, and the path to go on to."""
    remembered = _remembered(keyring, cookie)
    if "error" in params:
        why = params.get("error_description") or params["error"]
        raise SsoFailed(f"the identity provider refused: {why[:200]}")
    if params.get("state") != remembered["state"]:
        raise SsoFailed("the sign-on state does not match (another tab, or a forged link)")
    code = params.get("code")
    if not code:
        raise SsoFailed("the identity provider sent no code")
    info = await provider(settings)
    tokens = await _exchange(settings, info, code, redirect_uri, remembered["verifier"])
    claims = await _verified_claims(settings, info, tokens, remembered["nonce"])
    claims = await _with_userinfo(settings, info, tokens, claims)
    return _identity(settings, info, claims), remembered["next"]


async def _exchange(
    settings: Settings, info: ProviderInfo, code: str, redirect_uri: str, verifier: str
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": settings.oidc_client_id,
    }
    auth = aiohttp.BasicAuth(settings.oidc_client_id, _client_secret(settings))
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.post(info.token_endpoint, data=form, auth=auth) as response,
        ):
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise UpstreamFailed(f"the identity provider's token endpoint failed ({exc})") from None
    if response.status != 200 or not isinstance(body, dict) or "id_token" not in body:
        why = body.get("error_description") or body.get("error") if isinstance(body, dict) else ""
        raise SsoFailed(f"the identity provider gave no ID token ({why or response.status})")
    return body


async def _verified_claims(
    settings: Settings, info: ProviderInfo, tokens: dict[str, Any], nonce: str
) -> dict[str, Any]:
    id_token = str(tokens["id_token"])
    for fresh in (False, True):  # a key not known yet: the provider rotated; read again
        keys = KeySet.import_key_set(await _cached(f"jwks {info.jwks_uri}", info.jwks_uri, fresh))
        try:
            token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
            break
        except (JoseError, ValueError) as exc:
            if fresh:
                raise SsoFailed(f"the ID token's signature does not verify ({exc})") from None
    registry = jwt.JWTClaimsRegistry(
        leeway=60,
        iss={"essential": True, "value": info.issuer},
        aud={"essential": True, "value": settings.oidc_client_id},
        sub={"essential": True},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(token.claims)
    except JoseError as exc:
        raise SsoFailed(f"the ID token is not for this login ({exc})") from None
    return dict(token.claims)


async def _with_userinfo(
    settings: Settings, info: ProviderInfo, tokens: dict[str, Any], claims: dict[str, Any]
) -> dict[str, Any]:
    """The ID token's claims, with the groups and the username it left out
    read from the userinfo endpoint (a provider may be set up to send them
    only there). The answer must be about the same `sub` (OpenID Connect
    Core 5.3.2); where both speak, the signed token wins."""
    wanted = (settings.oidc_groups_claim, settings.oidc_username_claim)
    access_token = tokens.get("access_token")
    if all(name in claims for name in wanted) or not info.userinfo_endpoint or not access_token:
        return claims
    found = await _get_json(info.userinfo_endpoint, {"Authorization": f"Bearer {access_token}"})
    if not isinstance(found, dict) or found.get("sub") != claims["sub"]:
        raise SsoFailed("the userinfo endpoint answered for another user than the ID token's")
    return {**found, **claims}


def _identity(settings: Settings, info: ProviderInfo, claims: dict[str, Any]) -> Identity:
    raw_groups = claims.get(settings.oidc_groups_claim, [])
    groups = [raw_groups] if isinstance(raw_groups, str) else [str(g) for g in raw_groups or []]
    username = claims.get(settings.oidc_username_claim) or claims.get("email") or claims["sub"]
    return Identity(
        issuer=info.issuer,
        subject=f"{info.issuer}|{claims['sub']}"[:255],
        username=str(username)[:64],
        groups=groups,
    )


def role_for(settings: Settings, groups: list[str]) -> Role:
    """The highest role any of the groups maps to (INFRAWATCH_OIDC_ROLE_MAP,
    `group=role,…`), else the default role; none at all is refused."""
    mapped: list[Role] = []
    for pair in settings.oidc_role_map.split(","):
        group, _, role = pair.partition("=")
        if group.strip() in groups and role.strip() in Role.__members__:
            mapped.append(Role(role.strip()))
    if settings.oidc_default_role in Role.__members__:
        mapped.append(Role(settings.oidc_default_role))
    if not mapped:
        raise Forbidden(
            "none of your groups gives a role here; ask an admin to map one "
            "(INFRAWATCH_OIDC_ROLE_MAP)"
        )
    return max(mapped, key=lambda r: r.rank)

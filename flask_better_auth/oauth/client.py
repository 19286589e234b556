"""The back channel: discovery, token, refresh, userinfo and JWKS requests, with httpx.

Requests carry Better Auth's fields in Better Auth's order (providers are picky), time out,
never follow redirects, and turn every failure into :class:`ProviderError` (logged, never
with a secret): the callback answers it with ``?error=``, never a 500.
"""

from __future__ import annotations

import base64
import hmac
import logging
import threading
import time
from typing import Any
from urllib.parse import quote

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .providers import Provider

logger = logging.getLogger("flask_better_auth.oauth")

#: Seconds a request to a provider may take (connect, read, write, pool).
TIMEOUT = 10.0
#: The id_token signatures accepted.
ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]
#: Discovery documents and JWKS are kept this long (seconds).
CACHE_TTL = 3600.0
#: A JWKS that verifies no key of a token is fetched again, if older than this (seconds).
JWKS_REFETCH_AFTER = 60.0

_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()


class ProviderError(Exception):
    """The provider could not be reached or answered something unusable."""


def _request(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    headers = {"accept": "application/json", **kwargs.pop("headers", {})}
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            response = client.request(method, url, headers=headers, **kwargs)
    except httpx.HTTPError as exc:
        logger.error("OAuth provider unreachable: %s %s (%s)", method, url, type(exc).__name__)
        raise ProviderError("unreachable") from None
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code >= 300 or not isinstance(data, dict):
        error = data.get("error") if isinstance(data, dict) else None
        logger.error(
            "OAuth provider answered %s to %s %s (error=%s)",
            response.status_code,
            method,
            url,
            error,
        )
        raise ProviderError(str(error or response.status_code))
    return data


def cached_json(url: str) -> dict[str, Any]:
    """A discovery document or JWKS, fetched once per :data:`CACHE_TTL`."""
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(url)
    if hit is not None and now - hit[0] < CACHE_TTL:
        return hit[1]
    data = _request("GET", url)
    with _cache_lock:
        _cache[url] = (now, data)
    return data


def _client_auth(provider: Provider, form: list[tuple[str, str]]) -> dict[str, str]:
    """Client authentication: ``client_id``/``client_secret`` last in the body (post), or an
    ``Authorization: Basic`` header (each part form-encoded first, as RFC 6749 §2.3.1 says)."""
    secret = provider.secret()
    if provider.authentication == "basic" and secret:
        pair = f"{quote(provider.client_id, safe='')}:{quote(secret, safe='')}"
        return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
    form.append(("client_id", provider.client_id))
    if secret:
        form.append(("client_secret", secret))
    return {}


def exchange_code(
    provider: Provider, code: str, code_verifier: str | None, redirect_uri: str
) -> dict[str, Any]:
    """The authorization-code grant: the provider's token response."""
    form = [("grant_type", "authorization_code"), ("code", code)]
    if code_verifier:
        form.append(("code_verifier", code_verifier))
    form.append(("redirect_uri", redirect_uri))
    headers = {**dict(provider.headers), **_client_auth(provider, form)}
    return _request("POST", provider.token_url, data=dict(form), headers=headers)


def refresh(provider: Provider, refresh_token: str) -> dict[str, Any]:
    """The refresh-token grant."""
    form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
    headers = {**dict(provider.headers), **_client_auth(provider, form)}
    return _request("POST", provider.token_url, data=dict(form), headers=headers)


def userinfo(provider: Provider, access_token: str) -> dict[str, Any]:
    """The userinfo endpoint's answer (``{}`` when the provider has none)."""
    if not provider.userinfo_url:
        return {}
    return _request(
        provider.userinfo_method,
        provider.userinfo_url,
        headers={**dict(provider.headers), "authorization": f"Bearer {access_token}"},
    )


def github_primary_email(provider: Provider, access_token: str) -> tuple[str | None, bool]:
    """GitHub's primary address and whether it is verified (``GET /user/emails``)."""
    url = provider.userinfo_url.rstrip("/") + "/emails" if provider.userinfo_url else ""
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client:
            response = client.get(url, headers={"authorization": f"Bearer {access_token}"})
        emails = response.json()
    except (httpx.HTTPError, ValueError):
        return None, False
    if not isinstance(emails, list):
        return None, False
    for entry in emails:
        if isinstance(entry, dict) and entry.get("primary") and isinstance(entry.get("email"), str):
            return entry["email"], entry.get("verified") is True
    return None, False


class InvalidIdToken(Exception):
    """The id_token's signature, issuer, audience, expiry or nonce is wrong."""


def _keys(jwks_uri: str) -> KeySet:
    try:
        return KeySet.import_key_set(cached_json(jwks_uri))  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError):
        logger.error("OAuth provider's JWKS at %s is malformed", jwks_uri)
        raise ProviderError("malformed JWKS") from None


def _decode(token: str, jwks_uri: str) -> jwt.Token:
    """Decode against the provider's keys; once more with a fresh JWKS when no cached key
    verifies it (the provider rotated its keys)."""
    keys = _keys(jwks_uri)
    try:
        return jwt.decode(token, keys, algorithms=ALGORITHMS)
    except (JoseError, ValueError):
        # At most one refetch a minute: forged tokens must not make us hammer the provider.
        with _cache_lock:
            hit = _cache.get(jwks_uri)
            if hit is None or time.monotonic() - hit[0] < JWKS_REFETCH_AFTER:
                raise
            del _cache[jwks_uri]
        return jwt.decode(token, _keys(jwks_uri), algorithms=ALGORITHMS)


def verify_id_token(provider: Provider, token: str, nonce: str | None) -> dict[str, Any]:
    """Verify ``token`` against the provider's JWKS, issuer, audience (the client id), expiry
    and, when given, ``nonce``; its claims.

    :raises InvalidIdToken: any check fails.
    :raises ProviderError: the JWKS cannot be fetched.
    """
    if not provider.jwks_uri:
        raise InvalidIdToken("no jwks_uri")
    try:
        decoded = _decode(token, provider.jwks_uri)
        options: dict[str, Any] = {
            "aud": {"essential": True, "value": provider.client_id},
            "exp": {"essential": True},
        }
        if provider.issuer:
            issuers = [provider.issuer, *provider.issuer_aliases]
            options["iss"] = {"essential": True, "values": issuers}
        jwt.JWTClaimsRegistry(leeway=60, **options).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise InvalidIdToken(type(exc).__name__) from None
    claims = dict(decoded.claims)
    if nonce is not None and not hmac.compare_digest(
        str(claims.get("nonce", "")).encode(), nonce.encode()
    ):
        raise InvalidIdToken("nonce")
    return claims


__all__ = [
    "CACHE_TTL",
    "TIMEOUT",
    "InvalidIdToken",
    "ProviderError",
    "cached_json",
    "exchange_code",
    "github_primary_email",
    "refresh",
    "userinfo",
    "verify_id_token",
]

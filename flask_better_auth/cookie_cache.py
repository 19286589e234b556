"""Better Auth's cookie cache: the signed ``session_data`` cookie that answers without storage.

Two of Better Auth's strategies: ``compact`` (base64url JSON + HMAC-SHA256, the default) and
``jwt`` (HS256). A valid cache carries the session and user as the last storage read saw them,
for at most ``max_age``; values larger than a cookie can hold are split into ``<name>.0..N``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Request, Response

from .errors import AuthError
from .models import Session, User
from .tokens import sign_jwt, verify_jwt

logger = logging.getLogger("flask_better_auth")

#: The payload version Better Auth writes (``cookieCache.version`` unset).
VERSION = "1"
#: Better Auth's per-cookie ceiling (Safari keeps ~4093 bytes) and its chunk limit.
MAX_COOKIE_SIZE = 4050
MAX_CHUNKS = 100


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _js_json(value: Any) -> str:
    """``JSON.stringify``: compact, key order kept, non-ASCII as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _hmac(secret: str, message: str) -> str:
    return _b64url(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def encode(
    session: Mapping[str, Any],
    user: Mapping[str, Any],
    *,
    secret: str,
    strategy: str,
    max_age: int | None,
    now_ms: int | None = None,
) -> str:
    """The cookie value Better Auth's ``setCookieCache`` writes for ``session`` and ``user``.

    :param max_age: seconds the cache is valid; ``None`` (a "don't remember" session) gives
        Better Auth's fallbacks, 60 s (compact) or 300 s (jwt).
    """
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    data = {"session": dict(session), "user": dict(user), "updatedAt": now_ms, "version": VERSION}
    if strategy == "jwt":
        return sign_jwt(data, secret, max_age or 300)
    expires_at = now_ms + (max_age or 60) * 1000
    signature = _hmac(secret, _js_json({**data, "expiresAt": expires_at}))
    envelope = {"session": data, "expiresAt": expires_at, "signature": signature}
    return _b64url(_js_json(envelope).encode())


def decode(value: str, *, secrets: tuple[str, ...], strategy: str) -> dict[str, Any] | None:
    """The payload ``{session, user, updatedAt, version}`` of a valid, unexpired cache, or ``None``.

    Any of ``secrets`` verifies the signature (the current one and the fallbacks).
    """
    now_ms = time.time() * 1000
    if strategy == "jwt":
        try:
            payload: Any = verify_jwt(value, secrets)
        except AuthError:
            return None
    else:
        try:
            envelope = json.loads(_b64url_decode(value))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(envelope, dict):
            return None
        payload, expires_at, signature = (
            envelope.get("session"),
            envelope.get("expiresAt"),
            envelope.get("signature"),
        )
        if (
            not isinstance(payload, dict)
            or not isinstance(signature, str)
            or not isinstance(expires_at, (int, float))
            or isinstance(expires_at, bool)
        ):
            return None
        # Signed as JavaScript serialises {...session, expiresAt}: the parsed key order.
        message = _js_json({**payload, "expiresAt": expires_at})
        valid = False
        for secret in secrets:
            valid |= hmac.compare_digest(_hmac(secret, message), signature)
        if not valid or expires_at < now_ms:
            return None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("session"), dict)
        or not isinstance(payload.get("user"), dict)
    ):
        return None
    return payload


def read(request: Request, name: str) -> str | None:
    """The cache cookie's value: the cookie itself, or its ``.0``, ``.1``… chunks joined."""
    value = request.cookies.get(name)
    if value:
        return value
    chunks: list[tuple[int, str]] = []
    for cookie, chunk in request.cookies.items():
        index = cookie[len(name) + 1 :]
        if cookie.startswith(f"{name}.") and index.isdigit():
            chunks.append((int(index), chunk))
    return "".join(chunk for _, chunk in sorted(chunks)) or None


def present(request: Request, name: str) -> list[str]:
    """The names of the cache cookie and its chunks that came with the request."""
    return [
        cookie
        for cookie in request.cookies
        if cookie == name or (cookie.startswith(f"{name}.") and cookie[len(name) + 1 :].isdigit())
    ]


def cached_session(
    value: str, *, token: str, secrets: tuple[str, ...], strategy: str
) -> tuple[Session, User] | None:
    """The session and user of a cache made for ``token``, still valid; else ``None``."""
    payload = decode(value, secrets=secrets, strategy=strategy)
    if payload is None or payload.get("version", VERSION) != VERSION:
        return None
    try:
        session = Session.from_json(payload["session"])
        user = User.from_json(payload["user"])
    except (KeyError, TypeError, ValueError):
        return None
    if session.token != token or session.expires_at <= datetime.now(UTC):
        return None
    return session, user


def chunk(value: str, name: str, overhead: Callable[[str], int]) -> list[tuple[str, str]] | None:
    """``[(cookie name, value)]``: the value whole, or split as Better Auth splits it.

    :param overhead: the length of a serialised cookie of that name with an empty value.
    :returns: ``None`` when even 100 chunks cannot hold it (the cache is then skipped).
    """
    size = MAX_COOKIE_SIZE - overhead(f"{name}.{MAX_CHUNKS - 1}")
    count = math.ceil(len(value) / size) if size > 0 else MAX_CHUNKS + 1
    if count <= 1:
        return [(name, value)]
    if count > MAX_CHUNKS:
        logger.warning("the session is too large for the cookie cache: it is not cached")
        return None
    return [(f"{name}.{i}", value[i * size : (i + 1) * size]) for i in range(count)]


def write(
    response: Response,
    request: Request,
    serialize: Callable[..., str],
    *,
    name: str,
    value: str,
    max_age: int | None,
) -> None:
    """Set the cache cookie (or its chunks) and expire chunks of an older cache not rewritten.

    :param serialize: ``serialize(name, value, max_age=…)`` → a ``Set-Cookie`` value.
    """
    cookies = chunk(value, name, lambda n: len(serialize(n, "", max_age=max_age))) or []
    written = {cookie for cookie, _ in cookies}
    for stale in present(request, name):
        if stale not in written:
            response.headers.add("Set-Cookie", serialize(stale, "", max_age=0))
    for cookie, part in cookies:
        response.headers.add("Set-Cookie", serialize(cookie, part, max_age=max_age))


__all__ = [
    "VERSION",
    "cached_session",
    "decode",
    "encode",
    "present",
    "read",
    "write",
]

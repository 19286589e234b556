"""Cookie names, Better Auth's signed cookie values and ``Set-Cookie`` building."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from flask import Request, Response
from werkzeug.http import http_date

from .crypto import sign_value, unsign_value
from .settings import AuthSettings, CookieSettings

# encodeURIComponent leaves these unescaped, besides letters, digits and "-_.~".
_URI_COMPONENT_SAFE = "!*'()"


def encode_signed(secret: str, value: str) -> str:
    """The cookie value Better Auth writes: ``encodeURIComponent(value + "." + signature)``."""
    return quote(sign_value(secret, value), safe=_URI_COMPONENT_SAFE)


def read_signed_cookie(request: Request, name: str, settings: AuthSettings) -> str | None:
    """The verified value of a signed cookie, or ``None`` when absent or not signed by us."""
    raw = request.cookies.get(name)
    if not raw:
        return None
    return unsign_value(unquote(raw.strip('"')), settings.secrets)


def serialize(
    name: str,
    value: str,
    cookies: CookieSettings,
    *,
    expires: datetime | None = None,
    max_age: int | None = None,
) -> str:
    """One ``Set-Cookie`` value, attributes in Better Auth's order (``Max-Age`` … ``SameSite``)."""
    parts = [f"{name}={value}"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if cookies.domain:
        parts.append(f"Domain={cookies.domain}")
    parts.append(f"Path={cookies.path}")
    if expires is not None:
        parts.append(f"Expires={http_date(expires)}")
    if cookies.httponly:
        parts.append("HttpOnly")
    if cookies.secure:
        parts.append("Secure")
    parts.append(f"SameSite={cookies.samesite}")
    return "; ".join(parts)


def set_session_cookies(
    response: Response,
    settings: AuthSettings,
    token: str,
    expires_at: datetime,
    *,
    dont_remember: bool,
    clear_dont_remember: bool = False,
) -> None:
    """Write the session cookie (and the "don't remember" cookie) plus ``set-auth-token``.

    A remembered session's cookie carries ``Expires`` = the session's expiry (and ``Max-Age``
    unless disabled); a ``rememberMe: false`` session gets a browser-session cookie.
    """
    cookies = settings.cookies
    value = encode_signed(settings.secret, token)
    if dont_remember:
        response.headers.add("Set-Cookie", serialize(cookies.session_token, value, cookies))
        response.headers.add(
            "Set-Cookie",
            serialize(cookies.dont_remember, encode_signed(settings.secret, "true"), cookies),
        )
    else:
        # Rounded: a session created or extended just now gets Max-Age = expires_in exactly.
        remaining = round((expires_at - datetime.now(UTC)).total_seconds())
        response.headers.add(
            "Set-Cookie",
            serialize(
                cookies.session_token,
                value,
                cookies,
                expires=expires_at,
                max_age=max(remaining, 0) if cookies.max_age else None,
            ),
        )
        if clear_dont_remember:
            response.headers.add("Set-Cookie", _expired(cookies.dont_remember, cookies))
    if settings.bearer_enabled:
        response.headers["set-auth-token"] = sign_value(settings.secret, token)
        expose_header(response, "set-auth-token")


def clear_session_cookies(
    response: Response, settings: AuthSettings, *, extra: Iterable[str] = ()
) -> None:
    """Expire the session, session-data and "don't remember" cookies (in Better Auth's order).

    :param extra: more cookie names to expire after the session-data cookie (its chunks).
    """
    cookies = settings.cookies
    for name in (cookies.session_token, cookies.session_data, *extra, cookies.dont_remember):
        response.headers.add("Set-Cookie", _expired(name, cookies))


def _expired(name: str, cookies: CookieSettings) -> str:
    return serialize(name, "", cookies, max_age=0, expires=datetime(1970, 1, 1, tzinfo=UTC))


def expose_header(response: Response, header: str) -> None:
    """Add ``header`` to ``Access-Control-Expose-Headers`` without dropping what is there."""
    current = [
        h.strip() for h in response.headers.get("Access-Control-Expose-Headers", "").split(",")
    ]
    current = [h for h in current if h]
    if header.lower() not in (h.lower() for h in current):
        current.append(header)
    response.headers["Access-Control-Expose-Headers"] = ", ".join(current)

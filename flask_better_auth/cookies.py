"""Cookie names, Better Auth's signed cookie values and ``Set-Cookie`` building."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from flask import Request, Response
from werkzeug.http import http_date

from .config import ConfigError, ConfigReader, Keys
from .crypto import sign_value, unsign_value

if TYPE_CHECKING:
    from .settings import AuthSettings

#: The keys of the cookies' names and attributes (Better Auth's ``advanced`` cookie options).
KEYS = Keys(
    {
        "COOKIE_PREFIX": "better-auth",
        "COOKIE_NAMING": "seed",
        "SESSION_COOKIE_NAME": None,
        "SESSION_DATA_COOKIE_NAME": None,
        "DONT_REMEMBER_COOKIE_NAME": None,
        "COOKIE_SECURE": True,
        "COOKIE_SECURE_PREFIX": False,
        "COOKIE_HTTPONLY": True,
        "COOKIE_SAMESITE": "Lax",
        "COOKIE_DOMAIN": None,
        "COOKIE_PATH": "/",
        "COOKIE_MAX_AGE": True,
    },
    owner="cookies",
)

#: Each cookie's name after ``<BETTER_AUTH_COOKIE_PREFIX>.``, per ``BETTER_AUTH_COOKIE_NAMING``:
#: ``"seed"`` (this project's cookie document: hyphens) or ``"better-auth"`` (Better Auth JS's
#: names: underscores). ``multi_session`` is what follows the session cookie's full name (then
#: the token): Better Auth derives those names from the session cookie's.
COOKIE_NAMES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "seed": {
            "session_token": "session-token",
            "session_data": "session-data",
            "dont_remember": "dont-remember",
            "two_factor": "two-factor",
            "trust_device": "trust-device",
            "state": "state",
            "admin_session": "admin-session",
            "multi_session": "-multi-",
        },
        "better-auth": {
            "session_token": "session_token",
            "session_data": "session_data",
            "dont_remember": "dont_remember",
            "two_factor": "two_factor",
            "trust_device": "trust_device",
            "state": "state",
            "admin_session": "admin_session",
            "multi_session": "_multi-",
        },
    }
)
#: The logical cookies whose name a ``BETTER_AUTH_*_COOKIE_NAME`` key may set outright.
_EXPLICIT = {
    "session_token": "SESSION_COOKIE_NAME",
    "session_data": "SESSION_DATA_COOKIE_NAME",
    "dont_remember": "DONT_REMEMBER_COOKIE_NAME",
}
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}


@dataclass(frozen=True)
class CookieSettings:
    """Names and attributes of the cookies the extension (and its plugins) write."""

    session_token: str
    session_data: str
    dont_remember: str
    secure: bool
    httponly: bool
    samesite: str
    domain: str | None
    path: str
    max_age: bool
    #: Every logical cookie's full name (:meth:`name`).
    names: Mapping[str, str]

    def name(self, cookie: str, token: str | None = None) -> str:
        """The full name of a logical cookie: ``"session_token"``, ``"two_factor"``, ….

        Under ``BETTER_AUTH_COOKIE_NAMING``, with ``BETTER_AUTH_COOKIE_PREFIX`` and the
        ``__Secure-`` prefix applied. For ``"multi_session"``, the name of ``token``'s cookie
        (lower-cased, as Better Auth writes it), or without ``token`` the start all such names
        share.

        :raises KeyError: an unknown logical cookie.
        """
        if cookie == "multi_session":
            return self.names[cookie] + (token.lower() if token is not None else "")
        return self.names[cookie]


def cookie_settings(cfg: ConfigReader) -> CookieSettings:
    """Read the ``BETTER_AUTH_COOKIE_*`` and ``BETTER_AUTH_*_COOKIE_NAME`` keys."""
    samesite_raw = str(cfg.raw("COOKIE_SAMESITE") or "")
    samesite = _SAMESITE.get(samesite_raw.lower())
    if samesite is None:
        raise ConfigError(
            f"BETTER_AUTH_COOKIE_SAMESITE must be 'Lax', 'Strict' or 'None', not {samesite_raw!r}."
        )
    secure = cfg.bool("COOKIE_SECURE")
    if samesite == "None" and not secure:
        raise ConfigError(
            "BETTER_AUTH_COOKIE_SAMESITE='None' requires BETTER_AUTH_COOKIE_SECURE=True:"
            " browsers reject SameSite=None cookies without Secure."
        )
    secure_prefix = cfg.bool("COOKIE_SECURE_PREFIX")
    if secure_prefix and not secure:
        raise ConfigError(
            "BETTER_AUTH_COOKIE_SECURE_PREFIX=True requires BETTER_AUTH_COOKIE_SECURE=True."
        )
    naming = cfg.raw("COOKIE_NAMING") or "seed"
    if not isinstance(naming, str) or naming not in COOKIE_NAMES:
        raise ConfigError(
            f"BETTER_AUTH_COOKIE_NAMING must be 'seed' or 'better-auth', not {naming!r}."
        )
    prefix = cfg.str("COOKIE_PREFIX")
    secure_name = "__Secure-" if secure_prefix else ""
    names: dict[str, str] = {}
    for cookie, suffix in COOKIE_NAMES[naming].items():
        if cookie == "multi_session":
            continue
        explicit = cfg.optional_str(_EXPLICIT[cookie]) if cookie in _EXPLICIT else None
        names[cookie] = secure_name + (explicit or f"{prefix}.{suffix}")
    # Better Auth names each device's cookie after the session cookie: "<name>_multi-<token>".
    names["multi_session"] = names["session_token"] + COOKIE_NAMES[naming]["multi_session"]
    return CookieSettings(
        session_token=names["session_token"],
        session_data=names["session_data"],
        dont_remember=names["dont_remember"],
        secure=secure,
        httponly=cfg.bool("COOKIE_HTTPONLY"),
        samesite=samesite,
        domain=cfg.raw("COOKIE_DOMAIN") or None,
        path=cfg.str("COOKIE_PATH"),
        max_age=cfg.bool("COOKIE_MAX_AGE"),
        names=MappingProxyType(names),
    )


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

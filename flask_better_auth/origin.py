"""Trusted origins, the Origin/Referer (CSRF) checks and callback URL validation (spec §8.1).

Every URL is read as a browser reads it: the WHATWG URL Standard, through ada-url (the parser
Node.js, and so Better Auth, uses). A value a browser could read differently from a simple
reading (control characters, backslashes, leading or trailing spaces) is refused outright.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ada_url import URL
from flask import Request

from .config import ConfigError
from .errors import AuthError

if TYPE_CHECKING:
    from .settings import AuthSettings

#: Characters no callback URL or origin may contain: C0 and C1 controls (browsers silently drop
#: tabs and newlines, and CR/LF would split a Location header), and the backslash (a slash in
#: http(s) URLs for browsers, an ordinary character for most other URL readers).
_AMBIGUOUS = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")

#: Body/query keys holding redirect targets, and the error code each one fails with.
CALLBACK_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("callbackURL", "callbackURL", "INVALID_CALLBACK_URL"),
    ("redirectTo", "redirectURL", "INVALID_REDIRECT_URL"),
    ("errorCallbackURL", "errorCallbackURL", "INVALID_ERROR_CALLBACK_URL"),
    ("newUserCallbackURL", "newUserCallbackURL", "INVALID_NEW_USER_CALLBACK_URL"),
)

_WEB_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
#: One host label of a wildcard pattern: letters, digits, ``-``, ``_`` and the wildcards.
_PATTERN_LABEL = re.compile(r"[a-z0-9_*?-]+")
#: What a wildcard may stand for: whole DNS labels (ASCII, after IDNA), never a dot or more.
_LABEL_CHARS = "[a-z0-9_-]"
_STAND_IN = {"*": "zwildcardstarz", "?": "zwildcardonez"}


def parse_url(value: str, base: str | None = None) -> URL | None:
    """``value`` parsed by the WHATWG rules (against ``base`` if given), or ``None``.

    ``None`` also for anything a browser might read differently from a plain reading.
    """
    if _AMBIGUOUS.search(value) or value != value.strip(" "):
        return None
    try:
        return URL(value, base)
    except ValueError:
        return None


def _serialized_origin(url: URL) -> str:
    """``scheme://host[:port]``: the WHATWG origin for http(s), the same shape for others."""
    scheme = url.protocol[:-1]
    if scheme in _WEB_SCHEMES:
        return url.origin
    return f"{scheme}://{url.host.lower()}"


@dataclass(frozen=True)
class OriginPattern:
    """One ``BETTER_AUTH_TRUSTED_ORIGINS`` (or CORS) entry, parsed once.

    Forms (Better Auth's, read more strictly):

    * ``https://app.example.com[:port]``: that origin exactly;
    * ``https://*.example.com``, ``*.example.org``, ``http://192.168.*.*:*``: wildcards that
      stand for whole host labels only (a leading ``*`` for one or more labels, another ``*``
      for one label or part of one, ``?`` for one character), so no look-alike host can match;
      a scheme-less entry matches http and https; ``:*`` matches any port, no port the
      default one; a numeric pattern matches IPv4 addresses only;
    * ``myapp://`` (a whole custom scheme), ``myapp://host`` (one authority),
      ``myapp://host/path`` (that path and below), and custom-scheme wildcards (``exp://*``).
    """

    text: str
    #: The full-match regex over a URL's serialized origin (``None``: the whole scheme).
    regex: re.Pattern[str] | None
    scheme: str | None = None
    #: Custom-scheme entries with a path: the path prefix the URL's path must be in.
    path: str | None = None

    def matches(self, url: URL) -> bool:
        """Whether the parsed ``url`` is covered by this entry."""
        scheme = url.protocol[:-1]
        if self.scheme is None:
            if scheme not in _WEB_SCHEMES:
                return False
        elif scheme != self.scheme:
            return False
        if self.regex is None:
            return True
        if scheme in _WEB_SCHEMES and not url.host:
            return False
        if not self.regex.fullmatch(_serialized_origin(url)):
            return False
        if self.path is None:
            return True
        return url.pathname == self.path or url.pathname.startswith(self.path + "/")


@functools.lru_cache(maxsize=512)
def origin_pattern(text: str) -> OriginPattern:
    """Parse one trusted-origin entry.

    :raises ValueError: the entry cannot be read unambiguously (the message says why).
    """
    entry = text.strip()
    if not entry or _AMBIGUOUS.search(entry):
        raise ValueError("an empty entry or one with control characters or backslashes")
    scheme: str | None = None
    rest = entry
    if entry.endswith(":") and _SCHEME.fullmatch(entry[:-1].lower()):
        entry += "//"  # ``myapp://`` once its trailing slashes are trimmed
    if "://" in entry:
        scheme, rest = entry.split("://", 1)
        scheme = scheme.lower()
        if not _SCHEME.fullmatch(scheme):
            raise ValueError("the scheme is not a plain scheme name (no wildcards there)")
    authority, slash, path = rest.partition("/")
    wildcard = "*" in authority or "?" in authority
    if scheme is not None and scheme not in _WEB_SCHEMES:
        return _custom_scheme_pattern(entry, scheme, authority, slash + path, wildcard)
    if path.strip("/") and not (wildcard and path == "**"):
        raise ValueError("an http(s) origin has no path: scheme://host[:port]")
    if not wildcard:
        if scheme is None:
            raise ValueError("an origin needs its scheme, e.g. https://example.com")
        url = parse_url(f"{scheme}://{authority}/")
        if url is None or url.username or url.password or url.search or url.hash:
            raise ValueError("not a valid origin (scheme://host[:port])")
        return OriginPattern(entry, re.compile(re.escape(url.origin)), scheme)
    # Scheme-less, a port is compared as written (Better Auth globs ``host[:port]``).
    host_regex = _host_regex(authority, scheme or "")
    schemes = re.escape(scheme) if scheme else "https?"
    return OriginPattern(entry, re.compile(f"{schemes}://{host_regex}"), scheme)


def _custom_scheme_pattern(
    entry: str, scheme: str, authority: str, path: str, wildcard: bool
) -> OriginPattern:
    if not authority and not path.strip("/"):
        return OriginPattern(entry, None, scheme)
    if wildcard:
        if path.strip("/") not in ("", "*", "**"):
            raise ValueError("a wildcard entry of a custom scheme can only end in /**")
        host_regex = _host_regex(authority, scheme)
        return OriginPattern(entry, re.compile(f"{re.escape(scheme)}://{host_regex}"), scheme)
    url = parse_url(entry)
    if url is None:
        raise ValueError("not a valid URL")
    base_path = url.pathname.rstrip("/") or None
    regex = re.compile(re.escape(f"{scheme}://{url.host.lower()}"))
    return OriginPattern(entry, regex, scheme, path=base_path)


def _host_regex(authority: str, scheme: str) -> str:
    """The regex for a wildcard ``host[:port]`` over a parsed URL's (normalised) host."""
    if "@" in authority or "[" in authority:
        raise ValueError("a wildcard entry has no userinfo and no IPv6 address")
    host, colon, port = authority.lower().partition(":")
    if colon and not (port == "*" or port.isdigit()):
        raise ValueError("the port must be digits or *")
    labels = host.split(".")
    wild = {i for i, label in enumerate(labels) if "*" in label or "?" in label}
    for i in wild:
        if not _PATTERN_LABEL.fullmatch(labels[i]):
            raise ValueError(f"wildcards stand for whole ASCII labels: {labels[i]!r}")
    # The labels without wildcards are normalised as the URL parser would (IDNA, case).
    stand_ins = [
        label.replace("*", _STAND_IN["*"]).replace("?", _STAND_IN["?"]) for label in labels
    ]
    url = parse_url(f"http://{'.'.join(stand_ins)}/")
    if url is None or len(url.hostname.split(".")) != len(labels):
        raise ValueError("not a valid host pattern (e.g. https://*.example.com)")
    fixed = [label for i, label in enumerate(labels) if i not in wild]
    # Better Auth 1.7.25: ``192.168.*.*`` stands for IPv4 addresses, never for a domain name
    # (a parsed http(s) host whose last label is a number is always an IPv4 address).
    numeric = bool(fixed) and all(label.isdigit() for label in fixed)
    chars = "[0-9]" if numeric else _LABEL_CHARS
    parts = []
    for i, label in enumerate(url.hostname.split(".")):
        if i not in wild:
            parts.append(re.escape(label))
        elif i == 0 and labels[0] in ("*", "**"):
            parts.append(rf"{chars}+(?:\.{chars}+)*")
        elif labels[i] in ("*", "**"):
            parts.append(f"{chars}+")
        else:
            pieces = re.split(f"({_STAND_IN['*']}|{_STAND_IN['?']})", label)
            parts.append(
                "".join(
                    f"{chars}*"
                    if piece == _STAND_IN["*"]
                    else chars
                    if piece == _STAND_IN["?"]
                    else re.escape(piece)
                    for piece in pieces
                )
            )
    if port == "*":
        port_regex = "(?::[0-9]{1,5})?"
    elif port and port != _DEFAULT_PORTS.get(scheme):
        port_regex = ":" + str(int(port))
    else:
        port_regex = ""
    return r"\.".join(parts) + port_regex


def check_origin_patterns(key: str, entries: Iterable[str]) -> None:
    """Raise ``ConfigError`` naming ``key`` for the first entry that cannot be read."""
    for entry in entries:
        if entry == "*" and key.endswith("CORS_ORIGINS"):
            continue
        try:
            origin_pattern(entry)
        except ValueError as exc:
            raise ConfigError(
                f"{key} entry {entry!r} is not an origin or origin pattern: {exc}."
            ) from None


def trusted_origins(settings: AuthSettings) -> tuple[str, ...]:
    """The base URL's origin plus the configured ones.

    Origins allowed to make credentialed CORS calls (``BETTER_AUTH_CORS_ORIGINS``) are trusted
    too: a site that may read our answers with cookies is already trusted with them. Without
    credentials, CORS lets a site read public answers only, which earns it no trust.
    """
    cors = settings.cors_origins if settings.cors_allow_credentials else ()
    return (settings.base_origin, *settings.trusted_origins, *cors)


def is_trusted(value: str, settings: AuthSettings) -> bool:
    """Whether an absolute URL (or an origin) is on a trusted origin."""
    url = parse_url(value)
    if url is None:
        return False
    return any(origin_pattern(entry).matches(url) for entry in trusted_origins(settings))


def is_safe_relative(value: str, settings: AuthSettings) -> bool:
    """A path on our own site: ``/…`` that a browser resolves against the base URL's origin.

    Refused: ``//`` and ``/\\`` (scheme-relative to a browser), a resolved path starting with
    ``//`` (``/.//x``: scheme-relative again once a router re-emits it), ``%2f``/``%5c`` in
    the path (some servers decode them into separators), and every ambiguous character.
    """
    if not value.startswith("/") or value.startswith("//"):
        return False
    path = re.split(r"[?#]", value, maxsplit=1)[0].lower()
    if "%2f" in path or "%5c" in path:
        return False
    url = parse_url(value, settings.base_url)
    return (
        url is not None and url.origin == settings.base_origin and not url.pathname.startswith("//")
    )


def check_redirect_target(
    value: Any, label: str, code: str, settings: AuthSettings, request: Request | None = None
) -> None:
    """Raise 403 ``code`` unless ``value`` is a safe relative path or on a trusted origin."""
    if value is None:
        return
    if not isinstance(value, str):
        raise AuthError(400, "VALIDATION_ERROR", f"Invalid {label}: expected a string")
    if is_safe_relative(value, settings) or is_trusted(value, settings):
        return
    raise AuthError(403, code)


def check_redirect_targets(
    body: Mapping[str, Any], settings: AuthSettings, request: Request
) -> None:
    """Validate ``callbackURL`` (body or query), ``redirectTo``, ``errorCallbackURL``…"""
    for key, label, code in CALLBACK_FIELDS:
        value = body.get(key)
        if value is None and key == "callbackURL":
            value = request.args.get("callbackURL")
        check_redirect_target(value, label, code, settings)


def _claimed_origin(settings: AuthSettings, request: Request, *, cookies: bool) -> str | None:
    """The origin the request says it comes from: ``Origin``, else the ``Referer``.

    ``Origin: null`` (sandboxed frames, privacy redirects, ``no-referrer`` forms) is never
    replaced by the Referer. Better Auth 1.7.25 reads ``null`` with ``Sec-Fetch-Site:
    same-origin`` as the site's own origin; we do so only for cookie-less requests (the sign-in
    CSRF rule), never when cookies would act for a user.
    """
    origin = request.headers.get("Origin")
    if origin == "null":
        if not cookies and request.headers.get("Sec-Fetch-Site") == "same-origin":
            return settings.base_origin
        return None
    if origin:
        return origin
    return request.headers.get("Referer") or None


def _require_trusted_origin(settings: AuthSettings, request: Request, *, cookies: bool) -> None:
    origin = _claimed_origin(settings, request, cookies=cookies)
    if origin is None:
        raise AuthError(403, "MISSING_OR_NULL_ORIGIN")
    if not is_trusted(origin, settings):
        raise AuthError(403, "INVALID_ORIGIN")


def check_origin(
    settings: AuthSettings, request: Request, *, form_csrf: bool, bearer: bool
) -> None:
    """The CSRF rules for a state-changing request.

    A request carrying cookies needs a trusted Origin (or Referer), Bearer or not (Better Auth
    checks the request's own Cookie header before the bearer plugin runs). Sign-in and sign-up
    also apply the Fetch-Metadata rules to cookie-less requests. Cookie-less Bearer requests are
    not checked.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.headers.get("Cookie"):
        if not (settings.disable_origin_check or settings.disable_csrf_check):
            _require_trusted_origin(settings, request, cookies=True)
        return
    if bearer or not form_csrf or settings.disable_csrf_check or settings.disable_origin_check:
        return
    fetch_metadata = any(k.lower().startswith("sec-fetch-") for k, _ in request.headers.items())
    if fetch_metadata:
        if (
            request.headers.get("Sec-Fetch-Site") == "cross-site"
            and request.headers.get("Sec-Fetch-Mode") == "navigate"
        ):
            raise AuthError(403, "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED")
        _require_trusted_origin(settings, request, cookies=False)
    elif request.headers.get("Origin") or request.headers.get("Referer"):
        _require_trusted_origin(settings, request, cookies=False)


def cors_origin_regexes(entries: Iterable[str]) -> list[re.Pattern[str] | str]:
    """``BETTER_AUTH_CORS_ORIGINS`` for Flask-CORS: each entry as an anchored regex over the
    ``Origin`` header a browser sends (a serialized origin), the same match as the trust check.

    Flask-CORS would read a bare string with ``*`` as an unanchored regex (``.`` any character,
    a prefix match); compiled patterns are used as given.
    """
    compiled: list[re.Pattern[str] | str] = []
    for entry in entries:
        if entry == "*":
            compiled.append("*")
            continue
        pattern = origin_pattern(entry)
        if pattern.regex is None:
            body = re.escape(f"{pattern.scheme}:") + ".*"
        else:
            body = pattern.regex.pattern
        compiled.append(re.compile(rf"\A(?:{body})\Z"))
    return compiled


__all__ = [
    "CALLBACK_FIELDS",
    "OriginPattern",
    "check_origin",
    "check_origin_patterns",
    "check_redirect_target",
    "check_redirect_targets",
    "cors_origin_regexes",
    "is_safe_relative",
    "is_trusted",
    "origin_pattern",
    "parse_url",
    "trusted_origins",
]

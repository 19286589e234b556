"""Trusted origins, the Origin/Referer (CSRF) checks and callback URL validation (spec §8.1)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import Request

from .errors import AuthError
from .settings import AuthSettings

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: Body/query keys holding redirect targets, and the error code each one fails with.
CALLBACK_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("callbackURL", "callbackURL", "INVALID_CALLBACK_URL"),
    ("redirectTo", "redirectURL", "INVALID_REDIRECT_URL"),
    ("errorCallbackURL", "errorCallbackURL", "INVALID_ERROR_CALLBACK_URL"),
    ("newUserCallbackURL", "newUserCallbackURL", "INVALID_NEW_USER_CALLBACK_URL"),
)


def request_origin(request: Request) -> str:
    """The origin the request was sent to (``scheme://host``)."""
    return request.host_url.rstrip("/")


def trusted_origins(settings: AuthSettings, request: Request) -> tuple[str, ...]:
    """The base URL's origin (or, without one, the request's own) plus the configured ones.

    Origins allowed to make credentialed CORS calls (``BETTER_AUTH_CORS_ORIGINS``) are trusted
    too: a site that may read our answers with cookies is already trusted with them.
    """
    own = settings.base_origin or request_origin(request)
    return (own, *settings.trusted_origins, *settings.cors_origins)


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def matches_origin(url: str, pattern: str) -> bool:
    """Whether ``url`` is covered by one trusted-origin ``pattern`` (Better Auth's rules).

    Exact origins compare exactly; ``*``/``?`` wildcards match the origin (when the pattern has a
    scheme) or the host; custom schemes (``myapp://``) trust the whole scheme or an authority.
    """
    pattern = pattern.strip()
    if not pattern:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if "*" in pattern or "?" in pattern:
        if "://" in pattern:
            origin = _origin_of(url)
            return origin is not None and fnmatch.fnmatchcase(origin, pattern.lower())
        return bool(parts.netloc) and fnmatch.fnmatchcase(parts.netloc.lower(), pattern.lower())
    pattern_parts = urlsplit(pattern)
    if pattern_parts.scheme and pattern_parts.scheme.lower() not in ("http", "https"):
        if scheme != pattern_parts.scheme.lower():
            return False
        if not pattern_parts.netloc:
            return True
        if parts.netloc.lower() != pattern_parts.netloc.lower():
            return False
        base = pattern_parts.path.rstrip("/")
        return not base or parts.path == base or parts.path.startswith(base + "/")
    origin = _origin_of(url)
    return origin is not None and origin == pattern.rstrip("/").lower()


def is_trusted(url: str, settings: AuthSettings, request: Request) -> bool:
    """Whether an absolute URL's origin is trusted."""
    return any(matches_origin(url, pattern) for pattern in trusted_origins(settings, request))


def is_safe_relative(url: str, request: Request) -> bool:
    """A same-origin relative path: ``/…``, not ``//``, no backslash, control or encoded slash."""
    if not url.startswith("/") or url.startswith("//") or "\\" in url or _CONTROL.search(url):
        return False
    path = urlsplit(url).path.lower()
    if "%2f" in path or "%5c" in path:
        return False
    resolved = urljoin(request.host_url, url)
    return _origin_of(resolved) == _origin_of(request.host_url)


def check_redirect_target(
    value: Any, label: str, code: str, settings: AuthSettings, request: Request
) -> None:
    """Raise 403 ``code`` unless ``value`` is a safe relative path or on a trusted origin."""
    if value is None:
        return
    if not isinstance(value, str):
        raise AuthError(400, "VALIDATION_ERROR", f"Invalid {label}: expected a string")
    if is_safe_relative(value, request) or is_trusted(value, settings, request):
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
        check_redirect_target(value, label, code, settings, request)


def _claimed_origin(request: Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin == "null" and request.headers.get("Sec-Fetch-Site") == "same-origin":
        return request_origin(request)
    if origin and origin != "null":
        return origin
    referer = request.headers.get("Referer")
    if referer:
        return _origin_of(referer)
    return None


def _require_trusted_origin(settings: AuthSettings, request: Request) -> None:
    origin = _claimed_origin(request)
    if origin is None:
        raise AuthError(403, "MISSING_OR_NULL_ORIGIN")
    if not is_trusted(origin, settings, request):
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
            _require_trusted_origin(settings, request)
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
        _require_trusted_origin(settings, request)
    elif request.headers.get("Origin") or request.headers.get("Referer"):
        _require_trusted_origin(settings, request)

"""``login_required`` and ``fresh_login_required`` for the app's own views."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from flask import current_app, redirect, request, url_for
from sqlalchemy.exc import OperationalError

from .context import resolve_session
from .errors import AuthError
from .models import Session, User
from .state import settings, state

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("flask_better_auth")


def _resolve() -> tuple[Session, User] | None:
    """The request's session; a database that cannot answer is ``503`` JSON, not a 500 page."""
    try:
        return resolve_session()
    except OperationalError as exc:
        logger.error("database unavailable: %s", exc.orig.__class__.__name__ if exc.orig else exc)
        raise AuthError(503, "SERVICE_UNAVAILABLE", headers={"Retry-After": "1"}) from exc


def wants_html() -> bool:
    """Whether the client prefers HTML to JSON (a browser navigating, not ``fetch``)."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def login_disabled() -> bool:
    """Flask-Login's ``LOGIN_DISABLED``: the decorators let every request through (tests).

    Read on each request, as Flask-Login does, so a test can switch it on an existing app.
    """
    return bool(current_app.config.get("LOGIN_DISABLED"))


def _login_redirect() -> Any:
    view = settings().login_view or "/"
    target = view if view.startswith("/") else url_for(view)
    # Only the path and query of this request: never an absolute URL someone could forge.
    next_url = request.full_path if request.query_string else request.path
    separator = "&" if "?" in target else "?"
    return redirect(f"{target}{separator}{urlencode({'next': next_url})}")


def _unauthorized() -> Any:
    if wants_html():
        handler = state().extension.unauthorized_callback
        if handler is not None:
            return current_app.ensure_sync(handler)()
        if settings().login_view:
            return _login_redirect()
    raise AuthError(401, "UNAUTHORIZED")


def _needs_refresh() -> Any:
    if wants_html():
        handler = state().extension.needs_refresh_callback
        if handler is not None:
            return current_app.ensure_sync(handler)()
    raise AuthError(403, "SESSION_NOT_FRESH")


def login_required(view: F) -> F:
    """Answer ``401 UNAUTHORIZED`` JSON unless a session is signed in.

    For requests that prefer HTML (a browser, not ``fetch``) the app's
    :meth:`~flask_better_auth.BetterAuth.unauthorized_handler` answers instead when there is
    one, else a redirect to ``BETTER_AUTH_LOGIN_VIEW`` (with ``?next=``) when it is set.
    ``OPTIONS`` (CORS preflight) passes through, and every request does while the app's
    ``LOGIN_DISABLED`` config is true (for tests); async views work. A database that cannot
    be reached answers ``503 SERVICE_UNAVAILABLE`` JSON with ``Retry-After: 1``.
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method != "OPTIONS" and not login_disabled() and _resolve() is None:
            return _unauthorized()
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, wrapper)


def fresh_login_required(view: F) -> F:
    """Like :func:`login_required`, and the session must be fresh.

    Fresh means signed in less than ``BETTER_AUTH_SESSION_FRESH_AGE`` ago (``403
    SESSION_NOT_FRESH`` otherwise, or the app's
    :meth:`~flask_better_auth.BetterAuth.needs_refresh_handler` for HTML requests; a fresh
    age of 0 turns the check off).
    """

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method != "OPTIONS" and not login_disabled():
            resolved = _resolve()
            if resolved is None:
                return _unauthorized()
            if not is_fresh(resolved[0].created_at):
                return _needs_refresh()
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, wrapper)


def is_fresh(created_at: datetime) -> bool:
    """Whether a session created at ``created_at`` is fresh (``BETTER_AUTH_SESSION_FRESH_AGE``)."""
    fresh_age = settings().session.fresh_age
    return not fresh_age.total_seconds() or datetime.now(UTC) - created_at < fresh_age


def require_fresh(created_at: datetime) -> None:
    """Raise ``403 SESSION_NOT_FRESH`` when a session created at ``created_at`` is not fresh."""
    if not is_fresh(created_at):
        raise AuthError(403, "SESSION_NOT_FRESH")

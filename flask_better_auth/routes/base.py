"""The endpoint plumbing of the auth blueprint.

Every endpoint runs Better Auth's steps in its order: parse the body (415/400), the origin and
CSRF checks (403), schema validation (400), the session requirement (401/403), then the handler.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, Literal

from flask import Blueprint, Response, current_app, got_request_exception, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter
from werkzeug.urls import iri_to_uri

from ..context import auth_context, resolve_session
from ..decorators import require_fresh
from ..errors import AuthError, missing_table
from ..models import Session, User
from ..origin import check_origin, check_redirect_targets
from ..schemas import Field, parse_body, validate
from ..state import settings, storage

logger = logging.getLogger("flask_better_auth")

# Templates (the emails) live in the package; the app's own templates folder overrides them.
bp = Blueprint(
    "better_auth",
    __name__,
    template_folder=str(Path(__file__).resolve().parent.parent / "templates"),
)

AuthLevel = Literal["session", "sensitive", "fresh"] | None

#: Headers of an answer no cache may keep: one carrying a session token, session list or a
#: one-time token (Better Auth sends them on get-session; we send them on every such answer).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response as JavaScript writes it: compact, key order kept, ``null`` allowed."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    response = Response(body, status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def auth_url() -> str:
    """The full URL of the auth routes (base URL + base path), for links in emails.

    Only ever from ``BETTER_AUTH_BASE_URL``: the request's ``Host`` or ``X-Forwarded-Host`` is
    the client's to choose, and a reset link pointing at an attacker's host leaks the token.
    """
    conf = settings()
    return conf.base_url + conf.base_path


def require_session(level: AuthLevel = "session") -> tuple[Session, User]:
    """The signed-in session and user, or ``401 UNAUTHORIZED`` (``403`` when not fresh).

    ``"sensitive"`` reads the session's source of truth, bypassing the caches.
    """
    resolved = resolve_session(sensitive=level == "sensitive")
    if resolved is None:
        raise AuthError(401, "UNAUTHORIZED")
    if level == "fresh":
        require_fresh(resolved[0].created_at)
    return resolved


def endpoint(
    rule: str,
    *,
    methods: tuple[str, ...] = ("POST",),
    fields: tuple[Field, ...] | None = None,
    allow_form: bool = False,
    form_csrf: bool = False,
    auth: AuthLevel = None,
    body: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a Better Auth endpoint on the blueprint.

    :param fields: the body schema (validated, unknown keys dropped); ``None`` passes the
        parsed body through unvalidated.
    :param allow_form: also accept ``application/x-www-form-urlencoded`` bodies.
    :param form_csrf: apply sign-in's Fetch-Metadata CSRF rules to cookie-less requests.
    :param auth: the session the route needs: ``"session"``, ``"sensitive"`` or ``"fresh"``.
    :param body: ``False`` ignores any request body (Better Auth's ``disableBody``).
    """

    def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(handler)
        def view(**kwargs: Any) -> Any:
            conf = settings()
            raw: Any = {}
            if body and request.method not in ("GET", "HEAD"):
                raw = parse_body(request, allow_form=allow_form, max_size=conf.max_body_size)
            check_origin(conf, request, form_csrf=form_csrf, bearer=auth_context().via_bearer)
            if request.method not in ("GET", "HEAD"):
                check_redirect_targets(raw if isinstance(raw, dict) else {}, conf, request)
            data = validate(raw, fields) if fields is not None else raw
            if auth is not None:
                require_session(auth)
            result = handler(data, **kwargs)
            return result if isinstance(result, Response) else json_response(result)

        bp.add_url_rule(
            rule,
            endpoint=handler.__name__,
            view_func=view,
            methods=list(methods),
            merge_slashes=False,
        )
        return handler

    return decorator


def empty_response(status: int) -> Response:
    """A response with no body and no content type (Better Auth's router 404)."""
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    return response


def redirect_response(location: str, status: int = 302) -> Response:
    """A redirect as Better Auth's router answers one: ``Location``, an empty body and
    ``content-type: application/json`` (not Flask's HTML "Redirecting…" page).

    The target is written as a URI (non-ASCII and control characters percent-encoded), so no
    value can break the header. Never cached: the target may carry a token.
    """
    response = Response(b"", status=status, mimetype="application/json", headers=NO_STORE)
    response.headers["Location"] = iri_to_uri(location)
    return response


class _RestOfPath(PathConverter):
    """Whatever follows the base path: ``path`` would stop at a newline or a leading slash."""

    regex = r"[\s\S]+?"
    part_isolating = False


@bp.record_once
def _add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("better_auth_rest", _RestOfPath)


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@bp.route("", methods=_METHODS, merge_slashes=False)
@bp.route("/", methods=_METHODS, merge_slashes=False)
@bp.route("/<better_auth_rest:unknown>", methods=_METHODS, merge_slashes=False)
def not_found(unknown: str = "") -> Response:
    """Anything else under the base path, wrong methods included: 404 with an empty body."""
    return empty_response(404)


@bp.errorhandler(AuthError)
def _auth_error(error: AuthError) -> Response:
    _rollback()
    return error.to_response()


@bp.errorhandler(OperationalError)
def _database_unavailable(error: OperationalError) -> Response:
    if missing_table(error):  # SQLite's "no such table" is an OperationalError too
        return _unexpected(error)
    _rollback()
    logger.error("database unavailable: %s", error.orig.__class__.__name__ if error.orig else error)
    return AuthError(503, "SERVICE_UNAVAILABLE", headers={"Retry-After": "1"}).to_response()


@bp.errorhandler(DataError)
def _value_rejected(error: DataError) -> Response:
    # A value the database cannot store, e.g. a NUL character in PostgreSQL text (SQLite
    # takes it): the client's input is at fault, not the server.
    _rollback()
    return AuthError(400, "VALIDATION_ERROR", "[body] Invalid input").to_response()


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    _rollback()
    status = error.code or 500
    if status == 413:
        return AuthError(413, "PAYLOAD_TOO_LARGE").to_response()
    if status in (404, 405):
        return empty_response(404)
    return AuthError(
        status, (error.name or "ERROR").upper().replace(" ", "_"), error.description
    ).to_response()


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    """Any other error: a 500 in Better Auth's shape, logged, and signalled as Flask would.

    Handling the exception here keeps Flask from sending ``got_request_exception`` itself, so
    it is sent here: error trackers (Sentry…) listen to it. A missing table is a 500 too (no
    ``Retry-After``: waiting will not make it), logged as what it is without a traceback.
    """
    _rollback()
    problem = missing_table(error)
    if problem is not None:
        logger.error("%s (%s %s)", problem, request.method, request.path)
    else:
        logger.exception("unexpected error in %s %s", request.method, request.path)
    got_request_exception.send(current_app._get_current_object(), exception=error)  # type: ignore[attr-defined]
    return AuthError(500, "INTERNAL_SERVER_ERROR").to_response()


def _rollback() -> None:
    try:
        storage().rollback()
    except Exception:  # the database may be the very thing that failed
        logger.debug("rollback failed", exc_info=True)


__all__ = [
    "NO_STORE",
    "auth_url",
    "bp",
    "empty_response",
    "endpoint",
    "json_response",
    "redirect_response",
    "require_session",
    "settings",
]

"""Each app's auth blueprint: the declared endpoints of the core and the app's plugins, the
catch-all 404 and the error handlers that answer in Better Auth's shape."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from flask import Blueprint, Response, current_app, got_request_exception, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import PathConverter

from .config import ConfigError
from .endpoints import Endpoint, Hook, empty_response, make_view
from .errors import AuthError, missing_table
from .state import storage

logger = logging.getLogger("flask_better_auth")

#: The package's templates (the emails); the app's own templates folder overrides them.
TEMPLATES = str(Path(__file__).resolve().parent / "templates")


def build_blueprint(
    endpoints: Iterable[tuple[str, Endpoint]], hooks: Sequence[Hook], base_path: str
) -> Blueprint:
    """A new blueprint for one app: each ``(owner, endpoint)`` with the app's ``hooks``.

    :raises ConfigError: two endpoints answer the same method and path, or share a name.
    """
    bp = Blueprint("better_auth", __name__, template_folder=TEMPLATES)
    routes: dict[tuple[str, str], str] = {}
    names: dict[str, str] = {}
    for owner, endpoint in endpoints:
        if endpoint.name in names:
            raise ConfigError(
                f"{owner} and {names[endpoint.name]} both declare an endpoint named"
                f" {endpoint.name!r}."
            )
        names[endpoint.name] = owner
        for method in endpoint.methods:
            taken = routes.get((method, endpoint.path))
            if taken is not None:
                raise ConfigError(f"{owner} and {taken} both declare {method} {endpoint.path}.")
            routes[(method, endpoint.path)] = owner
        bp.add_url_rule(
            endpoint.path,
            endpoint=endpoint.name,
            view_func=make_view(endpoint, hooks, base_path),
            methods=list(endpoint.methods),
            merge_slashes=False,
        )
    bp.record_once(_add_converter)
    for rule in ("", "/", "/<better_auth_rest:unknown>"):
        bp.add_url_rule(
            rule, endpoint="not_found", view_func=not_found, methods=_METHODS, merge_slashes=False
        )
    bp.register_error_handler(AuthError, _auth_error)
    bp.register_error_handler(OperationalError, _database_unavailable)
    bp.register_error_handler(DataError, _value_rejected)
    bp.register_error_handler(HTTPException, _http_error)
    bp.register_error_handler(Exception, _unexpected)
    return bp


class _RestOfPath(PathConverter):
    """Whatever follows the base path: ``path`` would stop at a newline or a leading slash."""

    regex = r"[\s\S]+?"
    part_isolating = False


def _add_converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters.setdefault("better_auth_rest", _RestOfPath)


_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def not_found(unknown: str = "") -> Response:
    """Anything else under the base path, wrong methods included: 404 with an empty body."""
    return empty_response(404)


def _auth_error(error: AuthError) -> Response:
    _rollback()
    return error.to_response()


def _database_unavailable(error: OperationalError) -> Response:
    if missing_table(error):  # SQLite's "no such table" is an OperationalError too
        return _unexpected(error)
    _rollback()
    logger.error("database unavailable: %s", error.orig.__class__.__name__ if error.orig else error)
    return AuthError(503, "SERVICE_UNAVAILABLE", headers={"Retry-After": "1"}).to_response()


def _value_rejected(error: DataError) -> Response:
    # A value the database cannot store, e.g. a NUL character in PostgreSQL text (SQLite
    # takes it): the client's input is at fault, not the server.
    _rollback()
    return AuthError(400, "VALIDATION_ERROR", "[body] Invalid input").to_response()


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


__all__ = ["TEMPLATES", "build_blueprint"]

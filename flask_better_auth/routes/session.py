"""Session routes: get-session, list-sessions and the revoke family."""

from __future__ import annotations

from typing import Any

from flask import request

from ..context import end_session, resolve_session
from ..errors import AuthError
from ..schemas import Field
from ..signals import session_revoked
from ..state import app_object, storage
from .base import NO_STORE, endpoint, json_response, require_session


def _flag(name: str) -> bool:
    # z.coerce.boolean(): any non-empty value, "false" included, is true.
    return bool(request.args.get(name))


@endpoint("/get-session", methods=("GET", "POST"), body=False)
def get_session(body: Any) -> Any:
    """``null`` or ``{session, user}``; extends the session when due (unless ``disableRefresh``).

    A valid cookie cache answers without storage unless ``disableCookieCache`` is given.
    """
    if request.method == "POST":
        raise AuthError(405, "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED", headers=NO_STORE)
    resolved = resolve_session(
        refresh=not _flag("disableRefresh"), disable_cookie_cache=_flag("disableCookieCache")
    )
    data = (
        None
        if resolved is None
        else {
            "session": resolved[0].to_json(),
            "user": resolved[1].to_json(),
        }
    )
    return json_response(data, headers=NO_STORE)


@endpoint("/list-sessions", methods=("GET",), auth="fresh")
def list_sessions(body: Any) -> Any:
    """Every unexpired session of the signed-in user (tokens included: never cached)."""
    _, user = require_session("fresh")
    sessions = storage().sessions.list_active(user.id)
    return json_response([s.to_json() for s in sessions], headers=NO_STORE)


def _revoked(user_id: str, tokens: list[str] | None) -> None:
    session_revoked.send(app_object(), user_id=user_id, tokens=tokens)


@endpoint("/revoke-session", fields=(Field("token", required=True),), auth="sensitive")
def revoke_session(body: dict[str, Any]) -> Any:
    """Revoke one of the user's sessions by token (someone else's token: silently nothing)."""
    session, user = require_session("sensitive")
    token: str = body["token"]
    if storage().sessions.delete_for_user(user.id, token=token):
        storage().commit()
        _revoked(user.id, [token])
    if token == session.token:
        end_session()
    return {"status": True}


@endpoint("/revoke-sessions", auth="sensitive")
def revoke_sessions(body: Any) -> Any:
    """Revoke every session of the user, this one included."""
    _, user = require_session("sensitive")
    storage().sessions.delete_for_user(user.id)
    storage().commit()
    _revoked(user.id, None)
    end_session()
    return {"status": True}


@endpoint("/revoke-other-sessions", auth="sensitive")
def revoke_other_sessions(body: Any) -> Any:
    """Revoke every session of the user except this one."""
    session, user = require_session("sensitive")
    storage().sessions.delete_for_user(user.id, keep_token=session.token)
    storage().commit()
    _revoked(user.id, None)
    return {"status": True}

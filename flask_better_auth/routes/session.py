"""Session routes: get-session, list-sessions and the revoke family."""

from __future__ import annotations

from typing import Any

from flask import request

from ..context import end_session, resolve_session
from ..endpoints import NO_STORE, Endpoints, json_response
from ..errors import AuthError
from ..models import Session, User
from ..schemas import Field
from ..signals import session_revoked
from ..state import app_object, storage

routes = Endpoints()


def _flag(name: str) -> bool:
    # z.coerce.boolean(): any non-empty value, "false" included, is true.
    return bool(request.args.get(name))


@routes.endpoint("/get-session", methods=("GET", "POST"), body=False)
def get_session() -> Any:
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


@routes.endpoint("/list-sessions", methods=("GET",), auth="fresh")
def list_sessions(user: User) -> Any:
    """Every unexpired session of the signed-in user (tokens included: never cached)."""
    sessions = storage().sessions.list_active(user.id)
    return json_response([s.to_json() for s in sessions], headers=NO_STORE)


def _revoked(user_id: str, tokens: list[str] | None) -> None:
    session_revoked.send(app_object(), user_id=user_id, tokens=tokens)


@routes.endpoint("/revoke-session", fields=(Field("token", required=True),), auth="sensitive")
def revoke_session(body: dict[str, Any], session: Session, user: User) -> Any:
    """Revoke one of the user's sessions by token (someone else's token: silently nothing)."""
    token: str = body["token"]
    if storage().sessions.delete_for_user(user.id, token=token):
        storage().commit()
        _revoked(user.id, [token])
    if token == session.token:
        end_session()
    return {"status": True}


@routes.endpoint("/revoke-sessions", auth="sensitive")
def revoke_sessions(user: User) -> Any:
    """Revoke every session of the user, this one included."""
    storage().sessions.delete_for_user(user.id)
    storage().commit()
    _revoked(user.id, None)
    end_session()
    return {"status": True}


@routes.endpoint("/revoke-other-sessions", auth="sensitive")
def revoke_other_sessions(session: Session, user: User) -> Any:
    """Revoke every session of the user except this one."""
    storage().sessions.delete_for_user(user.id, keep_token=session.token)
    storage().commit()
    _revoked(user.id, None)
    return {"status": True}

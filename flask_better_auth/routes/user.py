"""``POST /update-user``, ``POST /delete-user`` and its emailed link."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import request

from ..context import auth_context, end_session, resolve_session
from ..crypto import generate_id
from ..email_links import auth_url
from ..endpoints import Endpoints, empty_response, redirect_response
from ..errors import AuthError
from ..models import Session, User, utcnow
from ..origin import check_redirect_target
from ..passwords import check_current_password
from ..schemas import Field, validate
from ..state import settings, state, storage

routes = Endpoints()

UPDATE_FIELDS = (Field("name"), Field("image", nullable=True))


@routes.endpoint("/update-user", auth="session")
def update_user(body: Any, user: User) -> Any:
    """Update ``name`` and ``image``; the email cannot change here. Re-issues the cookie."""
    if not isinstance(body, dict):
        raise AuthError(400, "BODY_MUST_BE_AN_OBJECT")
    if body.get("email"):
        raise AuthError(400, "EMAIL_CAN_NOT_BE_UPDATED")
    fields = validate(body, UPDATE_FIELDS)
    if not fields:
        raise AuthError(400, None, "No fields to update")
    store = storage()
    user = store.users.update(user, **fields)  # the session may come from a cache: the row
    store.commit()
    store.sessions.refresh_user(user)
    ctx = auth_context()
    ctx.user = user
    ctx.mark_set()
    return {"status": True}


DELETE_FIELDS = (Field("callbackURL"), Field("password"), Field("token"))


def _delete_token_identifier(token: str) -> str:
    return f"delete-account-{token}"


def _consume_delete_token(token: str, user: User) -> None:
    """Take the emailed deletion token; 404 INVALID_TOKEN unless it is this user's."""
    if storage().verifications.consume(_delete_token_identifier(token)) != user.id:
        raise AuthError(404, "INVALID_TOKEN")


def _delete(user: User) -> None:
    """Delete the user with its sessions and accounts, and expire the request's cookies."""
    store = storage()
    store.sessions.delete_for_user(user.id)
    store.users.delete(user.id)
    store.commit()
    end_session()


@routes.endpoint("/delete-user", fields=DELETE_FIELDS, auth="sensitive")
def delete_user(body: dict[str, Any], session: Session, user: User) -> Any:
    """Delete the signed-in user: with the password, an emailed token, or a fresh session.

    With ``BETTER_AUTH_SEND_DELETE_ACCOUNT_VERIFICATION`` (or a
    ``send_delete_account_verification`` callback) the user is emailed a link instead.
    """
    conf = settings()
    if not conf.delete_user_enabled:
        return empty_response(404)
    password = body.get("password")
    token = body.get("token")
    if password is not None:
        check_current_password(user.id, password, conf)
    if token is not None:
        _consume_delete_token(token, user)
        _delete(user)
        return {"success": True, "message": "User deleted"}
    mailer = state().mailer
    if mailer.can_send("delete-account") and (
        conf.email.send_delete_account_verification or "delete-account" in mailer.callbacks
    ):
        token = generate_id(32, alphabet="abcdefghijklmnopqrstuvwxyz0123456789")
        storage().verifications.create(
            _delete_token_identifier(token), user.id, utcnow() + conf.email.delete_token_expires_in
        )
        storage().commit()
        callback = quote(body.get("callbackURL") or "/", safe="")
        url = f"{auth_url()}/delete-user/callback?token={token}&callbackURL={callback}"
        mailer.send("delete-account", user=user, url=url, token=token)
        return {"success": True, "message": "Verification email sent"}
    if password is None:
        fresh_age = conf.session.fresh_age
        if fresh_age.total_seconds() and datetime.now(UTC) - session.created_at >= fresh_age:
            raise AuthError(400, "SESSION_EXPIRED")
    _delete(user)
    return {"success": True, "message": "User deleted"}


@routes.endpoint("/delete-user/callback", methods=("GET",))
def delete_user_callback() -> Any:
    """The emailed deletion link: needs the user's session; 302 to ``callbackURL`` when given."""
    conf = settings()
    callback_url = request.args.get("callbackURL") or None
    check_redirect_target(callback_url, "callbackURL", "INVALID_CALLBACK_URL", conf, request)
    if not conf.delete_user_enabled:
        raise AuthError(404, "NOT_FOUND")
    resolved = resolve_session(sensitive=True)
    if resolved is None:
        raise AuthError(404, "FAILED_TO_GET_USER_INFO", "Failed to get user info")
    _consume_delete_token(request.args.get("token") or "", resolved[1])
    _delete(resolved[1])
    if callback_url:
        return redirect_response(callback_url)
    return {"success": True, "message": "User deleted"}

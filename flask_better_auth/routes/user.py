"""``POST /update-user`` and ``POST /delete-user``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select

from ..context import auth_context, end_session
from ..errors import AuthError
from ..models import Account, Session, User, Verification, utcnow
from ..schemas import Field, validate
from ..store import commit, db_session
from .base import empty_response, endpoint, require_session, settings
from .password import check_current_password

UPDATE_FIELDS = (Field("name"), Field("image", nullable=True))


@endpoint("/update-user", auth="session")
def update_user(body: Any) -> Any:
    """Update ``name`` and ``image``; the email cannot change here. Re-issues the cookie."""
    if not isinstance(body, dict):
        raise AuthError(400, "BODY_MUST_BE_AN_OBJECT")
    if body.get("email"):
        raise AuthError(400, "EMAIL_CAN_NOT_BE_UPDATED")
    fields = validate(body, UPDATE_FIELDS)
    if not fields:
        raise AuthError(400, None, "No fields to update")
    _, user = require_session()
    for key, value in fields.items():
        setattr(user, key, value)
    user.updated_at = utcnow()
    commit()
    auth_context().mark_set()
    return {"status": True}


DELETE_FIELDS = (Field("callbackURL"), Field("password"), Field("token"))


@endpoint("/delete-user", fields=DELETE_FIELDS, auth="sensitive")
def delete_user(body: dict[str, Any]) -> Any:
    """Delete the signed-in user: with the password, a deletion token, or a fresh session."""
    conf = settings()
    if not conf.delete_user_enabled:
        return empty_response(404)
    session, user = require_session("sensitive")
    password = body.get("password")
    token = body.get("token")
    if password is not None:
        check_current_password(user.id, password, conf)
    if token is not None:
        identifier = f"delete-account-{token}"
        row = (
            db_session()
            .execute(
                select(Verification).where(
                    Verification.identifier == identifier, Verification.expires_at > utcnow()
                )
            )
            .scalar_one_or_none()
        )
        if row is None or row.value != user.id:
            raise AuthError(404, "INVALID_TOKEN")
        db_session().execute(delete(Verification).where(Verification.id == row.id))
    elif password is None:
        fresh_age = conf.session.fresh_age
        if fresh_age.total_seconds() and datetime.now(UTC) - session.created_at >= fresh_age:
            raise AuthError(400, "SESSION_EXPIRED")
    db = db_session()
    db.execute(delete(Session).where(Session.user_id == user.id))
    db.execute(delete(Account).where(Account.user_id == user.id))
    db.execute(delete(User).where(User.id == user.id).execution_options(synchronize_session=False))
    commit()
    end_session()
    return {"success": True, "message": "User deleted"}

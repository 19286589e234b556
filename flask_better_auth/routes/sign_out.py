"""``POST /sign-out``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from ..context import auth_context, end_session
from ..models import Session
from ..schemas import Field
from ..signals import session_revoked, user_signed_out
from ..state import app_object
from ..store import commit, db_session
from .base import endpoint

FIELDS = (Field("callbackURL"), Field("disableRedirect", "boolean"), Field("state"))


@endpoint("/sign-out", fields=FIELDS)
def sign_out(body: dict[str, Any]) -> Any:
    """Delete the request's session (if any) and always expire the session cookies."""
    ctx = auth_context()
    if ctx.token:
        result = db_session().execute(
            delete(Session).where(Session.token == ctx.token).returning(Session.user_id)
        )
        user_ids = [row[0] for row in result]
        commit()
        app = app_object()
        if user_ids:
            session_revoked.send(app, user_id=user_ids[0], tokens=[ctx.token])
        user_signed_out.send(app, user_id=user_ids[0] if user_ids else None)
    end_session()
    return {"success": True}

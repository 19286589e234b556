"""``POST /sign-out``."""

from __future__ import annotations

from typing import Any

from ..context import auth_context, end_session
from ..endpoints import Endpoints
from ..schemas import Field
from ..signals import session_revoked, user_signed_out
from ..state import app_object, storage

routes = Endpoints()

FIELDS = (Field("callbackURL"), Field("disableRedirect", "boolean"), Field("state"))


@routes.endpoint("/sign-out", fields=FIELDS)
def sign_out() -> Any:
    """Delete the request's session (if any) and always expire the session cookies."""
    ctx = auth_context()
    if ctx.token:
        user_id = storage().sessions.delete_token(ctx.token)
        storage().commit()
        app = app_object()
        if user_id is not None:
            session_revoked.send(app, user_id=user_id, tokens=[ctx.token])
        user_signed_out.send(app, user_id=user_id)
    end_session()
    return {"success": True}

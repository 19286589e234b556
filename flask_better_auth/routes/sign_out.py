"""``POST /sign-out``."""

from __future__ import annotations

from typing import Any

from ..endpoints import Endpoints
from ..login import logout_user
from ..schemas import Field

routes = Endpoints()

FIELDS = (Field("callbackURL"), Field("disableRedirect", "boolean"), Field("state"))


@routes.endpoint("/sign-out", fields=FIELDS)
def sign_out() -> Any:
    """Delete the request's session (if any) and always expire the session cookies: the steps
    of :func:`~flask_better_auth.login.logout_user`, which apps' own views call too."""
    logout_user()
    return {"success": True}

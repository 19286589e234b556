"""Better Auth's core routes, one module per domain (like Better Auth's routes/).

Each module declares its endpoints into its own ``routes`` list; nothing is registered at
import. :data:`CORE_ROUTES` names them for ``init_app``, which builds each app's blueprint from
these and the app's plugins' endpoints (the core is the first user of the plugin seam).
"""

from __future__ import annotations

from ..endpoints import Endpoint, Endpoints
from ..plugins import Plugin
from . import (
    email_verification,
    ok,
    password,
    password_reset,
    session,
    sign_in,
    sign_out,
    sign_up,
    user,
)

#: The core's route groups: ``(name, endpoints)`` in registration order.
CORE_ROUTES: tuple[tuple[str, Endpoints], ...] = (
    ("sign-up", sign_up.routes),
    ("sign-in", sign_in.routes),
    ("sign-out", sign_out.routes),
    ("session", session.routes),
    ("password", password.routes),
    ("password-reset", password_reset.routes),
    ("email-verification", email_verification.routes),
    ("user", user.routes),
    ("ok", ok.routes),
)


class Core(Plugin):
    """The core's routes, registered through the plugin seam like any plugin's."""

    id = "core"
    endpoints: tuple[Endpoint, ...] = tuple(e for _, group in CORE_ROUTES for e in group)


__all__ = ["CORE_ROUTES", "Core"]

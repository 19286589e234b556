"""Better Auth's core routes, one module per domain (like Better Auth's routes/).

Each module declares its endpoints into its own ``routes`` list; nothing is registered at
import. :data:`CORE_ROUTES` names them for ``init_app``, which builds each app's blueprint from
these and the app's plugins' endpoints (the core is the first user of the plugin seam).
"""

from __future__ import annotations

from typing import Any

from ..config import ConfigReader, Keys
from ..endpoints import Endpoint, Endpoints
from ..oauth import accounts as oauth_accounts
from ..oauth import flow as oauth
from ..oauth.settings import KEYS as OAUTH_KEYS
from ..oauth.settings import read_oauth_settings
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
    ("oauth", oauth.routes),
    ("accounts", oauth_accounts.routes),
    ("ok", ok.routes),
)


class Core(Plugin):
    """The core's routes, registered through the plugin seam like any plugin's."""

    id = "core"
    #: Social sign-in's keys (the other core keys are read by ``AuthSettings``).
    keys: Keys = OAUTH_KEYS
    endpoints: tuple[Endpoint, ...] = tuple(e for _, group in CORE_ROUTES for e in group)

    def read_settings(self, cfg: ConfigReader) -> Any:
        """The social providers and account-linking rules (``plugin_settings("core")``)."""
        return read_oauth_settings(cfg)


__all__ = ["CORE_ROUTES", "Core"]

"""Better Auth for Flask: Better Auth 1.7's HTTP API, sessions and cookies on Flask."""

from __future__ import annotations

from .context import AnonymousUser, current_session, current_user
from .decorators import fresh_login_required, login_required
from .errors import ERROR_CODES, AuthError
from .extension import BetterAuth
from .login import authenticate, login_user, logout_user, safe_next_url
from .models import Account, Session, User, Verification
from .settings import AuthSettings, ConfigError
from .signals import (
    account_linked,
    account_unlinked,
    email_verified,
    password_reset,
    session_revoked,
    user_signed_in,
    user_signed_out,
    user_signed_up,
)

__version__ = "0.1.0"

__all__ = [
    "ERROR_CODES",
    "Account",
    "AnonymousUser",
    "AuthError",
    "AuthSettings",
    "BetterAuth",
    "ConfigError",
    "Session",
    "User",
    "Verification",
    "account_linked",
    "account_unlinked",
    "authenticate",
    "current_session",
    "current_user",
    "email_verified",
    "fresh_login_required",
    "login_required",
    "login_user",
    "logout_user",
    "password_reset",
    "safe_next_url",
    "session_revoked",
    "user_signed_in",
    "user_signed_out",
    "user_signed_up",
]

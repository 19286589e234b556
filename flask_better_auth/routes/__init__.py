"""The auth blueprint: Better Auth's routes, one module per domain (like Better Auth's routes/)."""

from __future__ import annotations

# Each route module registers its endpoints on ``bp`` when imported.
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
from .base import bp

__all__ = [
    "bp",
    "email_verification",
    "ok",
    "password",
    "password_reset",
    "session",
    "sign_in",
    "sign_out",
    "sign_up",
    "user",
]

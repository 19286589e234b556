"""The auth blueprint: Better Auth's routes, one module per domain (like Better Auth's routes/)."""

from __future__ import annotations

# Each route module registers its endpoints on ``bp`` when imported.
from . import ok, password, session, sign_in, sign_out, sign_up, user
from .base import bp

__all__ = ["bp", "ok", "password", "session", "sign_in", "sign_out", "sign_up", "user"]

"""Password rules: lengths as Better Auth counts them, and checking a user's current password."""

from __future__ import annotations

import unicodedata

from .crypto import verify_password
from .errors import AuthError
from .settings import AuthSettings
from .state import storage


def js_length(text: str) -> int:
    """A string's length as JavaScript counts it (UTF-16 code units), as Better Auth checks it."""
    return len(text.encode("utf-16-le")) // 2


def check_max_length(password: str, conf: AuthSettings) -> None:
    """``400 PASSWORD_TOO_LONG`` before any hashing: every route that hashes or verifies a
    password calls this first.

    Better Auth counts the string as given; the hash takes its NFKC form, which can be longer
    (one character may become eighteen), so both must fit.
    """
    limit = conf.password.max_length
    if js_length(password) > limit or js_length(unicodedata.normalize("NFKC", password)) > limit:
        raise AuthError(400, "PASSWORD_TOO_LONG")


def check_length(password: str, conf: AuthSettings) -> None:
    """``400 PASSWORD_TOO_SHORT`` / ``PASSWORD_TOO_LONG`` by the configured bounds (a new
    password)."""
    if js_length(password) < conf.password.min_length:
        raise AuthError(400, "PASSWORD_TOO_SHORT")
    check_max_length(password, conf)


def check_current_password(user_id: str, password: str, conf: AuthSettings) -> None:
    """Verify the user's current password: 400 PASSWORD_TOO_LONG (before any lookup or hash),
    CREDENTIAL_ACCOUNT_NOT_FOUND or INVALID_PASSWORD."""
    check_max_length(password, conf)
    account = storage().accounts.credential(user_id)
    if account is None or not account.password:
        raise AuthError(400, "CREDENTIAL_ACCOUNT_NOT_FOUND")
    storage().commit()  # no transaction stays open during the hash
    if not verify_password(account.password, password, n=conf.password.scrypt_n):
        raise AuthError(400, "INVALID_PASSWORD")


__all__ = ["check_current_password", "check_length", "check_max_length", "js_length"]

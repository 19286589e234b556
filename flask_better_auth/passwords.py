"""Password rules: lengths as Better Auth counts them, checking credentials and a user's
current password."""

from __future__ import annotations

import unicodedata

from .crypto import burn_password_check, verify_password
from .errors import AuthError
from .models import User
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


def verify_credentials(email: str, password: str, conf: AuthSettings) -> User | None:
    """The user with this email and password, or ``None``: one password hash either way.

    An unknown email, a user without a password and a wrong password do the same work (a hash),
    so the time taken does not tell which emails have accounts. No transaction is held open
    during the hash. The caller has checked the email's form and the password's length.
    """
    n = conf.password.scrypt_n
    store = storage()
    user = store.users.by_email(email)
    account = store.accounts.credential(user.id) if user is not None else None
    if user is None or account is None or not account.password:
        burn_password_check(password, n=n)
        return None
    store.commit()  # end the read transaction: nothing is held open during the hash
    return user if verify_password(account.password, password, n=n) else None


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


__all__ = [
    "check_current_password",
    "check_length",
    "check_max_length",
    "js_length",
    "verify_credentials",
]

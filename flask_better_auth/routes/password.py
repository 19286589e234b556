"""``POST /change-password`` and ``POST /verify-password``, and the password length rules."""

from __future__ import annotations

import unicodedata
from typing import Any

from ..context import create_session, end_session
from ..crypto import hash_password, verify_password
from ..errors import AuthError
from ..schemas import Field
from ..settings import AuthSettings
from ..signals import session_revoked
from ..state import app_object, storage
from .base import NO_STORE, endpoint, json_response, require_session, settings


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


CHANGE_FIELDS = (
    Field("newPassword", required=True),
    Field("currentPassword", required=True),
    Field("revokeOtherSessions", "boolean"),
)


@endpoint("/change-password", fields=CHANGE_FIELDS, auth="sensitive")
def change_password(body: dict[str, Any]) -> Any:
    """Change the password; with ``revokeOtherSessions`` every session is replaced by a new one.

    Reset links still out for the user stop working
    (:meth:`~flask_better_auth.storage.AccountStore.set_password`).
    """
    conf = settings()
    _session, user = require_session("sensitive")
    new_password: str = body["newPassword"]
    check_length(new_password, conf)
    check_current_password(user.id, body["currentPassword"], conf)
    new_hash = hash_password(new_password, n=conf.password.scrypt_n)

    store = storage()
    account = store.accounts.credential(user.id)
    if account is None:  # deleted meanwhile
        raise AuthError(400, "CREDENTIAL_ACCOUNT_NOT_FOUND")
    store.accounts.set_password(user.id, new_hash, account=account)
    token = None
    if body.get("revokeOtherSessions"):
        store.sessions.delete_for_user(user.id)
        end_session()
        token = create_session(user).token
    store.commit()
    if token is not None:
        session_revoked.send(
            app_object(),
            user_id=user.id,
            tokens=None,
        )
    return json_response({"token": token, "user": user.to_json()}, headers=NO_STORE)


@endpoint("/verify-password", fields=(Field("password", required=True),), auth="sensitive")
def verify_password_route(body: dict[str, Any]) -> Any:
    """Check the signed-in user's password: ``{"status": true}`` or 400 INVALID_PASSWORD."""
    conf = settings()
    _, user = require_session("sensitive")
    check_current_password(user.id, body["password"], conf)
    return {"status": True}

"""``POST /change-password`` and ``POST /verify-password``."""

from __future__ import annotations

from typing import Any

from ..context import create_session, end_session
from ..crypto import hash_password
from ..endpoints import NO_STORE, Endpoints, json_response
from ..errors import AuthError
from ..models import User
from ..passwords import check_current_password, check_length
from ..schemas import Field
from ..signals import session_revoked
from ..state import app_object, settings, storage

routes = Endpoints()


CHANGE_FIELDS = (
    Field("newPassword", required=True),
    Field("currentPassword", required=True),
    Field("revokeOtherSessions", "boolean"),
)


@routes.endpoint("/change-password", fields=CHANGE_FIELDS, auth="sensitive")
def change_password(body: dict[str, Any], user: User) -> Any:
    """Change the password; with ``revokeOtherSessions`` every session is replaced by a new one.

    Reset links still out for the user stop working
    (:meth:`~flask_better_auth.storage.AccountStore.set_password`).
    """
    conf = settings()
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


@routes.endpoint("/verify-password", fields=(Field("password", required=True),), auth="sensitive")
def verify_password_route(body: dict[str, Any], user: User) -> Any:
    """Check the signed-in user's password: ``{"status": true}`` or 400 INVALID_PASSWORD."""
    conf = settings()
    check_current_password(user.id, body["password"], conf)
    return {"status": True}

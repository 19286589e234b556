"""``POST /sign-up/email``: create a user and its credential account, then sign in."""

from __future__ import annotations

from typing import Any

from ..context import create_session
from ..crypto import generate_id, hash_password
from ..email_links import send_verification
from ..endpoints import NO_STORE, Endpoints, json_response
from ..errors import AuthError
from ..models import User, utcnow
from ..passwords import check_length
from ..schemas import Field
from ..signals import user_signed_in, user_signed_up
from ..state import app_object, settings, state, storage
from ..storage import Conflict

routes = Endpoints()

FIELDS = (
    Field("name", required=True),
    Field("email", "email", required=True),
    Field("password", required=True),
    Field("image", nullable=True),
    Field("callbackURL"),
    Field("rememberMe", "boolean"),
)


def _synthetic_user(name: str, email: str, image: str | None) -> dict[str, Any]:
    """The answer for an existing email when the answer must not tell (generic mode)."""
    now = utcnow()
    return User(
        id=generate_id(),
        name=name,
        email=email,
        email_verified=False,
        image=None,
        created_at=now,
        updated_at=now,
    ).to_json()


def _answer(token: str | None, user: dict[str, Any]) -> Any:
    # The same headers whether or not the email was taken: the answer must not tell.
    return json_response({"token": token, "user": user}, headers=NO_STORE)


@routes.endpoint("/sign-up/email", fields=FIELDS, allow_form=True, form_csrf=True)
def sign_up_email(body: dict[str, Any]) -> Any:
    """Sign up with email and password; the user and credential account commit together."""
    conf = settings()
    if not conf.password.enabled or conf.password.disable_sign_up:
        raise AuthError(400, "EMAIL_PASSWORD_SIGN_UP_DISABLED")
    password: str = body["password"]
    check_length(password, conf)
    email = body["email"].lower()
    name: str = body["name"]
    image = body.get("image")
    # Users sign in only after verifying, or not automatically: the answer must not reveal
    # whether the email was taken ("generic duplicate" mode).
    generic = conf.password.require_email_verification or not conf.password.auto_sign_in

    # Hash before any database work: a slow hash inside a transaction stalls every writer.
    password_hash = hash_password(password, n=conf.password.scrypt_n)

    store = storage()
    if store.users.by_email(email) is not None:
        if generic:
            return _answer(None, _synthetic_user(name, email, image))
        raise AuthError(422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")

    try:
        user = store.users.create(name, email, password_hash=password_hash, image=image)
    except Conflict:  # taken meanwhile: a concurrent sign-up of this email won (rolled back)
        if generic:
            return _answer(None, _synthetic_user(name, email, image))
        raise AuthError(422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL") from None
    session = None
    if not generic:
        session = create_session(user, dont_remember=body.get("rememberMe") is False)
    store.commit()

    app = app_object()
    user_signed_up.send(app, user=user)
    if session is not None:
        user_signed_in.send(app, user=user, session=session)
    if conf.email.send_on_sign_up and state().mailer.can_send("verification"):
        send_verification(user, body.get("callbackURL"))
    return _answer(session.token if session else None, user.to_json())

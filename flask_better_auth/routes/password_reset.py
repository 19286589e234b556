"""Password reset: request-password-reset, the emailed link, and reset-password."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from flask import request

from ..crypto import generate_id, hash_password
from ..email_links import auth_url
from ..endpoints import Endpoints, redirect_response
from ..errors import AuthError
from ..models import utcnow
from ..origin import check_redirect_target
from ..passwords import check_length
from ..schemas import Field
from ..signals import password_reset
from ..state import app_object, settings, state, storage

routes = Endpoints()

RESET_MESSAGE = "If this email exists in our system, check your email for the reset link"


def _identifier(token: str) -> str:
    return f"reset-password:{token}"


REQUEST_FIELDS = (Field("email", "email", required=True), Field("redirectTo"))


@routes.endpoint("/request-password-reset", fields=REQUEST_FIELDS)
def request_password_reset(body: dict[str, Any]) -> Any:
    """Email a reset link when the address has an account; the answer is the same either way.

    Both cases do the same work before answering, so its timing does not tell either: an
    unknown address stores a decoy token of the same shape (its value a random id that is no
    user's, its token never sent, so it can never be used; it expires like any other), and
    the mail goes out after the response.
    """
    conf = settings()
    mailer = state().mailer
    if not mailer.can_send("reset-password"):
        raise AuthError(400, "RESET_PASSWORD_DISABLED", "Reset password isn't enabled")
    store = storage()
    user = store.users.by_email(body["email"])
    token = generate_id(24)
    owner = user.id if user is not None else generate_id()
    store.verifications.create(
        _identifier(token), owner, utcnow() + conf.email.reset_password_token_expires_in
    )
    store.commit()
    callback = quote(body.get("redirectTo") or "", safe="")
    url = f"{auth_url()}/reset-password/{token}?callbackURL={callback}"
    if user is not None:
        mailer.send("reset-password", user=user, url=url, token=token)
    return {"status": True, "message": RESET_MESSAGE}


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


@routes.endpoint("/reset-password/<token>", methods=("GET",))
def reset_password_link(token: str) -> Any:
    """The emailed link: 302 to ``callbackURL?token=…`` (or ``?error=INVALID_TOKEN``).

    Without a callbackURL (reset requested without ``redirectTo``) it goes to
    ``BETTER_AUTH_RESET_PASSWORD_PAGE``, or, unset, to Better Auth's dead end ``/error``.
    """
    conf = settings()
    callback_url = request.args.get("callbackURL")
    if callback_url is None and conf.reset_password_page is None:
        raise AuthError(
            400,
            "VALIDATION_ERROR",
            "[query.callbackURL] Invalid input: expected string, received undefined",
        )
    callback_url = callback_url or conf.reset_password_page
    if not callback_url:
        return redirect_response(f"{auth_url()}/error?error=INVALID_TOKEN")
    check_redirect_target(callback_url, "callbackURL", "INVALID_CALLBACK_URL", conf, request)
    target = urljoin(f"{auth_url()}/", callback_url)
    valid = storage().verifications.find(_identifier(token)) is not None
    params = {"token": token} if valid else {"error": "INVALID_TOKEN"}
    return redirect_response(_with_query(target, **params))


RESET_FIELDS = (Field("newPassword", required=True), Field("token"))


@routes.endpoint("/reset-password", fields=RESET_FIELDS)
def reset_password(body: dict[str, Any]) -> Any:
    """Set a new password with a reset token; the token works once (even under a race), and
    the user's other reset tokens die with it."""
    conf = settings()
    token = body.get("token") or request.args.get("token")
    if not token:
        raise AuthError(400, "INVALID_TOKEN")
    new_password: str = body["newPassword"]
    check_length(new_password, conf)
    # Hash before the transaction: the token is consumed and the password set in one commit.
    new_hash = hash_password(new_password, n=conf.password.scrypt_n)
    store = storage()
    user_id = store.verifications.consume(_identifier(token))
    if user_id is None:
        raise AuthError(400, "INVALID_TOKEN")
    user = store.users.get(user_id)
    if user is None:
        raise AuthError(400, "USER_NOT_FOUND")
    store.accounts.set_password(user.id, new_hash)
    if conf.email.revoke_sessions_on_password_reset:
        store.sessions.delete_for_user(user.id)
    store.commit()
    password_reset.send(app_object(), user=user)
    hook = state().on_password_reset
    if hook is not None:
        hook(user=user)
    return {"status": True}

"""Email verification and change of email: verify-email, send-verification-email, change-email.

Better Auth's links are stateless JWTs that work until they expire. Here each works once:

* following a link records it as spent (a verification value ``used-link:<SHA-256 of the
  token>`` until the token's own expiry, in the same transaction as its effect), and a spent
  link answers ``INVALID_TOKEN``, whatever happened since (an address changed back, say);
* its effect is one conditional ``UPDATE``: the address is verified only while unverified, and
  changed only while it is still the address the link was issued for. Of two requests racing
  with one link, one wins; the other changes nothing.

A change to an address another account took meanwhile answers ``USER_ALREADY_EXISTS`` (422),
also when two users race to the same address (the unique index decides).
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from typing import Any

from flask import request

from ..context import auth_context, create_session, resolve_session
from ..crypto import generate_id
from ..email_links import send_verification, verification_link
from ..endpoints import Endpoints, redirect_response
from ..errors import AuthError
from ..models import User
from ..origin import check_redirect_target
from ..schemas import Field
from ..signals import email_verified
from ..state import app_object, settings, state, storage
from ..storage import Conflict
from ..tokens import verify_jwt

routes = Endpoints()

#: The anonymous answer takes at least this long, whether or not a mail went out.
ANONYMOUS_FLOOR_SECONDS = 0.5


def _fail(callback_url: str | None, code: str, status: int = 401) -> Any:
    if callback_url:
        separator = "&" if "?" in callback_url else "?"
        return redirect_response(f"{callback_url}{separator}error={code}")
    raise AuthError(status, code)


def _spent_identifier(token: str) -> str:
    return "used-link:" + hashlib.sha256(token.encode()).hexdigest()


def _spent(token: str) -> bool:
    """Whether this link was followed already."""
    return storage().verifications.find(_spent_identifier(token)) is not None


def _spend(token: str, claims: dict[str, Any], user: User) -> None:
    """Record the link as followed until it expires anyway (the caller commits)."""
    expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    storage().verifications.create(_spent_identifier(token), user.id, expires_at)


def _done(callback_url: str | None, body: dict[str, Any]) -> Any:
    return redirect_response(callback_url) if callback_url else body


@routes.endpoint("/verify-email", methods=("GET",))
def verify_email() -> Any:
    """Follow a verification link: verify the address, or carry out a change of email."""
    conf = settings()
    callback_url = request.args.get("callbackURL") or None
    check_redirect_target(callback_url, "callbackURL", "INVALID_CALLBACK_URL", conf, request)
    token = request.args.get("token")
    if not token:
        raise AuthError(
            400,
            "VALIDATION_ERROR",
            "[query.token] Invalid input: expected string, received undefined",
        )
    try:
        claims = verify_jwt(token, conf.secrets)
    except AuthError as error:
        return _fail(callback_url, error.code or "INVALID_TOKEN")
    if _spent(token):
        return _fail(callback_url, "INVALID_TOKEN")
    email = str(claims.get("email", "")).lower()
    store = storage()
    user = store.users.by_email(email) if email else None
    if user is None:
        return _fail(callback_url, "USER_NOT_FOUND")
    if claims.get("userId") is not None and claims["userId"] != user.id:
        return _fail(callback_url, "INVALID_TOKEN")

    update_to = claims.get("updateTo")
    if update_to:
        return _change_email(user, str(update_to).lower(), token, claims, callback_url)

    _spend(token, claims, user)
    # Already verified (by another link, or this one in a concurrent request): Better Auth's
    # answer, without signing in.
    if user.email_verified or not store.users.update_if(
        user, {"email": user.email, "email_verified": False}, email_verified=True
    ):
        store.commit()
        return _done(callback_url, {"status": True, "user": None})
    if conf.email.auto_sign_in_after_verification:
        current = resolve_session()
        if current is None or current[1].id != user.id:
            create_session(user)
    store.commit()
    store.sessions.refresh_user(user)
    email_verified.send(app_object(), user=user)
    return _done(callback_url, {"status": True, "user": None})


def _change_email(
    user: User, new_email: str, token: str, claims: dict[str, Any], callback_url: str | None
) -> Any:
    if claims.get("userId") is None:
        return _fail(callback_url, "INVALID_TOKEN")
    current = resolve_session()
    if current is not None and current[1].id != user.id:
        return _fail(callback_url, "INVALID_USER")
    request_type = claims.get("requestType")
    if request_type == "change-email-confirmation":
        # The old address approved: now prove the new one.
        _spend(token, claims, user)
        storage().commit()
        url, token = verification_link(
            {
                "email": user.email,
                "updateTo": new_email,
                "requestType": "change-email-verification",
                "userId": user.id,
            },
            callback_url,
        )
        state().mailer.send("verification", user=user, url=url, token=token, to=new_email)
        return _done(callback_url, {"status": True})
    store = storage()
    if store.users.by_email(new_email) is not None:
        return _fail(callback_url, "USER_ALREADY_EXISTS", 422)
    try:
        # The link reached the new address: it is verified (a legacy token without
        # requestType verifies nothing, as in Better Auth).
        changed = store.users.update_if(
            user,
            {"email": user.email},
            email=new_email,
            email_verified=request_type == "change-email-verification",
        )
    except Conflict:  # another account took the address meanwhile (rolled back)
        return _fail(callback_url, "USER_ALREADY_EXISTS", 422)
    if not changed:  # the address changed since the link was issued
        store.rollback()
        return _fail(callback_url, "INVALID_TOKEN")
    _spend(token, claims, user)
    store.commit()
    store.sessions.refresh_user(user)
    if current is not None:
        ctx = auth_context()
        ctx.user = user  # the session's user may be a cached copy
        ctx.mark_set()
    if request_type != "change-email-verification" and state().mailer.can_send("verification"):
        send_verification(user, callback_url)
    return _done(callback_url, {"status": True, "user": user.to_json()})


SEND_FIELDS = (Field("email", "email", required=True), Field("callbackURL"))


@routes.endpoint("/send-verification-email", fields=SEND_FIELDS)
def send_verification_email(body: dict[str, Any]) -> Any:
    """(Re)send the verification link. Anonymous callers learn nothing about the address."""
    if not state().mailer.can_send("verification"):
        raise AuthError(400, "VERIFICATION_EMAIL_NOT_ENABLED")
    email = body["email"].lower()
    callback_url = body.get("callbackURL")
    resolved = resolve_session()
    if resolved is None:
        # The same work whatever the address (the link is signed either way, the mail goes
        # out after the response), then Better Auth's floor on top.
        started = time.monotonic()
        user = storage().users.by_email(email)
        storage().commit()
        if user is not None and not user.email_verified:
            send_verification(user, callback_url)
        else:
            verification_link({"email": email, "userId": generate_id()}, callback_url)
        remaining = ANONYMOUS_FLOOR_SECONDS - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        return {"status": True}
    _, user = resolved
    if user.email != email:
        raise AuthError(400, "EMAIL_MISMATCH")
    if user.email_verified:
        raise AuthError(400, "EMAIL_ALREADY_VERIFIED")
    send_verification(user, callback_url)
    return {"status": True}


CHANGE_FIELDS = (Field("newEmail", "email", required=True), Field("callbackURL"))


@routes.endpoint("/change-email", fields=CHANGE_FIELDS, auth="sensitive")
def change_email(body: dict[str, Any], user: User) -> Any:
    """Start a change of email (confirm with the old address, or verify the new one)."""
    conf = settings()
    mailer = state().mailer
    if not conf.email.change_email_enabled:
        raise AuthError(400, "CHANGE_EMAIL_DISABLED")
    new_email = body["newEmail"].lower()
    callback_url = body.get("callbackURL")
    if new_email == user.email:
        raise AuthError(400, None, "Email is the same")
    can_verify = mailer.can_send("verification")
    # The setting, or a send_change_email_confirmation callback, turns the step on.
    can_confirm = (
        conf.email.send_change_email_confirmation or "change-email-confirmation" in mailer.callbacks
    ) and mailer.can_send("change-email-confirmation")
    direct = conf.email.update_email_without_verification and not user.email_verified
    if not (direct or can_verify or can_confirm):
        raise AuthError(400, None, "Verification email isn't enabled")
    store = storage()
    if store.users.by_email(new_email) is not None:
        # Same answer and similar work as a real change: the address's owner stays unknown.
        verification_link({"email": user.email, "updateTo": new_email}, callback_url)
        store.commit()
        return {"status": True}
    if direct:
        try:  # the session may come from Redis: the row is updated
            user = store.users.update(user, email=new_email)
        except Conflict:  # taken meanwhile: the same answer as a taken address
            return {"status": True}
        store.commit()
        store.sessions.refresh_user(user)
        ctx = auth_context()
        ctx.user = user
        ctx.mark_set()
        if can_verify:
            send_verification(user, callback_url)
        return {"status": True}
    claims = {"email": user.email, "updateTo": new_email, "userId": user.id}
    store.commit()
    if user.email_verified and can_confirm:
        url, token = verification_link(
            {**claims, "requestType": "change-email-confirmation"}, callback_url
        )
        mailer.send(
            "change-email-confirmation", user=user, url=url, token=token, new_email=new_email
        )
        return {"status": True}
    if not can_verify:
        raise AuthError(400, None, "Verification email isn't enabled")
    url, token = verification_link(
        {**claims, "requestType": "change-email-verification"}, callback_url
    )
    mailer.send("verification", user=user, url=url, token=token, to=new_email)
    return {"status": True}

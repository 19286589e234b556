"""``POST /sign-in/email``."""

from __future__ import annotations

from typing import Any

from flask import request

from ..context import create_session
from ..decorators import wants_html
from ..email_links import send_verification
from ..endpoints import NO_STORE, Endpoints, json_response, redirect_response
from ..errors import AuthError
from ..passwords import check_max_length, verify_credentials
from ..schemas import FORM, Field, is_email
from ..signals import user_signed_in
from ..state import app_object, settings, state, storage

routes = Endpoints()

FIELDS = (
    Field("email", required=True),
    Field("password", required=True),
    Field("callbackURL"),
    Field("rememberMe", "boolean"),
)


@routes.endpoint("/sign-in/email", fields=FIELDS, allow_form=True, form_csrf=True)
def sign_in_email(body: dict[str, Any]) -> Any:
    """Sign in with email and password.

    Unknown email, no password and wrong password all answer the same 401, after the same work.
    """
    conf = settings()
    if not conf.password.enabled:
        raise AuthError(400, "EMAIL_PASSWORD_DISABLED")
    email: str = body["email"]
    password: str = body["password"]
    if not is_email(email):
        raise AuthError(400, "INVALID_EMAIL")
    check_max_length(password, conf)
    user = verify_credentials(email, password, conf)
    if user is None:
        raise AuthError(401, "INVALID_EMAIL_OR_PASSWORD")
    if conf.password.require_email_verification and not user.email_verified:
        if conf.email.send_on_sign_in and state().mailer.can_send("verification"):
            send_verification(user, body.get("callbackURL"))
        raise AuthError(403, "EMAIL_NOT_VERIFIED")

    session = create_session(user, dont_remember=body.get("rememberMe") is False)
    storage().commit()
    user_signed_in.send(app_object(), user=user, session=session)
    callback = body.get("callbackURL")
    if callback and request.mimetype == FORM and wants_html():
        # A plain HTML form cannot read JSON: send the browser on to the page (303: GET it).
        # Better Auth answers JSON here; JSON and fetch clients still get that answer.
        return redirect_response(callback, status=303)
    data: dict[str, Any] = {"redirect": bool(callback), "token": session.token}
    if callback:
        data["url"] = callback
    data["user"] = user.to_json()
    return json_response(data, headers={**NO_STORE, "Location": callback} if callback else NO_STORE)

"""Sign a user in or out from the app's own views, for apps with a login form of their own.

The same steps as the auth routes: :func:`authenticate` checks a password as
``/sign-in/email`` does, :func:`login_user` creates the session as sign-in does (its cookie is
written by the ``after_request`` hook), :func:`logout_user` revokes it as ``/sign-out`` does.
"""

from __future__ import annotations

from flask import request

from .context import auth_context, create_session, end_session
from .errors import AuthError
from .models import Session, User
from .origin import check_redirect_target
from .passwords import check_max_length, verify_credentials
from .schemas import is_email
from .signals import session_revoked, user_signed_in, user_signed_out
from .state import app_object, settings, storage


def authenticate(email: str, password: str) -> User | None:
    """The user whose email and password these are, or ``None``.

    The same checks as ``/sign-in/email``, with the same work whether or not the email is known
    (one password hash either way), so the time taken does not tell which emails have
    accounts. ``None`` also when email + password sign-in is off, the email is malformed or the
    password longer than ``BETTER_AUTH_MAX_PASSWORD_LENGTH`` (answered before any hashing).
    ``email_verified`` is not checked here: :func:`login_user` refuses an unverified user while
    ``BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION`` is on.

    :param email: the address as typed (compared lower-cased, as stored).
    :param password: the password as typed.
    """
    conf = settings()
    if not conf.password.enabled or not isinstance(email, str) or not isinstance(password, str):
        return None
    if not is_email(email):
        return None
    try:
        check_max_length(password, conf)  # the typed and the NFKC length, before any hash
    except AuthError:
        return None
    return verify_credentials(email, password, conf)


def login_user(user: User, *, remember: bool = True, force: bool = False) -> Session | None:
    """Sign ``user`` in: create a session and send its cookie with the response.

    What ``/sign-in/email`` does once the password is checked: the session is stored (database
    and/or secondary storage) and **committed, with whatever else the database session holds**,
    :data:`~flask_better_auth.user_signed_in` is sent, and the response of this request carries
    the session cookie (and ``set-auth-token``). :data:`~flask_better_auth.current_user` is
    ``user`` for the rest of the request. Call it from a view (a request context is needed).

    :param user: the user to sign in.
    :param remember: ``False`` is Better Auth's ``rememberMe: false``: a one-day session whose
        cookie ends with the browser session.
    :param force: sign in a user whose :attr:`~flask_better_auth.User.is_active` is ``False``
        (an unverified email while verification is required).
    :return: the new session, or ``None`` when ``user`` is not active (nothing was done).
    """
    if not force and not user.is_active:
        return None
    session = create_session(user, dont_remember=not remember)
    storage().commit()
    user_signed_in.send(app_object(), user=user, session=session)
    return session


def logout_user() -> bool:
    """Sign the request's user out, as ``/sign-out`` does.

    The session of the request's cookie (or Bearer token) is deleted from storage, the
    response expires the session cookies, :data:`~flask_better_auth.session_revoked` and
    :data:`~flask_better_auth.user_signed_out` are sent, and
    :data:`~flask_better_auth.current_user` is anonymous for the rest of the request.

    :return: whether a session was deleted.
    """
    ctx = auth_context()
    user_id = None
    if ctx.token:
        user_id = storage().sessions.delete_token(ctx.token)
        storage().commit()
        app = app_object()
        if user_id is not None:
            session_revoked.send(app, user_id=user_id, tokens=[ctx.token])
        user_signed_out.send(app, user_id=user_id)
    end_session()
    return user_id is not None


def safe_next_url(target: str | None, default: str = "/") -> str:
    """``target`` when it is safe to redirect to after signing in, else ``default``.

    Safe means what ``callbackURL`` must be on the auth routes: a path on this site (``/…``, not
    ``//host`` or ``/\\host``) or a URL on a trusted origin (``BETTER_AUTH_BASE_URL``,
    ``BETTER_AUTH_TRUSTED_ORIGINS``). For the ``next`` a login view receives, which anyone can
    put in a link::

        return redirect(safe_next_url(request.args.get("next"), url_for("index")))

    :param target: the requested URL, typically ``request.args.get("next")``.
    :param default: where to go instead.
    """
    if not target or not isinstance(target, str):
        return default
    try:
        check_redirect_target(target, "next", "INVALID_REDIRECT_URL", settings(), request)
    except AuthError:
        return default
    return target


__all__ = ["authenticate", "login_user", "logout_user", "safe_next_url"]

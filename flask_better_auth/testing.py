"""Helpers for testing your own app: a test client that is signed in and sends a trusted Origin.

::

    from flask_better_auth.testing import AuthTestClient, create_user

    app.test_client_class = AuthTestClient
    user = create_user(app, "ann@example.com")
    client = app.test_client(user=user)        # signed in, no password needed
    client.post("/api/auth/sign-out")          # Origin: BETTER_AUTH_BASE_URL's origin

See :doc:`testing` for why the Origin matters.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect

from .context import create_session
from .cookies import encode_signed
from .crypto import hash_password
from .models import Session, User
from .state import settings, storage

_DEFAULT: Any = object()


def _origin_of(app: Flask) -> str:
    """The origin the auth routes trust without configuration: the base URL's."""
    return state_of(app).settings.base_origin or "http://localhost"


def state_of(app: Flask) -> Any:
    """``app.extensions["better_auth"]``, with a clear error when the extension is missing."""
    try:
        return app.extensions["better_auth"]
    except KeyError:
        raise RuntimeError("BetterAuth is not registered on this app.") from None


class AuthTestClient(FlaskClient):
    """A :class:`~flask.testing.FlaskClient` for apps using flask-better-auth.

    * Every request carries an ``Origin`` header, the origin of ``BETTER_AUTH_BASE_URL``
      (``http://localhost`` without one), so cookie-carrying ``POST``\\ s pass the CSRF check
      as a browser's would. A request's own ``headers={"Origin": …}`` wins.
    * :meth:`sign_in` signs a user in without a password: the session is created directly in
      storage and its cookie put in the client's cookie jar.

    Use it as the app's client class, ``app.test_client_class = AuthTestClient``, then
    ``app.test_client()``; or build one with :func:`signed_in_client`.

    :param user: sign this user (a :class:`~flask_better_auth.User` or an email) in at once,
        like Flask-Login's ``app.test_client(user=user)``.
    :param remember: with ``user``: ``False`` makes a "don't remember" session.
    :param origin: the ``Origin`` to send; ``None`` sends none (to test the check itself).
    """

    def __init__(
        self,
        *args: Any,
        user: User | str | None = None,
        remember: bool = True,
        origin: str | None = _DEFAULT,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if origin is _DEFAULT:
            origin = _origin_of(self.application)
        if origin is not None:
            self.environ_base["HTTP_ORIGIN"] = origin
        if user is not None:
            self.sign_in(user, remember=remember)

    def sign_in(self, user: User | str, *, remember: bool = True) -> Session:
        """Create a session for ``user`` directly in storage and keep its cookie.

        No password, no request to ``/sign-in/email``, no scrypt: fast enough for every test.
        The session is stored as sign-in stores it (database and/or secondary storage); no
        signal is sent.

        :param user: a :class:`~flask_better_auth.User` or the email of one.
        :param remember: ``False`` makes a "don't remember" session (one day, and the
            ``dont_remember`` cookie).
        :return: the session (its ``token`` also works as ``Authorization: Bearer``).
        :raises LookupError: no such user.
        """
        app = self.application
        with app.test_request_context(headers={"User-Agent": "AuthTestClient"}):
            found = _load_user(user)
            session = create_session(found, dont_remember=not remember)
            storage().commit()
            conf = settings()
        domain = self._cookie_domain()
        self.set_cookie(
            conf.cookies.session_token, encode_signed(conf.secret, session.token), domain=domain
        )
        if remember:
            self.delete_cookie(conf.cookies.dont_remember, domain=domain)
        else:
            self.set_cookie(
                conf.cookies.dont_remember, encode_signed(conf.secret, "true"), domain=domain
            )
        # A cookie cache of an earlier session must not answer for this one.
        self.delete_cookie(conf.cookies.session_data, domain=domain)
        return session

    def sign_out(self) -> None:
        """Sign out through ``POST /sign-out``, as the app's pages would."""
        conf = state_of(self.application).settings
        response = self.post(
            f"{conf.base_path}/sign-out", json={}, headers={"Origin": _origin_of(self.application)}
        )
        if response.status_code != 200:
            raise AssertionError(f"sign-out answered {response.status_code}: {response.text}")

    def _cookie_domain(self) -> str:
        server_name = self.application.config.get("SERVER_NAME") or "localhost"
        return str(server_name).split(":")[0]


def signed_in_client(
    app: Flask, user: User | str, *, remember: bool = True, **kwargs: Any
) -> AuthTestClient:
    """A new :class:`AuthTestClient` for ``app``, signed in as ``user``.

    :param user: a :class:`~flask_better_auth.User` or the email of one.
    :param remember: ``False`` makes a "don't remember" session.
    :param kwargs: for :class:`AuthTestClient` (``origin=``, ``use_cookies=``…).
    """
    return AuthTestClient(app, app.response_class, user=user, remember=remember, **kwargs)


def create_user(
    app: Flask,
    email: str,
    *,
    name: str = "",
    password: str | None = None,
    email_verified: bool = True,
) -> User:
    """Add a user to the app's database and commit; for tests.

    :param email: the address (stored lower-cased).
    :param name: the display name (the address's local part when empty).
    :param password: give one to sign in with it through ``/sign-in/email`` too (hashed with
        the app's ``BETTER_AUTH_SCRYPT_N``); without one the user has no password.
    :param email_verified: verified by default, so ``BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION``
        does not get in the way.
    """
    with app.app_context():
        conf = settings()
        display = name or email.split("@")[0]
        password_hash = None
        if password is not None:
            password_hash = hash_password(password, n=conf.password.scrypt_n)
        store = storage()
        user = store.users.create(
            display, email, password_hash=password_hash, verified=email_verified
        )
        store.commit()
        return user


def _load_user(user: User | str) -> User:
    users = storage().users
    if isinstance(user, User):
        # The identity key, not user.id: an instance from a closed session may be expired.
        identity = inspect(user).identity
        user_id = identity[0] if identity else user.id
        found = users.get(user_id)
        if found is None:
            raise LookupError(f"no user with id {user_id!r} in the database")
        return found
    by_email = users.by_email(user)
    if by_email is None:
        raise LookupError(f"no user with email {user!r}: create one first (create_user)")
    return by_email


__all__ = ["AuthTestClient", "create_user", "signed_in_client"]

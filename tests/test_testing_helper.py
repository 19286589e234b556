"""``flask_better_auth.testing``, used the way an app's own test suite would use it."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import pytest
from conftest import PASSWORD, make_app, set_cookies, sign_in, sign_up
from flask import Flask
from sqlalchemy import select

from flask_better_auth.cookies import encode_signed
from flask_better_auth.models import Session
from flask_better_auth.testing import AuthTestClient, create_user, signed_in_client

AUTH = "/api/auth"
SESSION_COOKIE = "better-auth.session-token"
DONT_REMEMBER = "better-auth.dont-remember"


def error_code(response: Any) -> tuple[int, str]:
    return response.status_code, response.get_json()["code"]


@pytest.fixture
def user_app(app: Flask) -> Flask:
    """The app under test, with the helper's client as its test client (as a user sets it)."""
    app.test_client_class = AuthTestClient
    return app


def test_a_plain_test_client_sends_no_origin(app: Flask) -> None:
    """Why the helper exists: a cookie-carrying POST needs a trusted Origin."""
    client = app.test_client()
    sign_up(client)  # conftest sends Origin itself
    response = client.post(f"{AUTH}/update-user", json={"name": "Bo"})
    assert error_code(response) == (403, "MISSING_OR_NULL_ORIGIN")


def test_signed_in_without_a_password(user_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    user = create_user(user_app, "ann@example.com", name="Ann")
    hashes: list[int] = []
    real = hashlib.scrypt

    def scrypt(password: bytes, **kwargs: Any) -> bytes:
        hashes.append(kwargs["n"])
        return real(password, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", scrypt)
    client = user_app.test_client(user=user)  # Flask-Login's FlaskLoginClient spelling
    assert hashes == []  # no scrypt: signing in costs a row, not a password hash

    me = client.get("/api/me")
    assert me.status_code == 200
    assert me.get_json()["user"]["email"] == "ann@example.com"
    # Cookie-carrying POSTs to the auth routes pass the Origin check.
    response = client.post(f"{AUTH}/update-user", json={"name": "Bo"})
    assert response.status_code == 200, response.text
    assert client.get("/api/me").get_json()["user"]["name"] == "Bo"
    client.sign_out()
    assert client.get("/api/me").status_code == 401
    with user_app.app_context():
        db = user_app.extensions["better_auth"].db
        assert db.session.execute(select(Session)).all() == []


def test_the_session_is_a_real_one(user_app: Flask) -> None:
    create_user(user_app, "ann@example.com")
    client = user_app.test_client()
    session = client.sign_in("ann@example.com")
    now = datetime.now(UTC)
    assert timedelta(days=6, hours=23) < session.expires_at - now <= timedelta(days=7)
    got = client.get(f"{AUTH}/get-session").get_json()
    assert got["session"]["token"] == session.token
    assert got["session"]["userAgent"] == "AuthTestClient"
    # The token also works as a Bearer token, from a client without cookies.
    bare = user_app.test_client(use_cookies=False)
    response = bare.get("/api/me", headers={"Authorization": f"Bearer {session.token}"})
    assert response.status_code == 200


def test_sign_in_with_remember_false(user_app: Flask) -> None:
    create_user(user_app, "ann@example.com")
    client = signed_in_client(user_app, "ann@example.com", remember=False)
    assert client.get_cookie(DONT_REMEMBER) is not None
    got = client.get(f"{AUTH}/get-session").get_json()
    expires = datetime.fromisoformat(got["session"]["expiresAt"].replace("Z", "+00:00"))
    assert expires - datetime.now(UTC) <= timedelta(days=1)
    # Signing in again with remember on drops the dont-remember cookie.
    client.sign_in("ann@example.com")
    assert client.get_cookie(DONT_REMEMBER) is None


def test_switching_users(user_app: Flask) -> None:
    ann = create_user(user_app, "ann@example.com")
    bob = create_user(user_app, "bob@example.com")
    client = user_app.test_client(user=ann)
    assert client.get("/api/me").get_json()["user"]["id"] == ann.id
    client.sign_in(bob)
    assert client.get("/api/me").get_json()["user"]["id"] == bob.id


def test_a_user_made_through_the_api_or_with_a_password(user_app: Flask) -> None:
    create_user(user_app, "pat@example.com", password=PASSWORD)
    assert sign_in(user_app.test_client(), "pat@example.com").status_code == 200
    account = sign_up(user_app.test_client(), "zed@example.com")
    client = signed_in_client(user_app, "ZED@example.com")  # emails compare lower-cased
    assert client.get("/api/me").get_json()["user"]["id"] == account.user["id"]


def test_unknown_users_are_an_error(user_app: Flask) -> None:
    client = user_app.test_client()
    with pytest.raises(LookupError, match="create_user"):
        client.sign_in("nobody@example.com")
    ghost = create_user(user_app, "ghost@example.com")
    with user_app.app_context():
        db = user_app.extensions["better_auth"].db
        db.session.delete(db.session.get(type(ghost), ghost.id))
        db.session.commit()
    with pytest.raises(LookupError, match=ghost.id):
        client.sign_in(ghost)


def test_origin_can_be_overridden_or_left_out(user_app: Flask) -> None:
    create_user(user_app, "ann@example.com")
    client = signed_in_client(user_app, "ann@example.com")
    evil = client.post(
        f"{AUTH}/update-user", json={"name": "X"}, headers={"Origin": "https://evil.example"}
    )
    assert error_code(evil) == (403, "INVALID_ORIGIN")
    silent = signed_in_client(user_app, "ann@example.com", origin=None)
    response = silent.post(f"{AUTH}/update-user", json={"name": "X"})
    assert error_code(response) == (403, "MISSING_OR_NULL_ORIGIN")


def test_origin_follows_the_base_url(database_url: str) -> None:
    app = make_app(database_url, BASE_URL="https://app.example.com")
    try:
        create_user(app, "ann@example.com")
        client = signed_in_client(app, "ann@example.com")
        assert client.environ_base["HTTP_ORIGIN"] == "https://app.example.com"
        response = client.post(f"{AUTH}/update-user", json={"name": "Bo"})
        assert response.status_code == 200, response.text
        # The session cookie works for the test client's default host.
        assert client.get("/api/me").status_code == 200
    finally:
        with app.app_context():
            app.extensions["better_auth"].db.engine.dispose()


@pytest.fixture
def redis_app(database_url: str) -> Iterator[Flask]:
    redis = pytest.importorskip("redis")
    url = os.environ.get("FBA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"fba-test:{uuid.uuid4().hex}:"
    app = make_app(
        database_url,
        SECONDARY_STORAGE_URL=url,
        SECONDARY_STORAGE_PREFIX=prefix,
        STORE_SESSION_IN_DATABASE=False,
    )
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()
    app.extensions["better_auth"].secondary.close()
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_sessions_kept_only_in_redis(redis_app: Flask) -> None:
    """The session goes where sign-in would put it: here Redis, not the database."""
    create_user(redis_app, "ann@example.com")
    client = signed_in_client(redis_app, "ann@example.com")
    assert client.get("/api/me").status_code == 200
    with redis_app.app_context():
        db = redis_app.extensions["better_auth"].db
        assert db.session.execute(select(Session)).all() == []
    client.sign_out()
    assert client.get("/api/me").status_code == 401


def test_the_cookie_is_the_one_sign_in_sets(user_app: Flask) -> None:
    """What the client holds has the format of a real sign-in's cookie, under the app's name."""
    create_user(user_app, "ann@example.com", password=PASSWORD)
    real = set_cookies(sign_in(user_app.test_client(), "ann@example.com"))[SESSION_COOKIE]
    client = user_app.test_client()
    session = client.sign_in("ann@example.com")
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    secret = user_app.config["BETTER_AUTH_SECRET"]
    assert cookie.value == encode_signed(secret, session.token)
    token = unquote(real["value"]).rpartition(".")[0]
    assert real["value"] == encode_signed(secret, token)

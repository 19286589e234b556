"""``BETTER_AUTH_COOKIE_NAMING``: the seed's cookie names or Better Auth JS's, on every route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ORIGIN, make_app, queries, set_cookies, sign_in, sign_up
from flask import Flask

from flask_better_auth import ConfigError
from flask_better_auth.cookies import COOKIE_NAMES
from flask_better_auth.state import settings

#: The three names of the core's cookies under each preset.
NAMES = {
    "seed": (
        "better-auth.session-token",
        "better-auth.session-data",
        "better-auth.dont-remember",
    ),
    "better-auth": (
        "better-auth.session_token",
        "better-auth.session_data",
        "better-auth.dont_remember",
    ),
}
#: Every logical cookie's name under each preset (Better Auth's from better-auth-1.7.md §3.1,
#: next-wave.md and plugins-wire.md; the seed's in the same style).
EVERY_NAME = {
    "seed": {
        "session_token": "better-auth.session-token",
        "session_data": "better-auth.session-data",
        "dont_remember": "better-auth.dont-remember",
        "two_factor": "better-auth.two-factor",
        "trust_device": "better-auth.trust-device",
        "state": "better-auth.state",
        "admin_session": "better-auth.admin-session",
        "multi_session": "better-auth.session-token-multi-",
    },
    "better-auth": {
        "session_token": "better-auth.session_token",
        "session_data": "better-auth.session_data",
        "dont_remember": "better-auth.dont_remember",
        "two_factor": "better-auth.two_factor",
        "trust_device": "better-auth.trust_device",
        "state": "better-auth.state",
        "admin_session": "better-auth.admin_session",
        "multi_session": "better-auth.session_token_multi-",
    },
}


@pytest.fixture(params=["seed", "better-auth"])
def naming(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def named_app(naming: str, database_url: str) -> Iterator[Flask]:
    """An app with the cookie cache on; the default naming is left unset for ``"seed"``."""
    extra: dict[str, Any] = {} if naming == "seed" else {"COOKIE_NAMING": naming}
    app = make_app(database_url, COOKIE_CACHE_ENABLED=True, **extra)
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


def test_every_route_sets_and_clears_exactly_the_presets_names(
    named_app: Flask, naming: str
) -> None:
    token, data, dont_remember = NAMES[naming]
    client = named_app.test_client()

    response = client.post(
        "/api/auth/sign-up/email",
        json={"name": "Ann", "email": "ann@example.com", "password": "correct-horse-1"},
        headers=ORIGIN,
    )
    assert response.status_code == 200
    assert list(set_cookies(response)) == [token, data]

    # get-session answers from the cache cookie under its preset name: no query at all.
    with queries(named_app) as statements:
        response = client.get("/api/auth/get-session")
    assert statements == []
    assert response.get_json()["user"]["email"] == "ann@example.com"

    response = client.post("/api/auth/sign-out", headers=ORIGIN)
    cleared = set_cookies(response)
    assert list(cleared) == [token, data, dont_remember]
    assert all(cookie["max-age"] == "0" for cookie in cleared.values())

    response = sign_in(client, "ann@example.com", rememberMe=False)
    assert response.status_code == 200
    assert list(set_cookies(response)) == [token, dont_remember, data]
    assert "max-age" not in set_cookies(response)[token]

    # A database read (cache cookie dropped) re-issues the cache under its preset name.
    client.delete_cookie(data)
    response = client.get("/api/auth/get-session")
    assert response.get_json()["user"]["email"] == "ann@example.com"
    assert list(set_cookies(response)) == [data]

    # Signing in again remembered clears the preset's "don't remember" cookie.
    response = sign_in(client, "ann@example.com")
    assert list(set_cookies(response)) == [token, dont_remember, data]
    assert set_cookies(response)[dont_remember]["max-age"] == "0"

    response = client.post("/api/auth/sign-out", headers=ORIGIN)
    assert list(set_cookies(response)) == [token, data, dont_remember]
    assert client.get("/api/auth/get-session").get_json() is None


def test_requests_are_authenticated_by_the_presets_names_only(
    named_app: Flask, naming: str
) -> None:
    token, data, _ = NAMES[naming]
    other_token = NAMES["seed" if naming == "better-auth" else "better-auth"][0]
    signer = named_app.test_client()
    sign_up(signer)
    value = signer.get_cookie(token)
    assert value is not None and signer.get_cookie(data) is not None

    browser = named_app.test_client()
    browser.set_cookie(token, value.value)
    me = browser.get("/api/me")
    assert me.status_code == 200
    assert me.get_json()["user"]["email"] == "ann@example.com"

    stranger = named_app.test_client()
    stranger.set_cookie(other_token, value.value)
    assert stranger.get("/api/me").status_code == 401
    assert stranger.get("/api/auth/get-session").get_json() is None


def test_the_secure_prefix_and_the_cookie_prefix_apply_to_the_preset(tmp_path: Any) -> None:
    app = make_app(
        f"sqlite:///{tmp_path / 'a.sqlite'}",
        COOKIE_NAMING="better-auth",
        COOKIE_SECURE_PREFIX=True,
        COOKIE_PREFIX="acme",
    )
    client = app.test_client()
    sign_up(client)
    response = sign_in(client, "ann@example.com", rememberMe=False)
    assert list(set_cookies(response)) == [
        "__Secure-acme.session_token",
        "__Secure-acme.dont_remember",
    ]
    assert client.get("/api/me").status_code == 200
    with app.app_context():
        cookies = settings().cookies
        assert cookies.name("two_factor") == "__Secure-acme.two_factor"
        assert cookies.name("multi_session", "AbC") == "__Secure-acme.session_token_multi-abc"
        app.extensions["better_auth"].db.engine.dispose()


def test_explicit_cookie_names_win_over_the_preset(tmp_path: Any) -> None:
    app = make_app(
        f"sqlite:///{tmp_path / 'a.sqlite'}",
        COOKIE_NAMING="better-auth",
        SESSION_COOKIE_NAME="sid",
        DONT_REMEMBER_COOKIE_NAME="forget",
    )
    client = app.test_client()
    sign_up(client)
    response = sign_in(client, "ann@example.com", rememberMe=False)
    assert list(set_cookies(response)) == ["sid", "forget"]
    response = client.post("/api/auth/sign-out", headers=ORIGIN)
    assert list(set_cookies(response)) == ["sid", "better-auth.session_data", "forget"]
    with app.app_context():
        # Better Auth derives a device's cookie from the session cookie's name.
        assert settings().cookies.name("multi_session", "T0K") == "sid_multi-t0k"
        app.extensions["better_auth"].db.engine.dispose()


@pytest.mark.parametrize("preset", ["seed", "better-auth"])
def test_every_logical_cookie_has_a_name_under_each_preset(preset: str, tmp_path: Any) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'a.sqlite'}", create_tables=False, COOKIE_NAMING=preset)
    with app.app_context():
        cookies = settings().cookies
        assert {cookie: cookies.name(cookie) for cookie in COOKIE_NAMES[preset]} == (
            EVERY_NAME[preset]
        )
        assert (cookies.session_token, cookies.session_data, cookies.dont_remember) == (
            NAMES[preset]
        )
        with pytest.raises(KeyError):
            cookies.name("no_such_cookie")
        app.extensions["better_auth"].db.engine.dispose()


@pytest.mark.parametrize("value", ["Better-Auth", "js", "seed ", 1, ["seed"]])
def test_an_unknown_preset_is_a_config_error(value: Any, tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        make_app(f"sqlite:///{tmp_path / 'a.sqlite'}", create_tables=False, COOKIE_NAMING=value)
    assert str(raised.value) == (
        f"BETTER_AUTH_COOKIE_NAMING must be 'seed' or 'better-auth', not {value!r}."
    )

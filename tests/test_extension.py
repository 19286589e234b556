"""The Flask side: config validation, factory pattern, the app's own db, decorators, signals,
CORS, secret rotation and the number of queries a request costs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import (
    BASE,
    ORIGIN,
    PASSWORD,
    SECRET,
    make_app,
    queries,
    set_cookies,
    sign_in,
    sign_up,
)
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select, update

from flask_better_auth import (
    BetterAuth,
    ConfigError,
    Session,
    User,
    current_user,
    fresh_login_required,
    login_required,
    session_revoked,
    user_signed_in,
    user_signed_out,
    user_signed_up,
)
from flask_better_auth.cookies import encode_signed
from flask_better_auth.crypto import sign_value
from flask_better_auth.models import metadata

OTHER_SECRET = "another-secret-abcdefghijklmnopqrstuvwxyz-0123456789"
UNAUTHORIZED = b'{"message":"Unauthorized","code":"UNAUTHORIZED"}'
NOT_FRESH = b'{"message":"Session is not fresh","code":"SESSION_NOT_FRESH"}'
COOKIE = "better-auth.session-token"


def bare_app(**config: Any) -> Flask:
    """An app with a valid base config and ``BETTER_AUTH_<key>`` overrides (not initialised)."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI="sqlite://",
        BETTER_AUTH_SECRET=SECRET,
        BETTER_AUTH_BASE_URL=BASE,
        BETTER_AUTH_SCRYPT_N=1024,
    )
    app.config.update({k if k == "TESTING" else f"BETTER_AUTH_{k}": v for k, v in config.items()})
    return app


def age(app: Flask, token: str, days: float) -> None:
    """Pretend a session was created ``days`` ago."""
    with app.app_context():
        db = app.extensions["better_auth"].db
        created = datetime.now(UTC) - timedelta(days=days)
        db.session.execute(update(Session).where(Session.token == token).values(created_at=created))
        db.session.commit()


def dispose(*apps: Flask) -> None:
    for app in apps:
        with app.app_context():
            db = app.extensions["better_auth"].db
            db.session.remove()
            db.engine.dispose()


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"SECRET": None}, "BETTER_AUTH_SECRET is not set"),
        ({"SECRET": ""}, "BETTER_AUTH_SECRET is not set"),
        ({"SECRET": "x" * 31}, "BETTER_AUTH_SECRET is too short (31 characters): use at least 32"),
        (
            {"COOKIE_SAMESITE": "None", "COOKIE_SECURE": False},
            "BETTER_AUTH_COOKIE_SAMESITE='None' requires BETTER_AUTH_COOKIE_SECURE=True",
        ),
        (
            {"COOKIE_SAMESITE": "Sometimes"},
            "BETTER_AUTH_COOKIE_SAMESITE must be 'Lax', 'Strict' or 'None', not 'Sometimes'",
        ),
        ({"SESSION_EXPIRES_IN": -1}, "BETTER_AUTH_SESSION_EXPIRES_IN must not be negative"),
        (
            {"SESSION_UPDATE_AGE": timedelta(seconds=-5)},
            "BETTER_AUTH_SESSION_UPDATE_AGE must not be negative",
        ),
        ({"SESSION_FRESH_AGE": "-60"}, "BETTER_AUTH_SESSION_FRESH_AGE must not be negative"),
        (
            {"SESSION_EXPIRES_IN": "soon"},
            "BETTER_AUTH_SESSION_EXPIRES_IN must be a timedelta or a number of seconds",
        ),
        ({"SESSION_EXPIRES_IN": 0}, "BETTER_AUTH_SESSION_EXPIRES_IN must be longer than zero"),
        (
            {"SESSION_UPDATE_AGE": "inf"},
            "BETTER_AUTH_SESSION_UPDATE_AGE must be a timedelta or a number of seconds",
        ),
        ({"SESSION_EXPIRES_IN": timedelta(days=401)}, "over 400 days"),
        (
            {"TESTING": False, "SCRYPT_N": 1024},
            "BETTER_AUTH_SCRYPT_N may differ from 16384 only when TESTING is on",
        ),
        ({"BASE_PATH": "/"}, "it cannot be '/'"),
        ({"BASE_PATH": "api/auth"}, "BETTER_AUTH_BASE_PATH must start with '/'"),
        ({"BASE_URL": "ftp://example.com"}, "BETTER_AUTH_BASE_URL must be an http(s) URL"),
        ({"BASE_URL": "https://ex ample.com"}, "BETTER_AUTH_BASE_URL must be an http(s) URL"),
        ({"BASE_URL": "https://u:p@example.com"}, "BETTER_AUTH_BASE_URL must be an http(s) URL"),
        ({"BASE_URL": "https://example.com:99999"}, "BETTER_AUTH_BASE_URL must be an http(s)"),
        (
            {"TESTING": False, "BASE_URL": None, "SCRYPT_N": 16384},
            "BETTER_AUTH_BASE_URL is not set: set it to your site's public URL, e.g."
            ' BETTER_AUTH_BASE_URL = "https://example.com"',
        ),
        (
            {"TRUSTED_ORIGINS": ["https://*.exa*mple.com\\"]},
            "BETTER_AUTH_TRUSTED_ORIGINS entry 'https://*.exa*mple.com\\\\' is not an origin",
        ),
        (
            {"TRUSTED_ORIGINS": ["example.com"]},
            "BETTER_AUTH_TRUSTED_ORIGINS entry 'example.com' is not an origin or origin pattern:"
            " an origin needs its scheme, e.g. https://example.com",
        ),
        (
            {"TRUSTED_ORIGINS": ["https://example.com/app"]},
            "an http(s) origin has no path",
        ),
        (
            {"TRUSTED_ORIGINS": ["https://*.bü*.de"]},
            "wildcards stand for whole ASCII labels",
        ),
        ({"TRUSTED_ORIGINS": ["*://example.com"]}, "no wildcards there"),
        ({"CORS_ORIGINS": ["https://*.example.com:80x"]}, "the port must be digits or *"),
        (
            {"CORS_ORIGINS": ["*"]},
            "BETTER_AUTH_CORS_ORIGINS cannot contain '*' while BETTER_AUTH_CORS_ALLOW_CREDENTIALS",
        ),
    ],
)
def test_invalid_config_is_refused_at_init_app(config: dict[str, Any], message: str):
    app = bare_app(**config)
    with pytest.raises(ConfigError) as raised:
        BetterAuth(app)
    assert message in str(raised.value)
    # Nothing was registered on the app.
    assert "better_auth" not in app.extensions
    assert "better_auth" not in app.blueprints


def test_valid_config_values_are_normalised():
    app = bare_app(
        COOKIE_SAMESITE="none",
        SESSION_EXPIRES_IN="7200",
        SESSION_UPDATE_AGE=timedelta(minutes=5),
        SESSION_FRESH_AGE=0,
        SECRET_FALLBACKS="old-secret-1, old-secret-2",
    )
    auth = BetterAuth(app)
    with app.app_context():
        conf = auth.settings
    assert conf.cookies.samesite == "None"
    assert conf.cookies.secure is True
    assert conf.session.expires_in == timedelta(hours=2)
    assert conf.session.update_age == timedelta(minutes=5)
    assert conf.session.fresh_age == timedelta(0)
    assert conf.secrets == (SECRET, "old-secret-1", "old-secret-2")


def test_real_scrypt_cost_is_allowed_outside_testing():
    app = bare_app(TESTING=False, SCRYPT_N=16384)
    BetterAuth(app)
    assert app.extensions["better_auth"].settings.password.scrypt_n == 16384


@pytest.mark.settings(SESSION_EXPIRES_IN=timedelta(hours=2))
def test_timedelta_duration_sets_the_session_lifetime(app: Flask, client: FlaskClient):
    before = datetime.now(UTC)
    response = client.post(
        "/api/auth/sign-up/email",
        json={"name": "Ann", "email": "ann@example.com", "password": PASSWORD},
        headers=ORIGIN,
    )
    cookie = set_cookies(response)[COOKIE]
    assert cookie["max-age"] == "7200"
    session = client.get("/api/auth/get-session").get_json()["session"]
    expires = datetime.fromisoformat(session["expiresAt"].replace("Z", "+00:00"))
    assert abs(expires - (before + timedelta(hours=2))) < timedelta(seconds=5)


@pytest.mark.settings(SESSION_EXPIRES_IN=3600, SESSION_UPDATE_AGE=60)
def test_integer_seconds_durations(app: Flask, client: FlaskClient):
    account = sign_up(client)
    with app.app_context():
        rules = app.extensions["better_auth"].settings.session
        assert (rules.expires_in, rules.update_age) == (timedelta(hours=1), timedelta(minutes=1))
        db = app.extensions["better_auth"].db
        # Last extended 61 s ago: due under a 60 s update age.
        expires = datetime.now(UTC) + timedelta(seconds=3600 - 61)
        db.session.execute(
            update(Session).where(Session.token == account.token).values(expires_at=expires)
        )
        db.session.commit()
    response = client.get("/api/auth/get-session")
    assert set_cookies(response)[COOKIE]["max-age"] == "3600"


# ---------------------------------------------------------------- factory pattern, two apps


def test_factory_pattern_two_apps_with_their_own_config(database_url: str):
    auth = BetterAuth()

    def create_app(secret: str, **cookie: str) -> Flask:
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            SQLALCHEMY_DATABASE_URI=database_url,  # one database: only the config differs
            BETTER_AUTH_SECRET=secret,
            BETTER_AUTH_BASE_URL=BASE,
            BETTER_AUTH_SCRYPT_N=1024,
            **{f"BETTER_AUTH_{k}": v for k, v in cookie.items()},
        )
        auth.init_app(app)
        return app

    app_a = create_app(SECRET, COOKIE_PREFIX="app-a")
    app_b = create_app(OTHER_SECRET, SESSION_COOKIE_NAME="b_session")
    try:
        with app_a.app_context():
            metadata.drop_all(auth.db.engine)
            metadata.create_all(auth.db.engine)
            assert auth.settings.cookies.session_token == "app-a.session-token"
            assert auth.settings.secret == SECRET
        with app_b.app_context():
            assert auth.settings.cookies.session_token == "b_session"
            assert auth.settings.secret == OTHER_SECRET

        client_a = app_a.test_client()
        account = sign_up(client_a)
        cookie_a = set_cookies(
            client_a.post("/api/auth/update-user", json={"name": "Ann A"}, headers=ORIGIN)
        )["app-a.session-token"]["value"]
        assert cookie_a == encode_signed(SECRET, account.token)
        assert client_a.get("/api/auth/get-session").get_json()["user"]["name"] == "Ann A"

        # App A's cookie is worth nothing on app B, under either name…
        for name in ("b_session", "app-a.session-token"):
            client_b = app_b.test_client()
            client_b.set_cookie(name, cookie_a)
            response = client_b.get("/api/auth/get-session")
            assert response.get_data() == b"null"
            assert response.headers.getlist("Set-Cookie") == []
        # …though the session row is there: B's own signature of the token works.
        client_b = app_b.test_client()
        client_b.set_cookie("b_session", encode_signed(OTHER_SECRET, account.token))
        assert client_b.get("/api/auth/get-session").get_json()["user"]["id"] == account.user["id"]

        # Sign-in on B issues B's cookie, signed with B's secret.
        response = sign_in(app_b.test_client(), account.email)
        token = response.get_json()["token"]
        assert set(set_cookies(response)) == {"b_session"}
        assert set_cookies(response)["b_session"]["value"] == encode_signed(OTHER_SECRET, token)
    finally:
        dispose(app_a, app_b)


# ---------------------------------------------------------------- the app's own db


def test_uses_the_apps_own_flask_sqlalchemy_db(database_url: str):
    db = SQLAlchemy()
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        BETTER_AUTH_SECRET=SECRET,
        BETTER_AUTH_SCRYPT_N=1024,
    )
    db.init_app(app)
    auth = BetterAuth(app, db=db)
    try:
        assert app.extensions["better_auth"].db is db
        with app.app_context():
            assert auth.db is db
            metadata.drop_all(db.engine)
            metadata.create_all(db.engine)
        account = sign_up(app.test_client())
        with app.app_context():
            user = db.session.get(User, account.user["id"])
            assert user is not None and user.email == account.email
            tokens = db.session.execute(select(Session.token)).scalars().all()
            assert tokens == [account.token]
    finally:
        dispose(app)


def test_factory_pattern_with_the_apps_db():
    db = SQLAlchemy()
    auth = BetterAuth(db=db)
    app = bare_app()
    db.init_app(app)
    auth.init_app(app)
    assert app.extensions["better_auth"].db is db


def test_db_not_initialised_on_the_app_is_a_config_error():
    db = SQLAlchemy()
    db.init_app(bare_app())  # registered on another app only
    app = bare_app()
    with pytest.raises(ConfigError, match=r"call db\.init_app\(app\) before auth\.init_app\(app\)"):
        BetterAuth(app, db=db)
    with pytest.raises(ConfigError, match="not registered on this app"):
        BetterAuth(app, db=SQLAlchemy())


# ---------------------------------------------------------------- @login_required


def add_views(app: Flask) -> None:
    @app.get("/login", endpoint="login")
    def login() -> Any:
        return "log in"

    @app.route("/api/preflight", methods=["GET", "OPTIONS"])
    @login_required
    def preflight() -> Any:
        return jsonify(method=request.method)

    @app.get("/api/async")
    @login_required
    async def async_view() -> Any:
        await asyncio.sleep(0)
        return jsonify(email=current_user.email)

    @app.get("/api/sensitive")
    @fresh_login_required
    def sensitive() -> Any:
        return jsonify(ok=True)


def test_login_required_answers_401_json(app: Flask, client: FlaskClient):
    for accept in (None, "application/json", "text/html"):  # no LOGIN_VIEW: always JSON
        response = client.get("/api/me", headers={"Accept": accept} if accept else {})
        assert response.status_code == 401
        assert response.mimetype == "application/json"
        assert response.get_data() == UNAUTHORIZED
    sign_up(client)
    assert client.get("/api/me").status_code == 200


@pytest.mark.settings(LOGIN_VIEW="login")
def test_login_required_redirects_html_requests_to_the_login_view(app: Flask):
    add_views(app)
    client = app.test_client("http://evil.example")
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get("/api/me?x=1&y=a%20b", headers={"Accept": browser})
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("", "", "/login")
    assert parse_qs(location.query) == {"next": ["/api/me?x=1&y=a%20b"]}
    response = client.get("/api/me", headers={"Accept": "text/html"})
    assert response.headers["Location"] == "/login?next=%2Fapi%2Fme"
    # API clients still get JSON.
    response = client.get("/api/me", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED


@pytest.mark.settings(LOGIN_VIEW="/sign-in?from=app")
def test_login_view_may_be_a_path(client: FlaskClient):
    response = client.get("/api/me", headers={"Accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in?from=app&next=%2Fapi%2Fme"


def test_login_required_lets_options_through(app: Flask, client: FlaskClient):
    add_views(app)
    response = client.options("/api/preflight")
    assert response.status_code == 200
    assert response.get_json() == {"method": "OPTIONS"}
    assert client.get("/api/preflight").get_data() == UNAUTHORIZED


def test_login_required_on_an_async_view(app: Flask, client: FlaskClient):
    add_views(app)
    response = client.get("/api/async")
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED
    account = sign_up(client)
    response = client.get("/api/async")
    assert response.status_code == 200
    assert response.get_json() == {"email": account.email}


def test_fresh_login_required(app: Flask, client: FlaskClient):
    add_views(app)
    response = client.get("/api/sensitive")
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED
    account = sign_up(client)
    assert client.get("/api/sensitive").get_json() == {"ok": True}
    age(app, account.token, days=1.5)
    response = client.get("/api/sensitive")
    assert response.status_code == 403
    assert response.get_data() == NOT_FRESH
    # Still signed in: only freshness is missing.
    assert client.get("/api/me").status_code == 200


# ---------------------------------------------------------------- signals


@pytest.fixture
def events(app: Flask) -> Iterator[list[tuple[str, Any, dict[str, Any]]]]:
    """Every signal the app sends, as (name, sender, kwargs)."""
    recorded: list[tuple[str, Any, dict[str, Any]]] = []
    receivers = {}
    for signal in (user_signed_up, user_signed_in, user_signed_out, session_revoked):

        def record(sender: Any, _name: str = str(signal.name), **kwargs: Any) -> None:
            recorded.append((_name, sender, kwargs))

        receivers[signal] = record
        signal.connect(record, sender=app)
    yield recorded
    for signal, receiver in receivers.items():
        signal.disconnect(receiver, sender=app)


def test_signals(app: Flask, client: FlaskClient, events: list[Any]):
    account = sign_up(client)
    (up, sender_up, kw_up), (signed_in, sender_in, kw_in) = events
    assert (up, signed_in) == ("user-signed-up", "user-signed-in")
    assert sender_up is app and sender_in is app
    assert set(kw_up) == {"user"} and isinstance(kw_up["user"], User)
    assert kw_up["user"].id == account.user["id"]
    assert set(kw_in) == {"user", "session"}
    assert kw_in["user"].id == account.user["id"]
    assert isinstance(kw_in["session"], Session) and kw_in["session"].token == account.token

    events.clear()
    phone = app.test_client()
    token_b = sign_in(phone, account.email).get_json()["token"]
    assert [(e[0], e[2]["session"].token) for e in events] == [("user-signed-in", token_b)]

    uid = account.user["id"]
    for path, body, tokens in [
        ("revoke-session", {"token": "unknown"}, "none"),  # nothing revoked: no signal
        ("revoke-session", {"token": token_b}, [token_b]),
        ("revoke-other-sessions", {}, None),
    ]:
        events.clear()
        assert client.post(f"/api/auth/{path}", json=body, headers=ORIGIN).status_code == 200
        expected = (
            []
            if tokens == "none"
            else [("session-revoked", app, {"user_id": uid, "tokens": tokens})]
        )
        assert events == expected, path

    events.clear()
    client.post(
        "/api/auth/change-password",
        json={
            "currentPassword": PASSWORD,
            "newPassword": "new-password-1",
            "revokeOtherSessions": True,
        },
        headers=ORIGIN,
    )
    assert events == [("session-revoked", app, {"user_id": uid, "tokens": None})]

    events.clear()
    token = client.get("/api/auth/get-session").get_json()["session"]["token"]
    client.post("/api/auth/sign-out", json={}, headers=ORIGIN)
    assert events == [
        ("session-revoked", app, {"user_id": uid, "tokens": [token]}),
        ("user-signed-out", app, {"user_id": uid}),
    ]

    events.clear()
    sign_in(client, account.email, "new-password-1")
    events.clear()
    client.post("/api/auth/revoke-sessions", json={}, headers=ORIGIN)
    assert events == [("session-revoked", app, {"user_id": uid, "tokens": None})]


def test_signals_are_per_app(database_url: str, app: Flask, events: list[Any]):
    other = make_app(database_url)
    try:
        sign_up(other.test_client())
        assert events == []
    finally:
        dispose(other)


# ---------------------------------------------------------------- CORS


CORS_ORIGIN = "http://app.example"


@pytest.mark.settings(CORS_ORIGINS=[CORS_ORIGIN], CORS_PATHS=["/api/me"])
def test_cors_preflight_echoes_a_listed_origin(client: FlaskClient):
    response = client.options(
        "/api/auth/sign-in/email",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


@pytest.mark.settings(CORS_ORIGINS=[CORS_ORIGIN], CORS_PATHS=["/api/me"])
def test_cors_headers_on_answers_and_errors(client: FlaskClient):
    cross = {"Origin": CORS_ORIGIN}
    # Errors carry the CORS headers, or the browser hides them from the client.
    for response in (
        client.post("/api/auth/update-user", json={"name": "x"}, headers=cross),
        client.get("/api/me", headers=cross),
    ):
        assert response.status_code == 401
        assert response.get_data() == UNAUTHORIZED
        assert response.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
    # A listed origin is trusted: cross-origin sign-up works and set-auth-token is readable.
    response = client.post(
        "/api/auth/sign-up/email",
        json={"name": "Ann", "email": "ann@example.com", "password": PASSWORD},
        headers=cross,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN
    exposed = [
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    ]
    assert "set-auth-token" in exposed


@pytest.mark.settings(CORS_ORIGINS=[CORS_ORIGIN])
def test_cors_ignores_other_origins(client: FlaskClient):
    evil = "http://evil.example"
    preflight = client.options(
        "/api/auth/get-session",
        headers={"Origin": evil, "Access-Control-Request-Method": "GET"},
    )
    error = client.get("/api/auth/list-sessions", headers={"Origin": evil})
    assert error.status_code == 401
    for response in (preflight, error):
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers
    # Never "*", even for the listed origin.
    listed = client.get("/api/auth/get-session", headers={"Origin": CORS_ORIGIN})
    assert listed.headers["Access-Control-Allow-Origin"] == CORS_ORIGIN


def test_no_cors_headers_without_cors_origins(client: FlaskClient):
    response = client.options(
        "/api/auth/get-session",
        headers={"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers


# ---------------------------------------------------------------- secret rotation


NEW_SECRET = "rotated-secret-ZYXWVUTSRQPONMLKJIHGFEDCBA-98765"


@pytest.mark.settings(SECRET=NEW_SECRET, SECRET_FALLBACKS=[SECRET])
def test_secret_rotation(app: Flask, client: FlaskClient):
    account = sign_up(client)
    assert set_cookies(client.post("/api/auth/update-user", json={"name": "Ann"}, headers=ORIGIN))[
        COOKIE
    ]["value"] == encode_signed(NEW_SECRET, account.token)

    # A cookie signed with the previous secret still works…
    old_device = app.test_client()
    old_device.set_cookie(COOKIE, encode_signed(SECRET, account.token))
    response = old_device.get("/api/auth/get-session")
    assert response.get_json()["session"]["token"] == account.token
    assert response.headers.getlist("Set-Cookie") == []
    # …and whatever it re-issues is signed with the current one.
    response = old_device.post("/api/auth/update-user", json={"name": "Ann B"}, headers=ORIGIN)
    assert response.status_code == 200
    assert set_cookies(response)[COOKIE]["value"] == encode_signed(NEW_SECRET, account.token)
    assert response.headers["set-auth-token"] == sign_value(NEW_SECRET, account.token)
    # Bearer values signed with the fallback are accepted too.
    bearer = app.test_client().get(
        "/api/auth/get-session",
        headers={"Authorization": f"Bearer {sign_value(SECRET, account.token)}"},
    )
    assert bearer.get_json()["user"]["name"] == "Ann B"

    # New sessions are signed with the current secret.
    response = sign_in(app.test_client(), account.email)
    token = response.get_json()["token"]
    assert set_cookies(response)[COOKIE]["value"] == encode_signed(NEW_SECRET, token)
    assert response.headers["set-auth-token"] == sign_value(NEW_SECRET, token)

    # A key that is neither current nor a fallback is refused.
    stranger = app.test_client()
    stranger.set_cookie(COOKIE, encode_signed(OTHER_SECRET, account.token))
    response = stranger.get("/api/auth/get-session")
    assert response.get_data() == b"null"
    assert response.headers.getlist("Set-Cookie") == []


# ---------------------------------------------------------------- query counts


def test_requests_without_credentials_make_no_query(app: Flask, client: FlaskClient):
    account = sign_up(app.test_client())
    forged = app.test_client()
    forged.set_cookie(COOKIE, encode_signed(OTHER_SECRET, account.token))
    with queries(app) as statements:
        assert client.get("/api/open").get_json() == {"signed_in": False}
        assert client.get("/api/me").status_code == 401
        assert client.get("/api/auth/get-session").get_data() == b"null"
        assert forged.get("/api/open").get_json() == {"signed_in": False}
    assert statements == []


def test_authenticated_request_makes_one_query(app: Flask, client: FlaskClient):
    account = sign_up(client)
    for path in ("/api/me", "/api/open", "/api/auth/get-session"):
        with queries(app) as statements:
            response = client.get(path)
        assert response.status_code == 200
        assert len(statements) == 1, (path, statements)
        assert statements[0].lstrip().upper().startswith("SELECT")
    with queries(app) as statements:
        bearer = app.test_client().get(
            "/api/me", headers={"Authorization": f"Bearer {account.token}"}
        )
    assert bearer.status_code == 200
    assert len(statements) == 1


def test_refresh_costs_one_more_query(app: Flask, client: FlaskClient):
    account = sign_up(client)
    with app.app_context():
        db = app.extensions["better_auth"].db
        due = datetime.now(UTC) + timedelta(days=5)  # last extended two days ago
        db.session.execute(
            update(Session).where(Session.token == account.token).values(expires_at=due)
        )
        db.session.commit()
    with queries(app) as statements:
        response = client.get("/api/me")
    assert response.status_code == 200
    assert COOKIE in set_cookies(response)
    assert [s.lstrip().split()[0].upper() for s in statements] == ["SELECT", "UPDATE"]


def test_bearer_client_gets_no_cookies_from_app_routes(app: Flask, client: FlaskClient):
    account = sign_up(client)
    with app.app_context():
        db = app.extensions["better_auth"].db
        # Due for its sliding refresh: last extended two days ago.
        db.session.execute(
            update(Session)
            .where(Session.token == account.token)
            .values(expires_at=datetime.now(UTC) + timedelta(days=5))
        )
        db.session.commit()
    bearer = app.test_client()
    me = bearer.get("/api/me", headers={"Authorization": f"Bearer {account.token}"})
    assert me.status_code == 200
    assert me.headers.getlist("Set-Cookie") == []
    with app.app_context():
        db = app.extensions["better_auth"].db
        expires = db.session.execute(
            select(Session.expires_at).where(Session.token == account.token)
        ).scalar_one()
    assert expires > datetime.now(UTC) + timedelta(days=6)  # extended all the same
    unknown = bearer.get("/api/me", headers={"Authorization": "Bearer not-a-real-token"})
    assert unknown.status_code == 401
    assert unknown.headers.getlist("Set-Cookie") == []
    # The auth routes answer a Bearer client as Better Auth does: expiry cookies for a dead token.
    dead = bearer.get("/api/auth/get-session", headers={"Authorization": "Bearer not-a-real-token"})
    assert dead.get_data() == b"null"
    assert len(dead.headers.getlist("Set-Cookie")) == 3


def test_session_refresh_never_commits_the_apps_pending_work(app: Flask, client: FlaskClient):
    """A view's unfinished changes are not committed by the sliding refresh of its session."""
    db = app.extensions["better_auth"].db

    @app.post("/api/draft")
    def draft() -> Any:
        db.session.add(User(id="draft-user", name="Draft", email="draft@example.com"))
        assert current_user.email == "ann@example.com"  # first touch: the session refreshes
        return jsonify(saved=False)  # the view never commits its draft

    account = sign_up(client)

    with app.app_context():
        db.session.execute(
            update(Session)
            .where(Session.token == account.token)
            .values(expires_at=datetime.now(UTC) + timedelta(days=5))
        )
        db.session.commit()
    response = client.post("/api/draft", headers=ORIGIN)
    assert response.status_code == 200
    assert "better-auth.session-token" in set_cookies(response)
    with app.app_context():
        assert db.session.get(User, "draft-user") is None

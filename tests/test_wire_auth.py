"""HTTP wire tests of the core auth routes against Better Auth 1.7's captured traffic.

Reference: /work/shared/spec/peer-wire.md (real requests and responses of the real server) and
better-auth-1.7.md. Where our seed's cookie defaults differ from Better Auth's (name
``better-auth.session-token``, ``Secure`` on, ``Expires`` next to ``Max-Age``), OUR defaults are
asserted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

import pytest
from conftest import BASE, ORIGIN, PASSWORD, SECRET, set_cookies, sign_in, sign_up
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from flask_better_auth.models import Account, Session, User

AUTH = "/api/auth"
SESSION_COOKIE = "better-auth.session-token"
DATA_COOKIE = "better-auth.session-data"
DONT_REMEMBER_COOKIE = "better-auth.dont-remember"
EVIL = "http://evil.example"
NODE = {"Sec-Fetch-Mode": "cors"}  # what Node's fetch (the official client) always sends
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ID = re.compile(r"^[A-Za-z0-9]{32}$")
USER_KEYS = ["name", "email", "emailVerified", "image", "createdAt", "updatedAt", "id"]
SESSION_KEYS = [
    "expiresAt",
    "token",
    "createdAt",
    "updatedAt",
    "ipAddress",
    "userAgent",
    "userId",
    "id",
]
WEEK = 7 * 24 * 3600
#: For the transport-level tests, answered before any database work: PostgreSQL adds nothing.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
EXPIRED = "Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax"


# --------------------------------------------------------------------------------------------
# helpers


def signature(value: str, secret: str = SECRET) -> str:
    """Better Auth's cookie signature, computed independently of the package."""
    digest = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signed(token: str) -> str:
    return f"{token}.{signature(token)}"


def cookie_value(token: str) -> str:
    """``encodeURIComponent(token + "." + sig)``."""
    return quote(signed(token), safe="")


def session_cookie_header(token: str, name: str = SESSION_COOKIE) -> dict[str, str]:
    return {"Cookie": f"{name}={cookie_value(token)}"}


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def ordered(response: Any) -> Any:
    """The JSON body with its key order (``get_json`` would do, but be explicit)."""
    return json.loads(response.get_data(as_text=True))


def assert_error(response: Any, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert list(ordered(response).items()) == [("message", message), ("code", code)]


def assert_no_cookies(response: Any) -> None:
    assert response.headers.getlist("Set-Cookie") == []
    assert "set-auth-token" not in response.headers


def assert_expiry_cookies(response: Any) -> None:
    """The three removal cookies, in Better Auth's order."""
    assert response.headers.getlist("Set-Cookie") == [
        f"{SESSION_COOKIE}=; {EXPIRED}",
        f"{DATA_COOKIE}=; {EXPIRED}",
        f"{DONT_REMEMBER_COOKIE}=; {EXPIRED}",
    ]
    assert "set-auth-token" not in response.headers


def parse_iso(text: str) -> datetime:
    assert ISO.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def assert_user(user: Any, *, email: str, name: str = "Ann") -> None:
    assert list(user) == USER_KEYS
    assert user["name"] == name
    assert user["email"] == email
    assert user["emailVerified"] is False
    assert user["image"] is None
    assert ID.match(user["id"])
    assert parse_iso(user["createdAt"]) == parse_iso(user["updatedAt"])
    assert abs(datetime.now(UTC) - parse_iso(user["createdAt"])) < timedelta(minutes=1)


def rows(app: Flask, model: Any, **where: Any) -> list[Any]:
    """Rows of ``model`` read straight from the database."""
    with app.app_context():
        db = app.extensions["better_auth"].db
        return list(db.session.execute(select(model).filter_by(**where)).scalars())


def count(app: Flask, model: Any) -> int:
    with app.app_context():
        db = app.extensions["better_auth"].db
        return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def get_session(client: FlaskClient, **headers: str) -> Any:
    return client.get(f"{AUTH}/get-session", headers=headers)


@pytest.fixture
def bare(app: Flask) -> FlaskClient:
    """A client without a cookie jar: every credential is sent explicitly."""
    return app.test_client(use_cookies=False)


# --------------------------------------------------------------------------------------------
# POST /sign-up/email


def test_sign_up_success_shape_and_rows(app: Flask, bare: FlaskClient) -> None:
    r = bare.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Ann", "email": "Ann.Lee@Example.COM", "password": PASSWORD},
        headers={**ORIGIN, **NODE},
    )
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    body = ordered(r)
    assert list(body) == ["token", "user"]
    assert ID.match(body["token"])
    assert_user(body["user"], email="ann.lee@example.com")
    assert r.headers["set-auth-token"] == signed(body["token"])
    assert r.headers["Access-Control-Expose-Headers"] == "set-auth-token"
    assert set(set_cookies(r)) == {SESSION_COOKIE}

    users = rows(app, User)
    assert [(u.id, u.email, u.name, u.email_verified) for u in users] == [
        (body["user"]["id"], "ann.lee@example.com", "Ann", False)
    ]
    accounts = rows(app, Account, user_id=body["user"]["id"])
    assert [(a.provider_id, a.account_id) for a in accounts] == [("credential", body["user"]["id"])]
    assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]{128}", accounts[0].password)
    sessions = rows(app, Session, user_id=body["user"]["id"])
    assert [s.token for s in sessions] == [body["token"]]


@pytest.mark.parametrize("email", ["ann@example.com", "ANN@EXAMPLE.COM", "Ann@example.com"])
def test_sign_up_duplicate_email_any_case(app: Flask, bare: FlaskClient, email: str) -> None:
    sign_up(bare, "ann@example.com")
    r = bare.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Other", "email": email, "password": "another-password-9"},
        headers={**ORIGIN, **NODE},
    )
    assert_error(
        r, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", "User already exists. Use another email."
    )
    assert_no_cookies(r)
    assert count(app, User) == 1
    assert count(app, Account) == 1
    assert count(app, Session) == 1


@pytest.mark.parametrize(
    ("password", "code", "message"),
    [
        ("short", "PASSWORD_TOO_SHORT", "Password too short"),
        ("x" * 7, "PASSWORD_TOO_SHORT", "Password too short"),
        ("x" * 129, "PASSWORD_TOO_LONG", "Password too long"),
        # JavaScript counts UTF-16 units: 65 emoji are 130 units.
        ("\U0001f600" * 65, "PASSWORD_TOO_LONG", "Password too long"),
    ],
)
def test_sign_up_password_length_errors(
    app: Flask, bare: FlaskClient, password: str, code: str, message: str
) -> None:
    r = bare.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Ann", "email": "ann@example.com", "password": password},
        headers=ORIGIN,
    )
    assert_error(r, 400, code, message)
    assert_no_cookies(r)
    assert count(app, User) == 0
    assert count(app, Account) == 0


@pytest.mark.parametrize("password", ["x" * 8, "x" * 128, "\U0001f600" * 4, "\U0001f600" * 64])
def test_sign_up_password_length_bounds_accepted(bare: FlaskClient, password: str) -> None:
    account = sign_up(bare, "ann@example.com", password)
    r = sign_in(bare, "ann@example.com", password)
    assert r.status_code == 200
    assert ordered(r)["user"]["id"] == account.user["id"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"name": "Ann", "email": "not-an-email", "password": PASSWORD},
            "[body.email] Invalid email address",
        ),
        (
            {"email": "ann@example.com", "password": PASSWORD},
            "[body.name] Invalid input: expected string, received undefined",
        ),
        (
            {"name": "Ann", "email": "ann@example.com"},
            "[body.password] Invalid input: expected string, received undefined",
        ),
        (
            {"name": 5, "email": "ann@example.com", "password": PASSWORD},
            "[body.name] Invalid input: expected string, received number",
        ),
        (
            {"name": "Ann", "email": None, "password": PASSWORD},
            "[body.email] Invalid input: expected string, received null",
        ),
        (
            {"name": "Ann", "email": "ann@example.com", "password": PASSWORD, "rememberMe": "no"},
            "[body.rememberMe] Invalid input: expected boolean, received string",
        ),
        (
            {},
            "[body.name] Invalid input: expected string, received undefined; "
            "[body.email] Invalid input: expected string, received undefined; "
            "[body.password] Invalid input: expected string, received undefined",
        ),
        ([], "[body] Invalid input: expected object, received array"),
    ],
)
def test_sign_up_validation_errors(app: Flask, bare: FlaskClient, body: Any, message: str) -> None:
    r = bare.post(f"{AUTH}/sign-up/email", json=body, headers={**ORIGIN, **NODE})
    assert_error(r, 400, "VALIDATION_ERROR", message)
    assert_no_cookies(r)
    assert count(app, User) == 0
    assert count(app, Account) == 0
    assert count(app, Session) == 0


def test_sign_up_form_urlencoded(app: Flask, bare: FlaskClient) -> None:
    r = bare.post(
        f"{AUTH}/sign-up/email",
        data={"name": "Form Ann", "email": "Form@Example.com", "password": PASSWORD},
        headers=ORIGIN,
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.request.mimetype == "application/x-www-form-urlencoded"
    body = ordered(r)
    assert_user(body["user"], email="form@example.com", name="Form Ann")
    assert [a.provider_id for a in rows(app, Account, user_id=body["user"]["id"])] == ["credential"]
    assert sign_in(bare, "form@example.com").status_code == 200


# --------------------------------------------------------------------------------------------
# POST /sign-in/email


def test_sign_in_success_shape(app: Flask, bare: FlaskClient) -> None:
    account = sign_up(bare)
    r = bare.post(
        f"{AUTH}/sign-in/email",
        json={"email": "ANN@example.com", "password": PASSWORD},
        headers={**ORIGIN, **NODE},
    )
    assert r.status_code == 200
    body = ordered(r)
    assert list(body) == ["redirect", "token", "user"]
    assert body["redirect"] is False
    assert ID.match(body["token"]) and body["token"] != account.token
    assert body["user"] == account.user
    assert list(body["user"]) == USER_KEYS
    assert "Location" not in r.headers
    assert r.headers["set-auth-token"] == signed(body["token"])
    assert r.headers["Access-Control-Expose-Headers"] == "set-auth-token"
    assert set_cookies(r)[SESSION_COOKIE]["value"] == cookie_value(body["token"])
    assert sorted(s.token for s in rows(app, Session)) == sorted([account.token, body["token"]])


@pytest.mark.parametrize("callback", ["/dashboard", "/dashboard?tab=1#x", f"{BASE}/after"])
def test_sign_in_callback_url(bare: FlaskClient, callback: str) -> None:
    sign_up(bare)
    r = sign_in(bare, "ann@example.com", callbackURL=callback)
    assert r.status_code == 200
    body = ordered(r)
    assert list(body) == ["redirect", "token", "url", "user"]
    assert body["redirect"] is True
    assert body["url"] == callback
    assert r.headers["Location"] == callback
    assert SESSION_COOKIE in set_cookies(r)


@pytest.mark.parametrize(
    "callback", [f"{EVIL}/cb", "//evil.example/cb", "/\\evil.example", "https://localhost/x"]
)
def test_sign_in_untrusted_callback_url(app: Flask, bare: FlaskClient, callback: str) -> None:
    sign_up(bare)
    r = sign_in(bare, "ann@example.com", callbackURL=callback)
    assert_error(r, 403, "INVALID_CALLBACK_URL", "Invalid callbackURL")
    assert_no_cookies(r)
    assert "Location" not in r.headers
    assert count(app, Session) == 1  # only the sign-up's


def test_sign_in_wrong_password_and_unknown_email_are_identical(
    app: Flask, bare: FlaskClient
) -> None:
    sign_up(bare)
    wrong = sign_in(bare, "ann@example.com", "wrong-password-x")
    unknown = sign_in(bare, "nobody@example.com", PASSWORD)
    for r in (wrong, unknown):
        assert_error(r, 401, "INVALID_EMAIL_OR_PASSWORD", "Invalid email or password")
        assert_no_cookies(r)
    assert wrong.get_data() == unknown.get_data()
    assert dict(wrong.headers) == dict(unknown.headers)
    assert count(app, Session) == 1


@pytest.mark.parametrize("email", ["nope", "a@b", "ann@@example.com", ""])
def test_sign_in_malformed_email(bare: FlaskClient, email: str) -> None:
    r = sign_in(bare, email)
    assert_error(r, 400, "INVALID_EMAIL", "Invalid email")
    assert_no_cookies(r)


def test_sign_in_password_too_long(bare: FlaskClient) -> None:
    sign_up(bare)
    r = sign_in(bare, "ann@example.com", "x" * 129)
    assert_error(r, 400, "PASSWORD_TOO_LONG", "Password too long")


def test_sign_in_remember_me_false(app: Flask, client: FlaskClient) -> None:
    sign_up(client)
    before = datetime.now(UTC)
    r = sign_in(client, "ann@example.com", rememberMe=False)
    assert r.status_code == 200
    token = ordered(r)["token"]
    assert r.headers.getlist("Set-Cookie") == [
        f"{SESSION_COOKIE}={cookie_value(token)}; Path=/; HttpOnly; Secure; SameSite=Lax",
        f"{DONT_REMEMBER_COOKIE}={quote('true.' + signature('true'), safe='')}"
        "; Path=/; HttpOnly; Secure; SameSite=Lax",
    ]
    assert r.headers["set-auth-token"] == signed(token)
    (session,) = rows(app, Session, token=token)
    assert before + timedelta(days=1) - timedelta(seconds=5) <= session.expires_at
    assert session.expires_at <= datetime.now(UTC) + timedelta(days=1)

    # The cookie jar sends both cookies: the session is there and not re-issued.
    g = get_session(client)
    assert ordered(g)["session"]["token"] == token
    assert parse_iso(ordered(g)["session"]["expiresAt"]) == session.expires_at
    assert_no_cookies(g)

    # Signing in again with rememberMe (the default) expires the leftover dont-remember cookie.
    again = sign_in(client, "ann@example.com")
    names = [c.split("=", 1)[0] for c in again.headers.getlist("Set-Cookie")]
    assert names == [SESSION_COOKIE, DONT_REMEMBER_COOKIE]
    assert set_cookies(again)[DONT_REMEMBER_COOKIE]["max-age"] == "0"


def test_sign_in_form_body(bare: FlaskClient) -> None:
    sign_up(bare)
    form = {"email": "ann@example.com", "password": PASSWORD}
    r = bare.post(f"{AUTH}/sign-in/email", data={**form, "rememberMe": "false"}, headers=ORIGIN)
    assert_error(
        r,
        400,
        "VALIDATION_ERROR",
        "[body.rememberMe] Invalid input: expected boolean, received string",
    )
    assert_no_cookies(r)
    r = bare.post(f"{AUTH}/sign-in/email", data=form, headers=ORIGIN)
    assert r.status_code == 200
    assert ordered(r)["redirect"] is False


# --------------------------------------------------------------------------------------------
# POST /sign-out


def test_sign_out_signed_in(app: Flask, bare: FlaskClient) -> None:
    account = sign_up(bare)
    cookie = session_cookie_header(account.token)
    r = bare.post(f"{AUTH}/sign-out", json={}, headers={**ORIGIN, **NODE, **cookie})
    assert r.status_code == 200
    assert r.get_data() == b'{"success":true}'
    assert r.mimetype == "application/json"
    assert_expiry_cookies(r)
    assert rows(app, Session, token=account.token) == []
    assert count(app, User) == 1
    # The old cookie now names a missing session.
    g = get_session(bare, **cookie)
    assert g.get_data() == b"null"
    assert_expiry_cookies(g)


@pytest.mark.parametrize("body", [{}, None])
def test_sign_out_anonymous(bare: FlaskClient, body: Any) -> None:
    r = bare.post(f"{AUTH}/sign-out", json=body, headers=ORIGIN)
    assert r.status_code == 200
    assert ordered(r) == {"success": True}
    assert_expiry_cookies(r)


def test_sign_out_with_bearer(app: Flask, bare: FlaskClient) -> None:
    account = sign_up(bare)
    other = sign_up(bare, "bob@example.com")
    r = bare.post(f"{AUTH}/sign-out", json={}, headers={**ORIGIN, **bearer(signed(account.token))})
    assert r.status_code == 200
    assert_expiry_cookies(r)
    assert [s.token for s in rows(app, Session)] == [other.token]


# --------------------------------------------------------------------------------------------
# GET /get-session


def assert_no_store(response: Any) -> None:
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


def test_get_session_anonymous(bare: FlaskClient) -> None:
    r = get_session(bare, **NODE)
    assert r.status_code == 200
    assert r.get_data() == b"null"
    assert r.mimetype == "application/json"
    assert_no_store(r)
    assert_no_cookies(r)


@pytest.mark.parametrize(
    "value",
    [
        "TAMPERED",  # the right token with a forged signature
        "garbage",
        "",
        "a.b",
        "%%%",
    ],
)
def test_get_session_bad_cookie_is_anonymous(bare: FlaskClient, value: str) -> None:
    account = sign_up(bare)
    if value == "TAMPERED":
        value = quote(f"{account.token}.{'A' * 43}=", safe="")
    r = get_session(bare, Cookie=f"{SESSION_COOKIE}={value}")
    assert r.status_code == 200
    assert r.get_data() == b"null"
    assert_no_store(r)
    assert_no_cookies(r)


def test_get_session_signed_in(bare: FlaskClient) -> None:
    account = sign_up(bare)
    r = get_session(bare, **session_cookie_header(account.token))
    assert r.status_code == 200
    assert_no_store(r)
    assert_no_cookies(r)  # a fresh session is not refreshed
    body = ordered(r)
    assert list(body) == ["session", "user"]
    assert body["user"] == account.user
    assert list(body["user"]) == USER_KEYS
    session = body["session"]
    assert list(session) == SESSION_KEYS
    assert session["token"] == account.token
    assert session["userId"] == account.user["id"]
    assert ID.match(session["id"]) and session["id"] != account.user["id"]
    created = parse_iso(session["createdAt"])
    assert parse_iso(session["updatedAt"]) == created
    assert parse_iso(session["expiresAt"]) == created + timedelta(days=7)


@pytest.mark.parametrize("how", ["signed-out", "unknown-token"])
def test_get_session_valid_signature_unknown_session(bare: FlaskClient, how: str) -> None:
    if how == "signed-out":
        token = sign_up(bare).token
        bare.post(f"{AUTH}/sign-out", json={}, headers={**ORIGIN, **session_cookie_header(token)})
    else:
        token = "Z" * 32
    r = get_session(bare, **session_cookie_header(token))
    assert r.status_code == 200
    assert r.get_data() == b"null"
    assert_no_store(r)
    assert_expiry_cookies(r)


def test_get_session_expired_row_is_deleted(app: Flask, bare: FlaskClient) -> None:
    account = sign_up(bare)
    with app.app_context():
        db = app.extensions["better_auth"].db
        row = db.session.execute(select(Session).filter_by(token=account.token)).scalar_one()
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    r = get_session(bare, **session_cookie_header(account.token))
    assert r.get_data() == b"null"
    assert_expiry_cookies(r)
    assert rows(app, Session) == []


@pytest.mark.parametrize("signed_in", [False, True])
def test_get_session_post_is_405(bare: FlaskClient, signed_in: bool) -> None:
    headers = {**ORIGIN, **NODE}
    if signed_in:
        headers.update(session_cookie_header(sign_up(bare).token))
    # get-session ignores any body (Better Auth's disableBody), even malformed JSON.
    r = bare.post(
        f"{AUTH}/get-session", data="{not json", content_type="application/json", headers=headers
    )
    assert_error(
        r,
        405,
        "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED",
        "POST method requires deferSessionRefresh to be enabled in session config",
    )
    assert_no_store(r)


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("203.0.113.7, 10.0.0.1", ""),
        ("not-an-ip", ""),
        (None, ""),
    ],
)
def test_get_session_ip_address_and_user_agent(
    bare: FlaskClient, forwarded: str | None, expected: str
) -> None:
    sign_up(bare)
    headers = {"User-Agent": "node"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    r = bare.post(
        f"{AUTH}/sign-in/email",
        json={"email": "ann@example.com", "password": PASSWORD},
        headers={**ORIGIN, **headers},
    )
    token = ordered(r)["token"]
    session = ordered(get_session(bare, **bearer(token)))["session"]
    assert session["ipAddress"] == expected
    assert session["userAgent"] == "node"


# --------------------------------------------------------------------------------------------
# The session cookie


def test_session_cookie_value_and_attributes(bare: FlaskClient) -> None:
    r = bare.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Ann", "email": "ann@example.com", "password": PASSWORD},
        headers=ORIGIN,
    )
    token = ordered(r)["token"]
    session = ordered(get_session(bare, **bearer(token)))["session"]
    expires = format_datetime(parse_iso(session["expiresAt"]), usegmt=True)
    (header,) = r.headers.getlist("Set-Cookie")
    assert header == (
        f"{SESSION_COOKIE}={cookie_value(token)}; Max-Age={WEEK}; Path=/; Expires={expires}"
        "; HttpOnly; Secure; SameSite=Lax"
    )
    # encodeURIComponent of the base64 signature: no raw "+", "/" or "=" remain.
    value = header.split(";")[0].split("=", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9]{32}\.[A-Za-z0-9%]+", value)
    assert value.endswith("%3D")


DEFAULT_NAMES = (SESSION_COOKIE, DATA_COOKIE, DONT_REMEMBER_COOKIE)
GONE = "Expires=Thu, 01 Jan 1970 00:00:00 GMT"

COOKIE_OVERRIDES = [
    pytest.param(
        DEFAULT_NAMES,
        "Max-Age={age}; Path=/; Expires={expires}; HttpOnly; SameSite=Lax",
        f"Max-Age=0; Path=/; {GONE}; HttpOnly; SameSite=Lax",
        marks=pytest.mark.settings(COOKIE_SECURE=False),
        id="insecure",
    ),
    pytest.param(
        DEFAULT_NAMES,
        "Max-Age={age}; Path=/; Expires={expires}; HttpOnly; Secure; SameSite=Strict",
        f"Max-Age=0; Path=/; {GONE}; HttpOnly; Secure; SameSite=Strict",
        marks=pytest.mark.settings(COOKIE_SAMESITE="Strict"),
        id="strict",
    ),
    pytest.param(
        DEFAULT_NAMES,
        "Max-Age={age}; Domain=example.com; Path=/; Expires={expires}; HttpOnly; Secure"
        "; SameSite=Lax",
        f"Max-Age=0; Domain=example.com; Path=/; {GONE}; HttpOnly; Secure; SameSite=Lax",
        marks=pytest.mark.settings(COOKIE_DOMAIN="example.com"),
        id="domain",
    ),
    pytest.param(
        ("myapp.session-token", "myapp.session-data", "myapp.dont-remember"),
        "Max-Age={age}; Path=/; Expires={expires}; HttpOnly; Secure; SameSite=Lax",
        EXPIRED,
        marks=pytest.mark.settings(COOKIE_PREFIX="myapp"),
        id="prefix",
    ),
    pytest.param(
        ("better-auth.session_token", DATA_COOKIE, DONT_REMEMBER_COOKIE),
        "Max-Age={age}; Path=/; Expires={expires}; HttpOnly; Secure; SameSite=Lax",
        EXPIRED,
        marks=pytest.mark.settings(SESSION_COOKIE_NAME="better-auth.session_token"),
        id="better-auth-name",
    ),
    pytest.param(
        DEFAULT_NAMES,
        "Path=/; Expires={expires}; HttpOnly; Secure; SameSite=Lax",
        EXPIRED,
        marks=pytest.mark.settings(COOKIE_MAX_AGE=False),
        id="no-max-age",
    ),
]


@pytest.mark.parametrize(("names", "attributes", "expired"), COOKIE_OVERRIDES)
def test_session_cookie_settings_overrides(
    bare: FlaskClient, names: tuple[str, str, str], attributes: str, expired: str
) -> None:
    name = names[0]
    r = bare.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Ann", "email": "ann@example.com", "password": PASSWORD},
        headers=ORIGIN,
    )
    token = ordered(r)["token"]
    session = ordered(get_session(bare, **bearer(token)))["session"]
    expires = format_datetime(parse_iso(session["expiresAt"]), usegmt=True)
    assert r.headers.getlist("Set-Cookie") == [
        f"{name}={cookie_value(token)}; " + attributes.format(age=WEEK, expires=expires)
    ]

    # The cookie is read back under the configured name, and only under it.
    g = get_session(bare, **session_cookie_header(token, name))
    assert ordered(g)["session"]["token"] == token
    if name != SESSION_COOKIE:
        assert get_session(bare, **session_cookie_header(token)).get_data() == b"null"

    # Removal uses the same names and attributes, with Max-Age=0.
    out = bare.post(
        f"{AUTH}/sign-out", json={}, headers={**ORIGIN, **session_cookie_header(token, name)}
    )
    assert out.headers.getlist("Set-Cookie") == [f"{n}=; {expired}" for n in names]


# --------------------------------------------------------------------------------------------
# Bearer


@pytest.mark.parametrize("form", ["signed", "raw", "signed-url-encoded", "lower-case-scheme"])
def test_bearer_accepted(bare: FlaskClient, form: str) -> None:
    account = sign_up(bare)
    value = {
        "signed": f"Bearer {signed(account.token)}",
        "raw": f"Bearer {account.token}",
        "signed-url-encoded": f"Bearer {cookie_value(account.token)}",
        "lower-case-scheme": f"bearer {signed(account.token)}",
    }[form]
    g = get_session(bare, Authorization=value)
    assert g.status_code == 200
    assert ordered(g)["session"]["token"] == account.token
    assert_no_store(g)
    me = bare.get("/api/me", headers={"Authorization": value})
    assert me.status_code == 200
    assert me.get_json()["user"] == account.user
    assert me.get_json()["session"]["token"] == account.token


@pytest.mark.parametrize(
    ("value", "expiry_cookies"),
    [
        (f"{'Z' * 32}.{'A' * 43}=", False),  # bad signature: ignored
        ("SIGNED-OTHER-SECRET", False),
        ("not-a-real-token", True),  # a raw token naming no session: like a stale cookie
        ("", False),
    ],
)
def test_bearer_invalid_is_anonymous(bare: FlaskClient, value: str, expiry_cookies: bool) -> None:
    account = sign_up(bare)
    if value == "SIGNED-OTHER-SECRET":
        other = hmac.new(b"x" * 40, account.token.encode(), hashlib.sha256).digest()
        value = f"{account.token}.{base64.b64encode(other).decode()}"
    g = get_session(bare, Authorization=f"Bearer {value}")
    assert g.status_code == 200
    assert g.get_data() == b"null"
    if expiry_cookies:
        assert_expiry_cookies(g)
    else:
        assert_no_cookies(g)
    me = bare.get("/api/me", headers={"Authorization": f"Bearer {value}"})
    assert_error(me, 401, "UNAUTHORIZED", "Unauthorized")


def test_bearer_wins_over_cookie_of_another_session(bare: FlaskClient) -> None:
    ann = sign_up(bare, "ann@example.com")
    bob = sign_up(bare, "bob@example.com")
    headers = {**session_cookie_header(ann.token), **bearer(signed(bob.token))}
    assert ordered(get_session(bare, **headers))["user"]["email"] == "bob@example.com"
    assert bare.get("/api/me", headers=headers).get_json()["session"]["token"] == bob.token


def test_set_auth_token_only_when_a_session_cookie_is_set(bare: FlaskClient) -> None:
    account = sign_up(bare)
    r = sign_in(bare, "ann@example.com")
    token = ordered(r)["token"]
    assert r.headers["set-auth-token"] == signed(token)
    assert "%" not in r.headers["set-auth-token"]  # not URL-encoded, unlike the cookie
    assert r.headers["Access-Control-Expose-Headers"] == "set-auth-token"
    for response in (
        get_session(bare, **bearer(token)),
        bare.post(f"{AUTH}/sign-out", json={}, headers={**ORIGIN, **bearer(account.token)}),
        sign_in(bare, "ann@example.com", "wrong-password-x"),
    ):
        assert "set-auth-token" not in response.headers
        assert "Access-Control-Expose-Headers" not in response.headers


@pytest.mark.parametrize("origin", [EVIL, "null", None])
def test_bearer_post_is_not_origin_checked(
    app: Flask, bare: FlaskClient, origin: str | None
) -> None:
    account = sign_up(bare)
    headers = {**NODE, **bearer(signed(account.token))}
    if origin is not None:
        headers["Origin"] = origin
    r = bare.post(f"{AUTH}/update-user", json={"name": "Renamed"}, headers=headers)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert ordered(r) == {"status": True}
    assert r.headers["set-auth-token"] == signed(account.token)
    assert rows(app, User)[0].name == "Renamed"
    out = bare.post(f"{AUTH}/sign-out", json={}, headers=headers)
    assert out.status_code == 200
    assert rows(app, Session) == []


def test_bearer_post_with_a_cookie_header_is_origin_checked(app: Flask, bare: FlaskClient) -> None:
    """Better Auth's origin check reads the request's own Cookie header, before the bearer
    plugin swaps in the session cookie (spec §1.2 order, §8.1): a browser sending both is checked.
    """
    account = sign_up(bare)
    headers = {**bearer(signed(account.token)), **session_cookie_header(account.token), **NODE}
    hacked = {"name": "Hacked"}
    r = bare.post(f"{AUTH}/update-user", json=hacked, headers={**headers, "Origin": EVIL})
    assert_error(r, 403, "INVALID_ORIGIN", "Invalid origin")
    r = bare.post(f"{AUTH}/update-user", json=hacked, headers=headers)
    assert_error(r, 403, "MISSING_OR_NULL_ORIGIN", "Missing or null Origin")
    assert rows(app, User)[0].name == "Ann"
    r = bare.post(f"{AUTH}/update-user", json={"name": "Ok"}, headers={**headers, **ORIGIN})
    assert r.status_code == 200
    assert rows(app, User)[0].name == "Ok"


# --------------------------------------------------------------------------------------------
# Origin / CSRF (peer-wire §2 and §17)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CROSS_SITE_NAVIGATE = {
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}


@pytest.mark.parametrize(
    ("headers", "form", "status", "code"),
    [
        pytest.param({"Origin": EVIL, **NODE}, False, 403, "INVALID_ORIGIN", id="evil-fetch"),
        pytest.param({"Origin": EVIL}, False, 403, "INVALID_ORIGIN", id="evil-no-metadata"),
        pytest.param(
            {"Referer": f"{EVIL}/login"}, True, 403, "INVALID_ORIGIN", id="evil-referer-form"
        ),
        pytest.param(NODE, False, 403, "MISSING_OR_NULL_ORIGIN", id="node-fetch-no-origin"),
        pytest.param(
            {**NODE, "Sec-Fetch-Site": "cross-site"},
            False,
            403,
            "MISSING_OR_NULL_ORIGIN",
            id="cross-site-fetch",
        ),
        pytest.param(
            {"Origin": "null", **NODE}, False, 403, "MISSING_OR_NULL_ORIGIN", id="null-origin"
        ),
        pytest.param(
            CROSS_SITE_NAVIGATE,
            True,
            403,
            "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED",
            id="cross-site-navigate",
        ),
        pytest.param({}, True, 200, None, id="curl-form"),
        pytest.param({}, False, 200, None, id="curl-json"),
        pytest.param(ORIGIN, False, 200, None, id="trusted-origin"),
        pytest.param({"Origin": f"{BASE}/"}, False, 200, None, id="trusted-origin-slash"),
        pytest.param({"Referer": f"{BASE}/login", **NODE}, False, 200, None, id="referer-only"),
        pytest.param(
            {"Origin": "null", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"},
            False,
            200,
            None,
            id="null-origin-same-origin",
        ),
        pytest.param(
            {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate", "Origin": BASE},
            True,
            200,
            None,
            id="same-origin-navigate",
        ),
    ],
)
def test_sign_in_origin_checks(
    app: Flask,
    bare: FlaskClient,
    headers: dict[str, str],
    form: bool,
    status: int,
    code: str | None,
) -> None:
    sign_up(bare)
    credentials = {"email": "ann@example.com", "password": PASSWORD}
    if form:
        r = bare.post(f"{AUTH}/sign-in/email", data=credentials, headers=headers)
    else:
        r = bare.post(f"{AUTH}/sign-in/email", json=credentials, headers=headers)
    if code is None:
        assert r.status_code == 200, r.get_data(as_text=True)
        assert ordered(r)["redirect"] is False
        assert SESSION_COOKIE in set_cookies(r)
        assert count(app, Session) == 2
    else:
        messages = {
            "INVALID_ORIGIN": "Invalid origin",
            "MISSING_OR_NULL_ORIGIN": "Missing or null Origin",
            "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED": (
                "Cross-site navigation login blocked. This request appears to be a CSRF attack."
            ),
        }
        assert_error(r, status, code, messages[code])
        assert_no_cookies(r)
        assert count(app, Session) == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Origin": EVIL, **NODE}, "INVALID_ORIGIN"),
        (NODE, "MISSING_OR_NULL_ORIGIN"),
        (CROSS_SITE_NAVIGATE, "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED"),
    ],
)
def test_sign_up_origin_checks(
    app: Flask, bare: FlaskClient, headers: dict[str, str], code: str
) -> None:
    r = bare.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Evil", "email": "evil@example.com", "password": PASSWORD},
        headers=headers,
    )
    assert r.status_code == 403
    assert ordered(r)["code"] == code
    assert_no_cookies(r)
    assert count(app, User) == 0
    assert count(app, Account) == 0


@pytest.mark.parametrize(
    ("route", "body"),
    [("/update-user", {"name": "Hacked"}), ("/sign-out", {}), ("/revoke-other-sessions", {})],
)
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Origin": EVIL, **NODE}, "INVALID_ORIGIN"),
        ({"Referer": f"{EVIL}/page"}, "INVALID_ORIGIN"),
        (NODE, "MISSING_OR_NULL_ORIGIN"),
        ({}, "MISSING_OR_NULL_ORIGIN"),
        ({"Origin": "null"}, "MISSING_OR_NULL_ORIGIN"),
    ],
)
def test_cookie_bearing_post_rejected(
    app: Flask,
    bare: FlaskClient,
    route: str,
    body: Any,
    headers: dict[str, str],
    code: str,
) -> None:
    account = sign_up(bare)
    r = bare.post(
        f"{AUTH}{route}", json=body, headers={**headers, **session_cookie_header(account.token)}
    )
    assert r.status_code == 403
    assert ordered(r)["code"] == code
    assert_no_cookies(r)
    assert [s.token for s in rows(app, Session)] == [account.token]
    assert rows(app, User)[0].name == "Ann"


def test_any_cookie_header_triggers_origin_check(bare: FlaskClient) -> None:
    """Better Auth checks every POST with a Cookie header, whatever the cookies are."""
    r = bare.post(f"{AUTH}/sign-out", json={}, headers={"Cookie": "theme=dark"})
    assert_error(r, 403, "MISSING_OR_NULL_ORIGIN", "Missing or null Origin")
    r = bare.post(f"{AUTH}/sign-out", json={}, headers={"Cookie": "theme=dark", "Origin": EVIL})
    assert_error(r, 403, "INVALID_ORIGIN", "Invalid origin")


def test_cookie_less_post_is_not_origin_checked(bare: FlaskClient) -> None:
    """Routes other than sign-in/sign-up check the origin only when cookies come along."""
    r = bare.post(f"{AUTH}/sign-out", json={}, headers={"Origin": EVIL, **NODE})
    assert r.status_code == 200
    assert_expiry_cookies(r)


def test_referer_only_cookie_post_accepted(app: Flask, bare: FlaskClient) -> None:
    account = sign_up(bare)
    r = bare.post(
        f"{AUTH}/update-user",
        json={"name": "Renamed User"},
        headers={"Referer": f"{BASE}/settings", **NODE, **session_cookie_header(account.token)},
    )
    assert r.status_code == 200
    assert ordered(r) == {"status": True}
    assert set_cookies(r)[SESSION_COOKIE]["value"] == cookie_value(account.token)
    assert r.headers["set-auth-token"] == signed(account.token)
    assert rows(app, User)[0].name == "Renamed User"


@pytest.mark.settings(TRUSTED_ORIGINS=["http://localhost:5173"])
def test_trusted_origins_entry(app: Flask, bare: FlaskClient) -> None:
    sign_up(bare)
    spa = {"Origin": "http://localhost:5173", **NODE}
    r = bare.post(
        f"{AUTH}/sign-in/email",
        json={
            "email": "ann@example.com",
            "password": PASSWORD,
            "callbackURL": "http://localhost:5173/home",
        },
        headers=spa,
    )
    assert r.status_code == 200
    assert ordered(r)["url"] == "http://localhost:5173/home"
    token = ordered(r)["token"]
    out = bare.post(f"{AUTH}/sign-out", json={}, headers={**spa, **session_cookie_header(token)})
    assert out.status_code == 200
    assert_expiry_cookies(out)
    assert rows(app, Session, token=token) == []
    for origin in ("http://localhost:5174", "https://localhost:5173", EVIL):
        r = bare.post(
            f"{AUTH}/sign-in/email",
            json={"email": "ann@example.com", "password": PASSWORD},
            headers={"Origin": origin, **NODE},
        )
        assert_error(r, 403, "INVALID_ORIGIN", "Invalid origin")


@pytest.mark.settings(TRUSTED_ORIGINS=["https://*.example.com", "*.example.org"])
@pytest.mark.parametrize(
    ("origin", "trusted"),
    [
        ("https://app.example.com", True),
        ("https://a.b.example.com", True),
        ("http://app.example.com", False),
        ("https://example.com.evil.net", False),
        ("https://appexample.com", False),
        ("http://x.example.org", True),
        ("https://x.example.org", True),
        ("https://x.example.org.evil.net", False),
    ],
)
def test_trusted_origins_wildcards(bare: FlaskClient, origin: str, trusted: bool) -> None:
    sign_up(bare)
    r = bare.post(
        f"{AUTH}/sign-in/email",
        json={"email": "ann@example.com", "password": PASSWORD, "callbackURL": f"{origin}/cb"},
        headers={"Origin": origin, **NODE},
    )
    if trusted:
        assert r.status_code == 200
        assert ordered(r)["url"] == f"{origin}/cb"
    else:
        assert_error(r, 403, "INVALID_ORIGIN", "Invalid origin")
        # A trusted Origin does not make an untrusted callbackURL acceptable either.
        r = bare.post(
            f"{AUTH}/sign-in/email",
            json={"email": "ann@example.com", "password": PASSWORD, "callbackURL": f"{origin}/cb"},
            headers={**ORIGIN, **NODE},
        )
        assert_error(r, 403, "INVALID_CALLBACK_URL", "Invalid callbackURL")


# --------------------------------------------------------------------------------------------
# Transport errors


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("route", "allowed"),
    [
        ("/sign-in/email", "application/x-www-form-urlencoded, application/json"),
        ("/sign-up/email", "application/x-www-form-urlencoded, application/json"),
        ("/sign-out", "application/json"),
        ("/update-user", "application/json"),
    ],
)
def test_unsupported_media_type(bare: FlaskClient, route: str, allowed: str) -> None:
    body = b'{"email":"ann@example.com","password":"correct-horse-1"}'
    r = bare.post(f"{AUTH}{route}", data=body, content_type="text/plain", headers=ORIGIN)
    assert_error(
        r,
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f'Content-Type "text/plain" is not allowed. Allowed types: {allowed}',
    )
    r = bare.post(f"{AUTH}{route}", data=body, headers=ORIGIN)
    assert r.request.headers.get("Content-Type") is None
    assert_error(
        r, 415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type is required. Allowed types: {allowed}"
    )
    if "form" not in allowed:
        r = bare.post(f"{AUTH}{route}", data={"a": "b"}, headers=ORIGIN)
        assert_error(
            r,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            'Content-Type "application/x-www-form-urlencoded" is not allowed.'
            f" Allowed types: {allowed}",
        )


def test_json_with_charset_accepted(bare: FlaskClient) -> None:
    sign_up(bare)
    r = bare.post(
        f"{AUTH}/sign-in/email",
        data=json.dumps({"email": "ann@example.com", "password": PASSWORD}),
        content_type="application/json; charset=utf-8",
        headers=ORIGIN,
    )
    assert r.status_code == 200


@pytest.mark.settings(MAX_BODY_SIZE=2048)
def test_body_too_large(app: Flask, bare: FlaskClient) -> None:
    def body(size: int) -> bytes:
        prefix = b'{"name":"Ann","email":"ann@example.com","password":"correct-horse-1","pad":"'
        return prefix + b"x" * (size - len(prefix) - 2) + b'"}'

    r = bare.post(f"{AUTH}/sign-up/email", data=body(2049), content_type="application/json")
    assert_error(r, 413, "PAYLOAD_TOO_LARGE", "Request body is too large")
    assert_no_cookies(r)
    assert count(app, User) == 0
    r = bare.post(f"{AUTH}/sign-up/email", data=body(2048), content_type="application/json")
    assert r.status_code == 200
    assert count(app, User) == 1


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no-such-endpoint"),
        ("POST", "/no-such-endpoint"),
        ("GET", "/ok/"),
        ("GET", "/sign-in"),
        ("POST", "/sign-in/email/"),
        ("GET", "/get-session/extra"),
    ],
)
def test_unknown_route(bare: FlaskClient, method: str, path: str) -> None:
    r = bare.open(f"{AUTH}{path}", method=method, headers=ORIGIN)
    assert r.status_code == 404
    assert r.get_data() == b""
    assert "Content-Type" not in r.headers


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sign-in/email"),
        ("GET", "/sign-up/email"),
        ("GET", "/sign-out"),
        ("PUT", "/get-session"),
        ("DELETE", "/get-session"),
        ("POST", "/ok"),
        ("PATCH", "/update-user"),
    ],
)
def test_wrong_method_on_known_route(bare: FlaskClient, method: str, path: str) -> None:
    r = bare.open(f"{AUTH}{path}", method=method, headers=ORIGIN)
    assert r.status_code == 404
    assert r.get_data() == b""
    assert "Content-Type" not in r.headers


def test_lone_surrogates_are_read_as_javascript_does(app: Flask, bare: FlaskClient) -> None:
    """JSON may escape a lone surrogate; JavaScript stores and hashes it as U+FFFD."""
    raw = '{"name": "A\\ud800", "email": "ann@example.com", "password": "pass\\udfffword"}'
    r = bare.post(f"{AUTH}/sign-up/email", data=raw, content_type="application/json")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert ordered(r)["user"]["name"] == "A\ufffd"
    assert rows(app, User)[0].name == "A\ufffd"
    assert sign_in(bare, "ann@example.com", "pass\ufffdword").status_code == 200
    raw = '{"email": "ann@example.com", "password": "pass\\ud800word"}'
    r = bare.post(f"{AUTH}/sign-in/email", data=raw, content_type="application/json")
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/sign-up/email", {"name": "A\u0000", "email": "bob@example.com", "password": PASSWORD}),
        ("/update-user", {"name": "A\u0000"}),
        ("/update-user", {"image": "\u0000"}),
        ("/revoke-session", {"token": "\u0000"}),
    ],
)
def test_nul_characters_never_500(app: Flask, bare: FlaskClient, route: str, body: Any) -> None:
    """SQLite stores NUL characters; PostgreSQL refuses them: a 400, not a crash."""
    account = sign_up(bare)
    headers = {**ORIGIN, **session_cookie_header(account.token)}
    r = bare.post(f"{AUTH}{route}", json=body, headers=headers)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert_error(r, 400, "VALIDATION_ERROR", "[body] Invalid input")
        assert count(app, User) == 1
        assert rows(app, User)[0].name == "Ann"
    else:
        assert r.status_code == 200
    # The connection is usable afterwards.
    assert ordered(get_session(bare, **session_cookie_header(account.token)))["user"]


@SQLITE_ONLY
def test_ok(bare: FlaskClient) -> None:
    r = bare.get(f"{AUTH}/ok", headers=NODE)
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert r.get_data() == b'{"ok":true}'
    assert_no_cookies(r)

"""Session management over HTTP: list/revoke, update-user, passwords, delete-user, sliding expiry.

Every exchange is checked like peer-wire.md (§10-§14, §19): status, exact JSON and every
attribute of every Set-Cookie (with the seed's cookie defaults: ``better-auth.session-token``,
``Secure``, ``Expires``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import ORIGIN, PASSWORD, SECRET, set_cookies, sign_in, sign_up
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.http import http_date

from flask_better_auth.cookies import encode_signed
from flask_better_auth.crypto import sign_value
from flask_better_auth.models import Account as AccountRow
from flask_better_auth.models import Session, User

TOKEN_COOKIE = "better-auth.session-token"
SEVEN_DAYS = timedelta(days=7)
CLEARED = [
    f"{name}=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure;"
    " SameSite=Lax"
    for name in (
        "better-auth.session-token",
        "better-auth.session-data",
        "better-auth.dont-remember",
    )
]
UNAUTHORIZED = b'{"message":"Unauthorized","code":"UNAUTHORIZED"}'
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


# ---------------------------------------------------------------- helpers


def post(client: FlaskClient, path: str, body: Any = None, **headers: str) -> Any:
    return client.post(
        f"/api/auth/{path}", json={} if body is None else body, headers={**ORIGIN, **headers}
    )


def get_session(client: FlaskClient, query: str = "", **headers: str) -> Any:
    return client.get(f"/api/auth/get-session{query}", headers=headers)


def device(app: Flask, email: str, password: str = PASSWORD, **extra: Any) -> tuple[Any, str]:
    """Sign in on a new client ("another device"): (client, session token)."""
    other = app.test_client()
    response = sign_in(other, email, password, **extra)
    assert response.status_code == 200, response.get_data(as_text=True)
    return other, response.get_json()["token"]


def db_session(app: Flask) -> Any:
    return app.extensions["better_auth"].db.session


def row(app: Flask, token: str) -> dict[str, Any] | None:
    """The session row with this token, as plain values."""
    with app.app_context():
        found = db_session(app).execute(select(Session).where(Session.token == token)).scalar()
        if found is None:
            return None
        return {
            "expires_at": found.expires_at,
            "created_at": found.created_at,
            "updated_at": found.updated_at,
            "user_id": found.user_id,
        }


def set_row(app: Flask, token: str, **values: Any) -> None:
    """Change a session row directly (age it, expire it…)."""
    with app.app_context():
        db = db_session(app)
        db.execute(update(Session).where(Session.token == token).values(**values))
        db.commit()


def count(app: Flask, model: Any, user_id: str) -> int:
    with app.app_context():
        column = model.id if model is User else model.user_id
        return int(db_session(app).execute(select(func.count()).where(column == user_id)).scalar())


def age(app: Flask, token: str, days: float) -> None:
    """Pretend the session was created ``days`` ago (its expiry, hence refresh, is untouched)."""
    set_row(app, token, created_at=datetime.now(UTC) - timedelta(days=days))


def make_due(app: Flask, token: str) -> datetime:
    """Make the session due for refresh: last extended just over a day ago. Returns expiresAt."""
    expires = (datetime.now(UTC) + SEVEN_DAYS - timedelta(days=1, seconds=30)).replace(
        microsecond=0
    )
    set_row(app, token, expires_at=expires)
    return expires


def iso_date(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_cleared(response: Any) -> None:
    """The three expiry cookies, in Better Auth's order, and nothing else."""
    assert response.headers.getlist("Set-Cookie") == CLEARED
    assert "set-auth-token" not in response.headers


def assert_no_cookie(response: Any) -> None:
    assert response.headers.getlist("Set-Cookie") == []
    assert "set-auth-token" not in response.headers


def assert_session_cookie(response: Any, token: str, expires_at: datetime) -> None:
    """Exactly one Set-Cookie: the session cookie for ``token``, expiring at ``expires_at``."""
    headers = response.headers.getlist("Set-Cookie")
    assert len(headers) == 1, headers
    cookie = set_cookies(response)[TOKEN_COOKIE]
    max_age = int(cookie["max-age"])
    remaining = (expires_at - datetime.now(UTC)).total_seconds()
    assert abs(max_age - remaining) <= 2
    value = encode_signed(SECRET, token)
    assert headers[0] == (
        f"{TOKEN_COOKIE}={value}; Max-Age={max_age}; Path=/; Expires={http_date(expires_at)};"
        " HttpOnly; Secure; SameSite=Lax"
    )
    assert response.headers["set-auth-token"] == sign_value(SECRET, token)
    assert "set-auth-token" in response.headers["Access-Control-Expose-Headers"]


def error(response: Any, status: int, code: str, message: str) -> None:
    assert response.status_code == status
    assert response.get_json() == {"message": message, "code": code}
    assert list(response.get_json()) == ["message", "code"]


# ---------------------------------------------------------------- list-sessions


def test_list_sessions_returns_the_users_unexpired_sessions(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    phone, phone_token = device(app, ann.email)
    _, stale_token = device(app, ann.email)
    set_row(app, stale_token, expires_at=datetime.now(UTC) - timedelta(seconds=5))
    sign_up(app.test_client(), "bob@example.com")

    response = client.get("/api/auth/list-sessions")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert_no_cookie(response)
    sessions = response.get_json()
    assert isinstance(sessions, list)
    assert [s["token"] for s in sessions] == [ann.token, phone_token]
    assert all(list(s) == SESSION_KEYS for s in sessions)
    mine = get_session(client).get_json()["session"]
    theirs = get_session(phone).get_json()["session"]
    assert sessions == [mine, theirs]
    assert {s["userId"] for s in sessions} == {ann.user["id"]}


def test_list_sessions_anonymous_is_401(client: FlaskClient):
    response = client.get("/api/auth/list-sessions")
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED
    assert_no_cookie(response)


def test_list_sessions_needs_a_fresh_session(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    age(app, ann.token, days=1.5)
    response = client.get("/api/auth/list-sessions")
    error(response, 403, "SESSION_NOT_FRESH", "Session is not fresh")
    assert_no_cookie(response)
    # The session itself is still valid.
    assert get_session(client).get_json()["session"]["token"] == ann.token


@pytest.mark.settings(SESSION_FRESH_AGE=0)
def test_fresh_age_zero_turns_the_freshness_check_off(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    age(app, ann.token, days=5)
    response = client.get("/api/auth/list-sessions")
    assert response.status_code == 200
    assert [s["token"] for s in response.get_json()] == [ann.token]


# ---------------------------------------------------------------- revoke-session


def test_revoke_session_of_another_device(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    phone, phone_token = device(app, ann.email)

    response = post(client, "revoke-session", {"token": phone_token})
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    assert_no_cookie(response)
    assert row(app, phone_token) is None

    on_phone = get_session(phone)
    assert on_phone.status_code == 200
    assert on_phone.get_data() == b"null"
    assert_cleared(on_phone)
    # The revoking device is untouched.
    assert get_session(client).get_json()["session"]["token"] == ann.token


def test_revoke_session_unknown_token_is_a_silent_success(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    response = post(client, "revoke-session", {"token": "does-not-exist"})
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    assert_no_cookie(response)
    assert count(app, Session, ann.user["id"]) == 1


def test_revoke_session_own_token_expires_the_cookies(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    response = post(client, "revoke-session", {"token": ann.token})
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    assert_cleared(response)
    assert row(app, ann.token) is None
    assert get_session(client).get_data() == b"null"


def test_revoke_session_cannot_touch_someone_elses_session(app: Flask, client: FlaskClient):
    sign_up(client)
    bob_client = app.test_client()
    bob = sign_up(bob_client, "bob@example.com")

    response = post(client, "revoke-session", {"token": bob.token})
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    assert_no_cookie(response)
    assert row(app, bob.token) is not None
    assert get_session(bob_client).get_json()["user"]["email"] == "bob@example.com"


def test_revoke_session_validation_and_auth(client: FlaskClient):
    error(post(client, "revoke-session", {"token": "x"}), 401, "UNAUTHORIZED", "Unauthorized")
    sign_up(client)
    error(
        post(client, "revoke-session", {}),
        400,
        "VALIDATION_ERROR",
        "[body.token] Invalid input: expected string, received undefined",
    )


# ---------------------------------------------------------------- revoke-sessions


def test_revoke_sessions_ends_every_session_of_the_user(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    phone, phone_token = device(app, ann.email)
    bob_client = app.test_client()
    bob = sign_up(bob_client, "bob@example.com")

    response = post(client, "revoke-sessions")
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    assert_cleared(response)
    assert count(app, Session, ann.user["id"]) == 0
    assert get_session(client).get_data() == b"null"
    on_phone = get_session(phone)
    assert on_phone.get_data() == b"null"
    assert_cleared(on_phone)
    assert row(app, phone_token) is None
    # Another user's session survives.
    assert get_session(bob_client).get_json()["session"]["token"] == bob.token


def test_revoke_sessions_anonymous_is_401(client: FlaskClient):
    response = post(client, "revoke-sessions")
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED


# ---------------------------------------------------------------- revoke-other-sessions (§13)


def test_revoke_other_sessions(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    device_b, _ = device(app, ann.email)
    device_c, _ = device(app, ann.email)
    assert len(client.get("/api/auth/list-sessions").get_json()) == 3

    response = post(client, "revoke-other-sessions")
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    assert_no_cookie(response)

    remaining = client.get("/api/auth/list-sessions").get_json()
    assert [s["token"] for s in remaining] == [ann.token]
    for other in (device_b, device_c):
        answer = get_session(other)
        assert answer.status_code == 200
        assert answer.get_data() == b"null"
        assert_cleared(answer)
    assert count(app, Session, ann.user["id"]) == 1


def test_revoke_other_sessions_anonymous_is_401(client: FlaskClient):
    response = post(client, "revoke-other-sessions")
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED


# ---------------------------------------------------------------- update-user (§10)


def test_update_user_name_reissues_the_session_cookie(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    response = post(client, "update-user", {"name": "Renamed User"})
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    stored = row(app, ann.token)
    assert stored is not None
    assert_session_cookie(response, ann.token, stored["expires_at"])
    assert set_cookies(response)[TOKEN_COOKIE]["max-age"] == "604800"

    user = get_session(client).get_json()["user"]
    assert user["name"] == "Renamed User"
    assert iso_date(user["updatedAt"]) >= iso_date(ann.user["updatedAt"])
    assert user["email"] == ann.email
    assert user["createdAt"] == ann.user["createdAt"]


def test_update_user_image_and_image_null(client: FlaskClient):
    sign_up(client)
    response = post(client, "update-user", {"image": "https://example.com/a.png"})
    assert response.get_data() == b'{"status":true}'
    assert get_session(client).get_json()["user"]["image"] == "https://example.com/a.png"

    response = post(client, "update-user", {"image": None})
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    user = get_session(client).get_json()["user"]
    assert user["image"] is None
    assert user["name"] == "Ann"


def test_update_user_email_cannot_change(client: FlaskClient):
    ann = sign_up(client)
    response = post(client, "update-user", {"name": "New", "email": "other@example.com"})
    error(response, 400, "EMAIL_CAN_NOT_BE_UPDATED", "Email can not be updated")
    assert_no_cookie(response)
    user = get_session(client).get_json()["user"]
    assert (user["email"], user["name"]) == (ann.email, "Ann")


@pytest.mark.parametrize("body", [{}, {"foo": "bar"}, {"emailVerified": True}, {"id": "x"}])
def test_update_user_with_nothing_to_update(client: FlaskClient, body: dict[str, Any]):
    sign_up(client)
    response = post(client, "update-user", body)
    assert response.status_code == 400
    assert response.get_data() == b'{"message":"No fields to update"}'
    assert_no_cookie(response)


def test_update_user_ignores_email_verified(client: FlaskClient):
    ann = sign_up(client)
    response = post(client, "update-user", {"name": "Ann B", "emailVerified": True, "id": "x"})
    assert response.get_data() == b'{"status":true}'
    user = get_session(client).get_json()["user"]
    assert user["emailVerified"] is False
    assert user["id"] == ann.user["id"]
    assert user["name"] == "Ann B"


def test_update_user_body_must_be_an_object(client: FlaskClient):
    sign_up(client)
    response = post(client, "update-user", ["name"])
    error(response, 400, "BODY_MUST_BE_AN_OBJECT", "Body must be an object")


def test_update_user_keeps_a_remember_me_false_cookie_a_browser_session_cookie(
    app: Flask, client: FlaskClient
):
    ann = sign_up(client)
    phone, token = device(app, ann.email, rememberMe=False)
    response = post(phone, "update-user", {"name": "Ann R"})
    assert response.get_data() == b'{"status":true}'
    assert response.headers.getlist("Set-Cookie") == [
        f"{TOKEN_COOKIE}={encode_signed(SECRET, token)}; Path=/; HttpOnly; Secure; SameSite=Lax",
        f"better-auth.dont-remember={encode_signed(SECRET, 'true')}; Path=/; HttpOnly; Secure;"
        " SameSite=Lax",
    ]
    assert response.headers["set-auth-token"] == sign_value(SECRET, token)


def test_update_user_anonymous_is_401(client: FlaskClient):
    response = post(client, "update-user", {"name": "x"})
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED
    assert_no_cookie(response)


# ---------------------------------------------------------------- change-password (§11)


def test_change_password_errors(client: FlaskClient):
    sign_up(client)
    wrong = post(
        client,
        "change-password",
        {"currentPassword": "wrong-current-x", "newPassword": "correct-horse-2"},
    )
    error(wrong, 400, "INVALID_PASSWORD", "Invalid password")
    assert_no_cookie(wrong)
    short = post(client, "change-password", {"currentPassword": PASSWORD, "newPassword": "short"})
    error(short, 400, "PASSWORD_TOO_SHORT", "Password too short")
    for body in (
        {"currentPassword": PASSWORD, "newPassword": "x" * 129},
        {"currentPassword": "x" * 129, "newPassword": "correct-horse-2"},
    ):
        error(post(client, "change-password", body), 400, "PASSWORD_TOO_LONG", "Password too long")
    error(
        post(
            client.application.test_client(),
            "change-password",
            {"currentPassword": PASSWORD, "newPassword": "x" * 9},
        ),
        401,
        "UNAUTHORIZED",
        "Unauthorized",
    )


def test_change_password_without_revoking(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    device_b, token_b = device(app, ann.email)

    response = post(
        client,
        "change-password",
        {"currentPassword": PASSWORD, "newPassword": "correct-horse-1b"},
    )
    assert response.status_code == 200
    assert response.get_json() == {"token": None, "user": ann.user}
    assert list(response.get_json()) == ["token", "user"]
    assert_no_cookie(response)
    assert get_session(device_b).get_json()["session"]["token"] == token_b
    assert get_session(client).get_json()["session"]["token"] == ann.token

    assert sign_in(app.test_client(), ann.email, PASSWORD).status_code == 401
    assert sign_in(app.test_client(), ann.email, "correct-horse-1b").status_code == 200


def test_change_password_revoking_other_sessions(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    device_b, token_b = device(app, ann.email)

    response = post(
        client,
        "change-password",
        {
            "currentPassword": PASSWORD,
            "newPassword": "correct-horse-2",
            "revokeOtherSessions": True,
        },
    )
    assert response.status_code == 200
    data = response.get_json()
    new_token = data["token"]
    assert data == {"token": new_token, "user": ann.user}
    assert len(new_token) == 32 and new_token.isalnum()
    assert new_token not in (ann.token, token_b)
    stored = row(app, new_token)
    assert stored is not None
    assert_session_cookie(response, new_token, stored["expires_at"])
    assert set_cookies(response)[TOKEN_COOKIE]["max-age"] == "604800"

    # Only the new session is left; this device now uses it.
    assert count(app, Session, ann.user["id"]) == 1
    assert get_session(client).get_json()["session"]["token"] == new_token
    on_b = get_session(device_b)
    assert on_b.get_data() == b"null"
    assert_cleared(on_b)
    old = get_session(app.test_client(), Authorization=f"Bearer {ann.token}")
    assert old.get_data() == b"null"
    assert_cleared(old)

    wrong = sign_in(app.test_client(), ann.email, PASSWORD)
    error(wrong, 401, "INVALID_EMAIL_OR_PASSWORD", "Invalid email or password")
    assert sign_in(app.test_client(), ann.email, "correct-horse-2").status_code == 200


# ---------------------------------------------------------------- verify-password


def test_verify_password(client: FlaskClient):
    error(
        post(client, "verify-password", {"password": PASSWORD}), 401, "UNAUTHORIZED", "Unauthorized"
    )
    sign_up(client)
    response = post(client, "verify-password", {"password": PASSWORD})
    assert response.status_code == 200
    assert response.get_data() == b'{"status":true}'
    assert_no_cookie(response)
    error(
        post(client, "verify-password", {"password": "nope-nope"}),
        400,
        "INVALID_PASSWORD",
        "Invalid password",
    )
    error(
        post(client, "verify-password", {}),
        400,
        "VALIDATION_ERROR",
        "[body.password] Invalid input: expected string, received undefined",
    )


# ---------------------------------------------------------------- delete-user (§19)


@pytest.mark.settings(DELETE_USER_ENABLED=False)
def test_delete_user_disabled_is_an_empty_404(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    response = post(client, "delete-user", {"password": PASSWORD})
    assert response.status_code == 404
    assert response.get_data() == b""
    assert "Content-Type" not in response.headers
    assert_no_cookie(response)
    assert count(app, User, ann.user["id"]) == 1


def test_delete_user_wrong_password(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    response = post(client, "delete-user", {"password": "wrong-password-x"})
    error(response, 400, "INVALID_PASSWORD", "Invalid password")
    assert_no_cookie(response)
    assert count(app, User, ann.user["id"]) == 1
    assert get_session(client).get_json()["user"]["id"] == ann.user["id"]


def test_delete_user_with_password(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    device_b, _ = device(app, ann.email)
    bob_client = app.test_client()
    bob = sign_up(bob_client, "bob@example.com")
    uid = ann.user["id"]
    assert count(app, AccountRow, uid) == 1

    response = post(client, "delete-user", {"password": PASSWORD})
    assert response.status_code == 200
    assert response.get_data() == b'{"success":true,"message":"User deleted"}'
    assert_cleared(response)
    assert (count(app, User, uid), count(app, AccountRow, uid), count(app, Session, uid)) == (
        0,
        0,
        0,
    )
    assert get_session(client).get_data() == b"null"
    on_b = get_session(device_b)
    assert on_b.get_data() == b"null"
    assert_cleared(on_b)
    assert sign_in(app.test_client(), ann.email).status_code == 401
    # Someone else is untouched.
    assert get_session(bob_client).get_json()["session"]["token"] == bob.token
    assert count(app, AccountRow, bob.user["id"]) == 1


def test_delete_user_without_password_needs_a_fresh_session(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    age(app, ann.token, days=2)
    response = post(client, "delete-user", {})
    error(
        response,
        400,
        "SESSION_EXPIRED",
        "Session expired. Re-authenticate to perform this action.",
    )
    assert_no_cookie(response)
    assert count(app, User, ann.user["id"]) == 1


def test_delete_user_without_password_on_a_fresh_session(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    response = post(client, "delete-user", {})
    assert response.status_code == 200
    assert response.get_data() == b'{"success":true,"message":"User deleted"}'
    assert_cleared(response)
    assert count(app, User, ann.user["id"]) == 0
    assert count(app, Session, ann.user["id"]) == 0


def test_delete_user_anonymous_is_401(client: FlaskClient):
    response = post(client, "delete-user", {"password": PASSWORD})
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED


# ---------------------------------------------------------------- sliding expiry (§4.2)


def test_get_session_extends_a_session_due_for_refresh(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    old_expiry = make_due(app, ann.token)
    before = datetime.now(UTC)

    response = get_session(client)
    assert response.status_code == 200
    stored = row(app, ann.token)
    assert stored is not None
    new_expiry = stored["expires_at"]
    assert before + SEVEN_DAYS - timedelta(seconds=1) <= new_expiry
    assert new_expiry <= datetime.now(UTC) + SEVEN_DAYS
    assert new_expiry - old_expiry > timedelta(days=1)
    assert stored["updated_at"] >= before - timedelta(seconds=1)
    assert_session_cookie(response, ann.token, new_expiry)
    assert set_cookies(response)[TOKEN_COOKIE]["max-age"] == "604800"
    session = response.get_json()["session"]
    assert iso_date(session["expiresAt"]) == new_expiry
    assert session["createdAt"] == get_session(client).get_json()["session"]["createdAt"]

    # Now extended: the next call is not due and writes no cookie.
    again = get_session(client)
    assert_no_cookie(again)
    assert row(app, ann.token) == stored


def test_get_session_not_due_sets_no_cookie(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    before = row(app, ann.token)
    response = get_session(client)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    assert_no_cookie(response)
    assert row(app, ann.token) == before


@pytest.mark.settings(SESSION_UPDATE_AGE=0)
def test_update_age_zero_refreshes_on_every_call(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    first = get_session(client)
    after_first = row(app, ann.token)
    assert after_first is not None
    assert_session_cookie(first, ann.token, after_first["expires_at"])
    second = get_session(client)
    after_second = row(app, ann.token)
    assert after_second is not None
    assert after_second["expires_at"] >= after_first["expires_at"]
    assert_session_cookie(second, ann.token, after_second["expires_at"])


@pytest.mark.parametrize("value", ["true", "false", "1"])
def test_disable_refresh_query_skips_the_refresh(app: Flask, client: FlaskClient, value: str):
    ann = sign_up(client)
    old_expiry = make_due(app, ann.token)
    response = get_session(client, f"?disableRefresh={value}")
    assert response.status_code == 200
    assert response.get_json()["session"]["token"] == ann.token
    assert_no_cookie(response)
    stored = row(app, ann.token)
    assert stored is not None and stored["expires_at"] == old_expiry


def test_empty_disable_refresh_query_is_false(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    make_due(app, ann.token)
    response = get_session(client, "?disableRefresh=")
    stored = row(app, ann.token)
    assert stored is not None
    assert_session_cookie(response, ann.token, stored["expires_at"])


@pytest.mark.settings(DISABLE_SESSION_REFRESH=True)
def test_disable_session_refresh_setting(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    old_expiry = make_due(app, ann.token)
    assert_no_cookie(get_session(client))
    assert_no_cookie(client.get("/api/me"))
    stored = row(app, ann.token)
    assert stored is not None and stored["expires_at"] == old_expiry


def test_remember_me_false_session_is_never_extended(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    phone, token = device(app, ann.email, rememberMe=False)
    stored = row(app, token)
    assert stored is not None
    # A one-day session: by the refresh rule it is always "due", yet it is never extended.
    assert stored["expires_at"] - stored["created_at"] == timedelta(days=1)
    for response in (get_session(phone), phone.get("/api/me")):
        assert response.status_code == 200
        assert_no_cookie(response)
    assert row(app, token) == stored


def test_app_route_reissues_the_cookie_when_due(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    make_due(app, ann.token)
    response = client.get("/api/me")
    assert response.status_code == 200
    stored = row(app, ann.token)
    assert stored is not None
    assert stored["expires_at"] > datetime.now(UTC) + SEVEN_DAYS - timedelta(seconds=5)
    assert_session_cookie(response, ann.token, stored["expires_at"])
    assert (
        response.get_json()["session"]["expiresAt"]
        == get_session(client).get_json()["session"]["expiresAt"]
    )


# ---------------------------------------------------------------- expired sessions


def test_expired_session_reads_as_signed_out(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    set_row(app, ann.token, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = get_session(client)
    assert response.status_code == 200
    assert response.get_data() == b"null"
    assert response.headers["Cache-Control"] == "no-store"
    assert_cleared(response)
    assert row(app, ann.token) is None


def test_expired_session_on_an_app_route(app: Flask, client: FlaskClient):
    ann = sign_up(client)
    set_row(app, ann.token, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response.get_data() == UNAUTHORIZED
    assert_cleared(response)
    assert row(app, ann.token) is None
    assert count(app, User, ann.user["id"]) == 1

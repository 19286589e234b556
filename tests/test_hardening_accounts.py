"""Issue #7, account points: emails, single-use links, no-store, password limits, reset timing,
redirect bodies. Every test speaks HTTP, on SQLite and PostgreSQL (and Redis where it matters).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE, ORIGIN, PASSWORD, make_app, sign_up
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from test_email_flows import (
    AUTH,
    NEW_PASSWORD,
    Outbox,
    click,
    get_session,
    redirected_to,
    request_reset,
    reset,
)

from flask_better_auth.models import Session, User, utcnow


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "mail" / "outbox.jsonl")


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str, outbox: Outbox) -> Iterator[Flask]:
    """conftest's app, mailing to the outbox (``@pytest.mark.settings`` may override that)."""
    marker = request.node.get_closest_marker("settings")
    overrides = {"EMAIL_BACKEND": "outbox", "EMAIL_OUTBOX": str(outbox.path)}
    overrides.update(marker.kwargs if marker else {})
    app = make_app(database_url, **overrides)
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()
    secondary = app.extensions["better_auth"].secondary
    if secondary is not None:
        secondary.close()


def user_count(app: Flask) -> int:
    with app.app_context():
        db = app.extensions["better_auth"].db
        return int(db.session.execute(select(func.count()).select_from(User)).scalar_one())


def assert_code(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["code"] == code


# --------------------------------------------------------------------------------------------
# 6. emails are validated as zod does: anchored, ASCII, no control character

LOOK_ALIKES = [
    "ann@example.com\n",  # Python's "$" matches before a final newline; JavaScript's does not
    "ann@example.com\r\n",
    "ann@example.com\x00",
    "ann@example.com\t",
    " ann@example.com",
    "ann@example.com ",
    "\u0430nn@example.com",  # Cyrillic a
    "ann@ex\u0430mple.com",
    "\uff41nn@example.com",  # fullwidth a
    "ann@example.co\u1d0d",
    "\u212aate@example.com",  # Kelvin sign: lower-cases to an ASCII "k"
    "ann\u200b@example.com",  # zero-width space
]


@pytest.mark.parametrize("email", LOOK_ALIKES, ids=repr)
def test_sign_up_refuses_look_alike_emails(app: Flask, client: FlaskClient, email: str):
    sign_up(client, "ann@example.com")
    sign_up(client, "kate@example.com")
    fresh = app.test_client()
    response = fresh.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Eve", "email": email, "password": PASSWORD},
        headers=ORIGIN,
    )
    assert response.status_code == 400
    assert response.get_json() == {
        "message": "[body.email] Invalid email address",
        "code": "VALIDATION_ERROR",
    }
    assert user_count(app) == 2


@pytest.mark.parametrize("email", LOOK_ALIKES[:4], ids=repr)
def test_other_routes_refuse_emails_with_control_characters(
    app: Flask, client: FlaskClient, email: str
):
    account = sign_up(client, "ann@example.com")
    response = client.post(
        f"{AUTH}/sign-in/email", json={"email": email, "password": PASSWORD}, headers=ORIGIN
    )
    assert_code(response, 400, "INVALID_EMAIL")
    for path, body in (
        ("request-password-reset", {"email": email}),
        ("send-verification-email", {"email": email}),
        ("change-email", {"newEmail": email.replace("ann", "bob")}),
    ):
        response = client.post(f"{AUTH}/{path}", json=body, headers=ORIGIN)
        assert_code(response, 400, "VALIDATION_ERROR")
    assert get_session(client)["user"]["email"] == account.email


def test_emails_differing_in_case_are_one_account(app: Flask, client: FlaskClient):
    sign_up(client, "Ann@Example.com")
    response = app.test_client().post(
        f"{AUTH}/sign-up/email",
        json={"name": "Eve", "email": "ANN@EXAMPLE.COM", "password": PASSWORD},
        headers=ORIGIN,
    )
    assert_code(response, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
    assert user_count(app) == 1


# --------------------------------------------------------------------------------------------
# 21. every redirect of the auth routes: empty body, content-type application/json


def assert_bare_redirect(response: Any) -> str:
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.get_data() == b""
    assert response.headers["Content-Type"] == "application/json"
    return redirected_to(response)


CHANGE_EMAIL = {"CHANGE_EMAIL_ENABLED": True, "SEND_DELETE_ACCOUNT_VERIFICATION": True}


@pytest.mark.settings(**CHANGE_EMAIL)
def test_auth_redirects_have_an_empty_json_body(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    anonymous = app.test_client()
    # The reset link, valid and not.
    request_reset(anonymous, account.email, "/reset")
    mail = outbox.one(kind="reset-password", to=account.email)
    target = assert_bare_redirect(click(anonymous, mail["url"]))
    assert target == f"{BASE}/reset?token={mail['token']}"
    bogus = click(anonymous, f"{AUTH}/reset-password/bogus?callbackURL=%2Freset")
    assert assert_bare_redirect(bogus) == f"{BASE}/reset?error=INVALID_TOKEN"
    # Verification: success and failure.
    client.post(
        f"{AUTH}/send-verification-email",
        json={"email": account.email, "callbackURL": "/done"},
        headers=ORIGIN,
    )
    mail = outbox.one(kind="verification", to=account.email)
    assert assert_bare_redirect(click(client, mail["url"])) == f"{BASE}/done"
    broken = click(client, f"{AUTH}/verify-email?token=x.y.z&callbackURL=%2Fdone")
    assert assert_bare_redirect(broken) == f"{BASE}/done?error=INVALID_TOKEN"
    # Change of email (the new address verifies).
    response = client.post(
        f"{AUTH}/change-email",
        json={"newEmail": "new@example.com", "callbackURL": "/changed"},
        headers=ORIGIN,
    )
    assert response.get_json() == {"status": True}
    mail = outbox.one(kind="verification", to="new@example.com")
    assert assert_bare_redirect(click(client, mail["url"])) == f"{BASE}/changed"
    # Deletion link.
    response = client.post(f"{AUTH}/delete-user", json={"callbackURL": "/bye"}, headers=ORIGIN)
    assert response.get_json()["message"] == "Verification email sent"
    mail = outbox.one(kind="delete-account", to="new@example.com")
    assert assert_bare_redirect(click(client, mail["url"])) == f"{BASE}/bye"
    assert user_count(app) == 0


def test_a_redirect_target_is_written_as_a_uri(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    request_reset(client, account.email, "/r\u00e9initialiser")
    mail = outbox.one(kind="reset-password", to=account.email)
    target = assert_bare_redirect(click(client, mail["url"]))
    assert target == f"{BASE}/r%C3%A9initialiser?token={mail['token']}"


# --------------------------------------------------------------------------------------------
# 10. answers carrying a session token or a session list are never cached


def assert_no_store(response: Any) -> None:
    assert response.status_code in (200, 302), response.get_data(as_text=True)
    assert response.headers.get("Cache-Control") == "no-store", dict(response.headers)
    assert response.headers.get("Pragma") == "no-cache"


@pytest.mark.settings(AUTO_SIGN_IN_AFTER_VERIFICATION=True)
def test_session_carrying_answers_are_not_cached(app: Flask, outbox: Outbox):
    client = app.test_client()
    body = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    assert_no_store(client.post(f"{AUTH}/sign-up/email", json=body, headers=ORIGIN))
    credentials = {"email": "ann@example.com", "password": PASSWORD}
    assert_no_store(client.post(f"{AUTH}/sign-in/email", json=credentials, headers=ORIGIN))
    signed_in = client.post(
        f"{AUTH}/sign-in/email", json={**credentials, "callbackURL": "/home"}, headers=ORIGIN
    )
    assert_no_store(signed_in)
    assert signed_in.headers["Location"] == "/home"
    assert_no_store(client.get(f"{AUTH}/get-session"))
    assert_no_store(client.get(f"{AUTH}/list-sessions"))
    assert_no_store(client.post(f"{AUTH}/update-user", json={"name": "Anna"}, headers=ORIGIN))
    for revoke in (False, True):
        change = client.post(
            f"{AUTH}/change-password",
            json={
                "currentPassword": PASSWORD,
                "newPassword": PASSWORD,
                "revokeOtherSessions": revoke,
            },
            headers=ORIGIN,
        )
        assert_no_store(change)
        assert (change.get_json()["token"] is not None) is revoke
    # A Bearer client gets its token in set-auth-token: not cached either.
    bearer = app.test_client()
    response = bearer.post(f"{AUTH}/sign-in/email", json=credentials, headers=ORIGIN)
    token = response.headers["set-auth-token"]
    assert_no_store(response)
    listed = bearer.get(f"{AUTH}/list-sessions", headers={"Authorization": f"Bearer {token}"})
    assert_no_store(listed)
    assert len(listed.get_json()) == 2  # revokeOtherSessions left one, then this one

    # A verification link that signs in; the reset link (a token in Location).
    anonymous = app.test_client()
    anonymous.post(
        f"{AUTH}/send-verification-email", json={"email": "ann@example.com"}, headers=ORIGIN
    )
    mail = outbox.one(kind="verification", to="ann@example.com")
    verified = click(anonymous, mail["url"])
    assert "better-auth.session-token" in verified.headers.get("Set-Cookie", "")
    assert_no_store(verified)
    request_reset(anonymous, "ann@example.com", "/reset")
    mail = outbox.one(kind="reset-password", to="ann@example.com")
    assert_no_store(click(anonymous, mail["url"]))


@pytest.mark.settings(REQUIRE_EMAIL_VERIFICATION=True)
def test_generic_sign_up_answers_have_the_same_headers(app: Flask, outbox: Outbox):
    body = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    first = app.test_client().post(f"{AUTH}/sign-up/email", json=body, headers=ORIGIN)
    again = app.test_client().post(f"{AUTH}/sign-up/email", json=body, headers=ORIGIN)
    assert_no_store(first)
    assert sorted(first.headers.keys()) == sorted(again.headers.keys())


def test_a_refreshed_session_cookie_is_not_cached_on_app_routes(app: Flask, client: FlaskClient):
    sign_up(client)
    with app.app_context():
        db = app.extensions["better_auth"].db
        # Due for its sliding refresh: the app's own page re-issues the cookie.
        db.session.execute(update(Session).values(expires_at=utcnow() + timedelta(days=2)))
        db.session.commit()
    page = client.get("/api/open")
    assert page.get_json() == {"signed_in": True}
    assert "better-auth.session-token=" in page.headers["Set-Cookie"]
    assert_no_store(page)
    # Nothing written, nothing forbidden: the app's own caching rules stand.
    assert "Cache-Control" not in client.get("/api/open").headers

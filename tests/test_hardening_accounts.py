"""Issue #7, account points: emails, single-use links, no-store, password limits, reset timing,
redirect bodies. Every test speaks HTTP, on SQLite and PostgreSQL (and Redis where it matters).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE, ORIGIN, PASSWORD, make_app, queries, sign_up
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, update
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
from test_secondary_storage import prefix, redis_url  # noqa: F401 (fixtures)

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


# --------------------------------------------------------------------------------------------
# 11. the maximum password length holds wherever a password is hashed or verified


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the password hashes run (the real function still runs)."""
    from flask_better_auth import crypto

    calls: list[int] = []
    real = crypto._scrypt

    def counting(password: str, salt_hex: str, n: int) -> bytes:
        calls.append(len(password))
        return real(password, salt_hex, n)

    monkeypatch.setattr(crypto, "_scrypt", counting)
    return calls


LONG = "x" * 129
#: Eight characters as typed, 144 once NFKC-normalised (U+FDFA expands to 18): what is hashed.
EXPANDING = "\ufdfa" * 8


@pytest.mark.parametrize("password", [LONG, EXPANDING], ids=["129", "nfkc-144"])
def test_too_long_passwords_are_refused_before_hashing(
    app: Flask, client: FlaskClient, outbox: Outbox, scrypt_calls: list[int], password: str
):
    account = sign_up(client)
    request_reset(client, account.email)
    token = outbox.one(kind="reset-password", to=account.email)["token"]
    scrypt_calls.clear()
    body = {"name": "Eve", "email": "eve@example.com", "password": password}
    attempts = [
        ("sign-up/email", body),
        ("sign-in/email", {"email": account.email, "password": password}),
        ("verify-password", {"password": password}),
        ("delete-user", {"password": password}),
        ("change-password", {"currentPassword": password, "newPassword": NEW_PASSWORD}),
        ("change-password", {"currentPassword": PASSWORD, "newPassword": password}),
        ("reset-password", {"token": token, "newPassword": password}),
    ]
    for path, body in attempts:
        response = client.post(f"{AUTH}/{path}", json=body, headers=ORIGIN)
        assert response.get_json() == {
            "message": "Password too long",
            "code": "PASSWORD_TOO_LONG",
        }, path
        assert response.status_code == 400
    assert scrypt_calls == []
    # Nothing happened: the user, the password and the reset token are all still there.
    assert get_session(client)["user"]["id"] == account.user["id"]
    assert reset(client, token).get_json() == {"status": True}


def test_the_longest_password_is_accepted(app: Flask, client: FlaskClient):
    longest = "\u00e9" * 128  # 128 as typed and once normalised
    sign_up(client, password=longest)
    response = client.post(f"{AUTH}/verify-password", json={"password": longest}, headers=ORIGIN)
    assert response.get_json() == {"status": True}


STORAGES = {
    "database": {},
    "redis-and-database": {"VERIFICATION_STORE_IN_DATABASE": True},
    "redis-only": {"VERIFICATION_STORE_IN_DATABASE": False},
}


@pytest.fixture(params=list(STORAGES))
def storage_app(
    request: pytest.FixtureRequest, database_url: str, outbox: Outbox
) -> Iterator[Flask]:
    settings: dict[str, Any] = {"EMAIL_BACKEND": "outbox", "EMAIL_OUTBOX": str(outbox.path)}
    if request.param != "database":
        settings["SECONDARY_STORAGE_URL"] = request.getfixturevalue("redis_url")
        settings["SECONDARY_STORAGE_PREFIX"] = request.getfixturevalue("prefix")
        settings.update(STORAGES[request.param])
    app = make_app(database_url, **settings)
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()
    if app.extensions["better_auth"].secondary is not None:
        app.extensions["better_auth"].secondary.close()


def reset_tokens(client: FlaskClient, outbox: Outbox, address: str, count: int) -> list[str]:
    tokens = []
    for _ in range(count):
        assert request_reset(client, address).status_code == 200
        tokens.append(outbox.one(kind="reset-password", to=address)["token"])
    return tokens


def assert_token_dead(client: FlaskClient, token: str) -> None:
    link = client.get(f"{AUTH}/reset-password/{token}?callbackURL=%2Freset")
    assert redirected_to(link) == f"{BASE}/reset?error=INVALID_TOKEN"
    assert_code(reset(client, token), 400, "INVALID_TOKEN")


def test_a_new_password_ends_the_other_reset_tokens(storage_app: Flask, outbox: Outbox):
    ann, bob = storage_app.test_client(), storage_app.test_client()
    account = sign_up(ann)
    other = sign_up(bob, "bob@example.com")
    first, second, third = reset_tokens(ann, outbox, account.email, 3)
    (bobs,) = reset_tokens(bob, outbox, other.email, 1)

    assert reset(ann, second).get_json() == {"status": True}
    assert_token_dead(ann, first)
    assert_token_dead(ann, third)
    # Another user's token is untouched.
    link = bob.get(f"{AUTH}/reset-password/{bobs}?callbackURL=%2Freset")
    assert redirected_to(link) == f"{BASE}/reset?token={bobs}"

    # A change of password ends them too.
    (fourth,) = reset_tokens(ann, outbox, account.email, 1)
    signed_in = storage_app.test_client()
    response = signed_in.post(
        f"{AUTH}/sign-in/email",
        json={"email": account.email, "password": NEW_PASSWORD},
        headers=ORIGIN,
    )
    assert response.status_code == 200
    response = signed_in.post(
        f"{AUTH}/change-password",
        json={"currentPassword": NEW_PASSWORD, "newPassword": PASSWORD},
        headers=ORIGIN,
    )
    assert response.status_code == 200
    assert_token_dead(ann, fourth)
    assert reset(bob, bobs).get_json() == {"status": True}


# --------------------------------------------------------------------------------------------
# 7. verification and change-of-email links work once; racing changes get a 4xx


def send_verification(client: FlaskClient, address: str, **extra: Any) -> None:
    response = client.post(
        f"{AUTH}/send-verification-email", json={"email": address, **extra}, headers=ORIGIN
    )
    assert response.get_json() == {"status": True}


def change_email(client: FlaskClient, new: str, **extra: Any) -> None:
    response = client.post(f"{AUTH}/change-email", json={"newEmail": new, **extra}, headers=ORIGIN)
    assert response.get_json() == {"status": True}


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json() == {"message": "Invalid token", "code": "INVALID_TOKEN"}


@pytest.mark.settings(AUTO_SIGN_IN_AFTER_VERIFICATION=True)
def test_a_verification_link_works_once(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    send_verification(client, account.email)
    first = outbox.one(kind="verification", to=account.email)
    time.sleep(1.05)  # a JWT is the same within one second (iat): wait for a distinct one
    send_verification(client, account.email)
    second = outbox.one(kind="verification", to=account.email)
    browser = app.test_client()
    followed = click(browser, first["url"].replace("callbackURL=%2F", "callbackURL="))
    assert followed.get_json() == {"status": True, "user": None}
    assert get_session(browser)["user"]["emailVerified"] is True  # signed in by the link
    # Replayed, in another browser: refused, and no session.
    replay = app.test_client()
    assert_invalid_token(click(replay, first["url"].replace("callbackURL=%2F", "callbackURL=")))
    assert redirected_to(click(replay, first["url"])) == f"{BASE}/?error=INVALID_TOKEN"
    assert get_session(replay) is None
    # Another, unused link of the now verified address answers as Better Auth does, once.
    assert redirected_to(click(replay, second["url"])) == f"{BASE}/"
    assert get_session(replay) is None
    assert redirected_to(click(replay, second["url"])) == f"{BASE}/?error=INVALID_TOKEN"


CHANGE = {"CHANGE_EMAIL_ENABLED": True}


@pytest.mark.settings(**CHANGE)
def test_a_change_of_email_link_works_once_even_after_changing_back(
    app: Flask, client: FlaskClient, outbox: Outbox
):
    account = sign_up(client)
    change_email(client, "new@example.com")
    to_new = outbox.one(kind="verification", to="new@example.com")
    assert redirected_to(click(client, to_new["url"])) == f"{BASE}/"
    change_email(client, account.email)
    back = outbox.one(kind="verification", to=account.email)
    assert redirected_to(click(client, back["url"])) == f"{BASE}/"
    assert get_session(client)["user"]["email"] == account.email
    # The first link's state holds again (the address is ann@ again): still spent.
    assert redirected_to(click(client, to_new["url"])) == f"{BASE}/?error=INVALID_TOKEN"
    assert get_session(client)["user"]["email"] == account.email


@pytest.mark.settings(SEND_CHANGE_EMAIL_CONFIRMATION=True, **CHANGE)
def test_a_confirmation_link_works_once(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    send_verification(client, account.email)
    assert click(client, outbox.one(kind="verification", to=account.email)["url"])
    change_email(client, "new@example.com")
    confirmation = outbox.one(kind="change-email-confirmation", to=account.email)
    assert redirected_to(click(client, confirmation["url"])) == f"{BASE}/"
    outbox.one(kind="verification", to="new@example.com")
    assert redirected_to(click(client, confirmation["url"])) == f"{BASE}/?error=INVALID_TOKEN"
    outbox.nothing_new()


@pytest.mark.settings(**CHANGE)
def test_two_users_changing_to_one_address(app: Flask, outbox: Outbox):
    ann, bob = app.test_client(), app.test_client()
    sign_up(ann, "ann@example.com")
    sign_up(bob, "bob@example.com")
    change_email(ann, "new@example.com")
    anns = outbox.one(kind="verification", to="new@example.com")
    change_email(bob, "new@example.com")
    bobs = outbox.one(kind="verification", to="new@example.com")
    assert redirected_to(click(ann, anns["url"])) == f"{BASE}/"
    assert redirected_to(click(bob, bobs["url"])) == f"{BASE}/?error=USER_ALREADY_EXISTS"
    bare = click(bob, bobs["url"].replace("callbackURL=%2F", "callbackURL="))
    assert bare.status_code == 422
    assert bare.get_json() == {"message": "User already exists.", "code": "USER_ALREADY_EXISTS"}
    assert get_session(bob)["user"]["email"] == "bob@example.com"


@pytest.mark.settings(**CHANGE)
def test_a_change_racing_another_accounts_change_is_a_4xx(app: Flask, outbox: Outbox):
    """Bob's link is followed while Ann's change to the same address commits between Bob's
    checks and his update: the unique index refuses Bob's, answered as a taken address."""
    ann, bob = app.test_client(), app.test_client()
    sign_up(ann, "ann@example.com")
    sign_up(bob, "bob@example.com")
    change_email(bob, "new@example.com")
    bobs = outbox.one(kind="verification", to="new@example.com")
    with app.app_context():
        engine = app.extensions["better_auth"].db.engine
    done: list[bool] = []

    def meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE") and "SET email" in statement and not done:
            done.append(True)
            with engine.connect() as other:  # another request's transaction wins the race
                other.execute(
                    update(User)
                    .where(User.email == "ann@example.com")
                    .values(email="new@example.com")
                )
                other.commit()

    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        response = click(bob, bobs["url"].replace("callbackURL=%2F", "callbackURL="))
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
    assert done == [True]
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["code"] == "USER_ALREADY_EXISTS"
    assert get_session(bob)["user"]["email"] == "bob@example.com"
    assert get_session(ann)["user"]["email"] == "new@example.com"


@pytest.mark.settings(UPDATE_EMAIL_WITHOUT_VERIFICATION=True, **CHANGE)
def test_a_direct_change_racing_another_account_is_answered_as_taken(app: Flask, outbox: Outbox):
    ann, bob = app.test_client(), app.test_client()
    sign_up(ann, "ann@example.com")
    sign_up(bob, "bob@example.com")
    with app.app_context():
        engine = app.extensions["better_auth"].db.engine
    done: list[bool] = []

    def meanwhile(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE") and "SET email" in statement and not done:
            done.append(True)
            with engine.connect() as other:
                other.execute(
                    update(User)
                    .where(User.email == "ann@example.com")
                    .values(email="new@example.com")
                )
                other.commit()

    event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        response = bob.post(
            f"{AUTH}/change-email", json={"newEmail": "new@example.com"}, headers=ORIGIN
        )
    finally:
        event.remove(engine, "before_cursor_execute", meanwhile)
    assert done == [True]
    assert response.status_code == 200
    assert response.get_json() == {"status": True}
    assert get_session(bob)["user"]["email"] == "bob@example.com"


# --------------------------------------------------------------------------------------------
# 12. no enumeration by time: the same work for known and unknown addresses, mail afterwards


def normalised(statements: list[str]) -> list[str]:
    return [" ".join(statement.split()) for statement in statements]


def test_reset_requests_run_the_same_statements(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    anonymous = app.test_client()
    request_reset(anonymous, account.email)  # warm up (first-use reflection, caches)
    request_reset(anonymous, "warm@example.com")
    outbox.new()
    with queries(app) as known:
        assert request_reset(anonymous, account.email).status_code == 200
    with queries(app) as unknown:
        assert request_reset(anonymous, "nobody@example.com").status_code == 200
    assert normalised(known) == normalised(unknown)
    assert any(s.startswith("INSERT INTO verification") for s in normalised(known)), known
    assert len(outbox.new()) == 1


@pytest.mark.settings(REQUIRE_EMAIL_VERIFICATION=True)
def test_anonymous_verification_requests_run_the_same_statements(app: Flask, outbox: Outbox):
    client = app.test_client()
    sign_up(client, "ann@example.com")
    outbox.new()
    anonymous = app.test_client()
    with queries(app) as known:
        send_verification(anonymous, "ann@example.com")
    with queries(app) as unknown:
        send_verification(anonymous, "nobody@example.com")
    assert normalised(known) == normalised(unknown)
    assert len(outbox.new()) == 1


def test_mail_goes_out_after_the_response(app: Flask, client: FlaskClient, outbox: Outbox):
    """Outside testing mode the message is delivered when the server closes the response
    (after sending it); the test client closes it on ``close()``."""
    account = sign_up(client)
    app.testing = False
    anonymous = app.test_client()
    delivered = []
    for address in (account.email, "nobody@example.com"):
        response = anonymous.post(
            f"{AUTH}/request-password-reset", json={"email": address}, headers=ORIGIN
        )
        assert response.status_code == 200
        assert outbox.new() == []  # answered, nothing delivered yet
        response.close()
        delivered.append(outbox.new())
    assert delivered[1] == []
    (mail,) = delivered[0]  # rendered from the templates in an app context
    assert mail["to"] == account.email and mail["kind"] == "reset-password"
    assert mail["url"] in mail["text"]
    assert reset(anonymous, mail["token"]).get_json() == {"status": True}


def test_mail_outside_a_request_goes_out_at_once(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    with app.app_context():
        db = app.extensions["better_auth"].db
        user = db.session.get(User, account.user["id"])
        app.extensions["better_auth"].mailer.send(
            "verification", user=user, url="http://localhost/x", token="x"
        )
    assert [m["to"] for m in outbox.new()] == [account.email]

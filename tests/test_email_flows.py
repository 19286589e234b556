"""Every email flow end to end over HTTP, on SQLite and PostgreSQL.

Messages are read from the outbox backend (one JSON object per line) or, for delivery tests,
from the app's callbacks and a real SMTP server (aiosmtpd). Each mailed URL is followed as a
user clicking it would: scheme and host stripped, GET with the test client, then the 302
``Location`` followed where a browser would go next.

Reference: /work/shared/spec/better-auth-1.7.md §2.1, §2.2, §2.11, §2.15-§2.21, §6, §7 and
/work/shared/spec/peer-wire.md §18.
"""

from __future__ import annotations

import base64
import email
import email.policy
import html
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit

import pytest
from aiosmtpd.controller import Controller
from conftest import BASE, ORIGIN, PASSWORD, SECRET, make_app, set_cookies, sign_in, sign_up
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from flask_better_auth import BetterAuth
from flask_better_auth.email import Email
from flask_better_auth.models import Account, Session, User, Verification, metadata
from flask_better_auth.signals import email_verified, password_reset
from flask_better_auth.tokens import sign_jwt

AUTH = "/api/auth"
SESSION_COOKIE = "better-auth.session-token"
EVIL = "http://evil.example"
RESET_MESSAGE = "If this email exists in our system, check your email for the reset link"
NEW_PASSWORD = "brand-new-horse-2"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ID = re.compile(r"^[A-Za-z0-9]{32}$")
EMAIL_LOGGER = "flask_better_auth.email"

# --------------------------------------------------------------------------------------------
# helpers


class Outbox:
    """The JSON Lines outbox of the app: every message, and those not looked at yet."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = 0

    def all(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def new(self) -> list[dict[str, Any]]:
        """The messages sent since the last look."""
        messages = self.all()
        fresh = messages[self._seen :]
        self._seen = len(messages)
        return fresh

    def one(self, *, kind: str, to: str) -> dict[str, Any]:
        """Exactly one new message, of this kind, to this address."""
        fresh = self.new()
        assert len(fresh) == 1, fresh
        message = fresh[0]
        assert message["kind"] == kind
        assert message["to"] == to
        assert list(message) == [
            "to",
            "subject",
            "kind",
            "url",
            "token",
            "text",
            "html",
            "user_id",
            "sent_at",
        ]
        assert ISO.match(message["sent_at"])
        assert message["url"] in message["text"]
        assert html.escape(message["url"]) in message["html"]
        assert message["token"] in message["url"]
        return message

    def nothing_new(self) -> None:
        assert self.new() == []


def ordered(response: Any) -> Any:
    return json.loads(response.get_data(as_text=True))


def assert_error(response: Any, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert list(ordered(response).items()) == [("message", message), ("code", code)]


def local(url: str) -> str:
    """A URL of this app as the test client takes it: path and query (scheme and host checked)."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        assert f"{parts.scheme}://{parts.netloc}" == BASE, url
    return parts.path + (f"?{parts.query}" if parts.query else "")


def click(client: FlaskClient, url: str) -> Any:
    """Open a mailed link: GET its path and query with this client (its cookies included)."""
    return client.get(local(url))


def redirected_to(response: Any) -> str:
    """The target of a 302, resolved against the base URL as a browser resolves it."""
    assert response.status_code == 302, response.get_data(as_text=True)
    return urljoin(f"{BASE}/", response.headers["Location"])


def browse(client: FlaskClient, response: Any) -> Any:
    """Follow a 302 as a browser does."""
    return client.get(local(redirected_to(response)))


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWT, decoded without the package."""
    header, payload, _ = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256"}
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def get_session(client: FlaskClient) -> Any:
    response = client.get(f"{AUTH}/get-session")
    assert response.status_code == 200
    return response.get_json()


def db_rows(app: Flask, model: Any, *where: Any) -> list[Any]:
    with app.app_context():
        db = app.extensions["better_auth"].db
        return list(db.session.execute(select(model).where(*where)).scalars())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request_reset(client: FlaskClient, address: str, redirect_to: str | None = "/reset") -> Any:
    body: dict[str, Any] = {"email": address}
    if redirect_to is not None:
        body["redirectTo"] = redirect_to
    return client.post(f"{AUTH}/request-password-reset", json=body, headers=ORIGIN)


def reset(client: FlaskClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return client.post(
        f"{AUTH}/reset-password", json={"newPassword": password, "token": token}, headers=ORIGIN
    )


def verify_by_link(client: FlaskClient, outbox: Outbox, address: str) -> None:
    """Verify the signed-in user's address the way a user does: ask for the mail, click it."""
    response = client.post(
        f"{AUTH}/send-verification-email", json={"email": address}, headers=ORIGIN
    )
    assert response.get_json() == {"status": True}
    mail = outbox.one(kind="verification", to=address)
    assert click(client, mail["url"]).status_code == 302
    assert get_session(client)["user"]["emailVerified"] is True


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def outbox_file(tmp_path: Path) -> Path:
    return tmp_path / "mail" / "outbox.jsonl"


@pytest.fixture
def outbox(outbox_file: Path) -> Outbox:
    return Outbox(outbox_file)


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str, outbox_file: Path) -> Iterator[Flask]:
    """conftest's app, mailing to the outbox (``@pytest.mark.settings`` may override that)."""
    marker = request.node.get_closest_marker("settings")
    overrides = {"EMAIL_BACKEND": "outbox", "EMAIL_OUTBOX": str(outbox_file)}
    overrides.update(marker.kwargs if marker else {})
    app = make_app(database_url, **overrides)
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


@pytest.fixture
def build(database_url: str) -> Iterator[Callable[..., Flask]]:
    """An app factory for what ``make_app`` cannot set: callbacks, raw config, templates."""
    apps: list[Flask] = []

    def factory(
        *, config: dict[str, Any] | None = None, template_folder: str | None = None, **kwargs: Any
    ) -> Flask:
        app = Flask(__name__, template_folder=template_folder or "templates")
        app.config.update(
            TESTING=True,
            SQLALCHEMY_DATABASE_URI=database_url,
            BETTER_AUTH_SECRET=SECRET,
            BETTER_AUTH_BASE_URL=BASE,
            BETTER_AUTH_SCRYPT_N=1024,
            BETTER_AUTH_DELETE_USER_ENABLED=True,
        )
        app.config.update(config or {})
        auth = BetterAuth(app, **kwargs)
        with app.app_context():
            metadata.drop_all(auth.db.engine)
            metadata.create_all(auth.db.engine)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            app.extensions["better_auth"].db.session.remove()
            app.extensions["better_auth"].db.engine.dispose()


# --------------------------------------------------------------------------------------------
# email verification (§2.1, §2.2, §2.20, §7.1)

REQUIRE = {"REQUIRE_EMAIL_VERIFICATION": True}


@pytest.mark.settings(**REQUIRE)
def test_sign_up_sends_the_verification_mail(app: Flask, client: FlaskClient, outbox: Outbox):
    response = client.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Ann", "email": "Ann@Example.com", "password": PASSWORD, "callbackURL": "/x"},
        headers=ORIGIN,
    )
    assert response.status_code == 200
    body = ordered(response)
    assert list(body) == ["token", "user"]
    assert body["token"] is None
    assert body["user"]["email"] == "ann@example.com"
    assert body["user"]["emailVerified"] is False
    assert response.headers.getlist("Set-Cookie") == []

    mail = outbox.one(kind="verification", to="ann@example.com")
    assert mail["subject"] == "Verify your email address for Better Auth"
    assert mail["user_id"] == body["user"]["id"]
    assert mail["url"] == f"{BASE}{AUTH}/verify-email?token={mail['token']}&callbackURL=%2Fx"
    assert "Hello Ann," in mail["text"]
    assert '<a href="' in mail["html"]
    claims = jwt_claims(mail["token"])
    assert claims["email"] == "ann@example.com"
    assert claims["userId"] == body["user"]["id"]
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 60
    assert not get_session(client)


@pytest.mark.settings(**REQUIRE)
def test_sign_in_before_verifying_is_refused_without_a_new_mail(
    client: FlaskClient, outbox: Outbox
):
    sign_up(client)
    outbox.one(kind="verification", to="ann@example.com")
    response = sign_in(client, "ann@example.com")
    assert_error(response, 403, "EMAIL_NOT_VERIFIED", "Email not verified")
    assert response.headers.getlist("Set-Cookie") == []
    outbox.nothing_new()


@pytest.mark.settings(SEND_VERIFICATION_EMAIL_ON_SIGN_IN=True, **REQUIRE)
def test_sign_in_before_verifying_resends_the_mail(client: FlaskClient, outbox: Outbox):
    sign_up(client)
    outbox.one(kind="verification", to="ann@example.com")
    response = sign_in(client, "ann@example.com", callbackURL="/after")
    assert_error(response, 403, "EMAIL_NOT_VERIFIED", "Email not verified")
    mail = outbox.one(kind="verification", to="ann@example.com")
    assert query(mail["url"])["callbackURL"] == ["/after"]
    # The resent link works.
    assert redirected_to(click(client, mail["url"])) == f"{BASE}/after"
    assert sign_in(client, "ann@example.com").status_code == 200
    # A wrong password sends nothing.
    outbox.nothing_new()


@pytest.mark.settings(**REQUIRE)
def test_following_the_verification_link(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client, callbackURL="/api/open")
    mail = outbox.one(kind="verification", to=account.email)
    verified: list[Any] = []

    def receiver(sender: Flask, **kwargs: Any) -> None:
        verified.append((sender, kwargs["user"].id))

    with email_verified.connected_to(receiver, app):
        response = click(client, mail["url"])
    assert redirected_to(response) == f"{BASE}/api/open"
    assert response.headers.getlist("Set-Cookie") == []
    assert verified == [(app, account.user["id"])]
    assert browse(client, response).get_json() == {"signed_in": False}

    assert sign_in(client, account.email).status_code == 200
    assert get_session(client)["user"]["emailVerified"] is True
    # Single-use (unlike Better Auth's): the same link again is refused.
    again = click(client, mail["url"])
    assert redirected_to(again) == f"{BASE}/api/open?error=INVALID_TOKEN"
    # Without callbackURL the answer is JSON.
    bare = click(client, f"{BASE}{AUTH}/verify-email?token={mail['token']}")
    assert_error(bare, 401, "INVALID_TOKEN", "Invalid token")
    outbox.nothing_new()


@pytest.mark.settings(**REQUIRE)
def test_tampered_verification_tokens(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    mail = outbox.one(kind="verification", to=account.email)
    header, payload, sig = mail["token"].split(".")
    middle = len(sig) // 2
    flipped = sig[:middle] + ("A" if sig[middle] != "A" else "B") + sig[middle + 1 :]
    claims = jwt_claims(mail["token"])
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps({**claims, "email": "eve@example.com"}).encode())
        .decode()
        .rstrip("=")
    )
    other_secret = sign_jwt(
        {"email": account.email, "userId": account.user["id"]}, "x" * 40 + SECRET, 600
    )
    for bad in (
        f"{header}.{payload}.{flipped}",
        f"{header}.{forged_payload}.{sig}",
        other_secret,
        "not-a-jwt",
    ):
        response = click(client, f"{BASE}{AUTH}/verify-email?token={bad}&callbackURL=%2Fdone")
        assert redirected_to(response) == f"{BASE}/done?error=INVALID_TOKEN"
        response = click(client, f"{BASE}{AUTH}/verify-email?token={bad}")
        assert_error(response, 401, "INVALID_TOKEN", "Invalid token")
    # An existing query string gets "&error=".
    response = click(
        client, f"{BASE}{AUTH}/verify-email?token=bad&callbackURL={quote('/done?x=1', safe='')}"
    )
    assert redirected_to(response) == f"{BASE}/done?x=1&error=INVALID_TOKEN"
    # A valid token whose userId is another user's.
    mixed = sign_jwt({"email": account.email, "userId": "someone-else"}, SECRET, 600)
    response = click(client, f"{BASE}{AUTH}/verify-email?token={mixed}")
    assert_error(response, 401, "INVALID_TOKEN", "Invalid token")
    assert sign_in(client, account.email).status_code == 403
    (user,) = db_rows(app, User)
    assert user.email_verified is False


@pytest.mark.settings(EMAIL_VERIFICATION_EXPIRES_IN=1, **REQUIRE)
def test_expired_verification_link(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client, callbackURL="/done")
    mail = outbox.one(kind="verification", to=account.email)
    claims = jwt_claims(mail["token"])
    assert claims["exp"] - claims["iat"] == 1
    time.sleep(2.1)
    assert redirected_to(click(client, mail["url"])) == f"{BASE}/done?error=TOKEN_EXPIRED"
    response = click(client, f"{BASE}{AUTH}/verify-email?token={mail['token']}")
    assert_error(response, 401, "TOKEN_EXPIRED", "Token expired")
    # The same with a token signed already expired.
    stale = sign_jwt({"email": account.email, "userId": account.user["id"]}, SECRET, -60)
    response = click(client, f"{BASE}{AUTH}/verify-email?token={stale}")
    assert_error(response, 401, "TOKEN_EXPIRED", "Token expired")
    assert db_rows(app, User)[0].email_verified is False


@pytest.mark.settings(AUTO_SIGN_IN_AFTER_VERIFICATION=True, **REQUIRE)
def test_auto_sign_in_after_verification(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client, callbackURL="/api/me")
    mail = outbox.one(kind="verification", to=account.email)
    browser = app.test_client()  # the mail is opened in a browser with no session yet
    response = click(browser, mail["url"])
    assert redirected_to(response) == f"{BASE}/api/me"
    cookie = set_cookies(response)[SESSION_COOKIE]
    assert cookie["max-age"] == str(7 * 24 * 3600)
    me = browse(browser, response)
    assert me.status_code == 200
    assert me.get_json()["user"]["emailVerified"] is True
    assert me.get_json()["user"]["id"] == account.user["id"]
    assert len(db_rows(app, Session)) == 1
    # Clicking again while signed in makes no second session.
    assert click(browser, mail["url"]).status_code == 302
    assert len(db_rows(app, Session)) == 1


@pytest.mark.settings(SEND_VERIFICATION_EMAIL_ON_SIGN_UP=True)
def test_verification_mail_on_sign_up_without_requiring_it(client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    assert account.token  # signed in at once
    mail = outbox.one(kind="verification", to=account.email)
    assert query(mail["url"])["callbackURL"] == ["/"]
    assert redirected_to(click(client, mail["url"])) == f"{BASE}/"
    assert get_session(client)["user"]["emailVerified"] is True


@pytest.mark.settings(SEND_VERIFICATION_EMAIL_ON_SIGN_UP=False, **REQUIRE)
def test_no_verification_mail_on_sign_up_when_turned_off(client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    assert account.token is None
    outbox.nothing_new()
    # The user asks for it instead.
    anonymous = client.application.test_client()
    anonymous.post(f"{AUTH}/send-verification-email", json={"email": account.email}, headers=ORIGIN)
    mail = outbox.one(kind="verification", to=account.email)
    assert click(anonymous, mail["url"]).status_code == 302
    assert sign_in(anonymous, account.email).status_code == 200


@pytest.mark.settings(**REQUIRE)
def test_duplicate_sign_up_answers_generically(app: Flask, client: FlaskClient, outbox: Outbox):
    first = sign_up(client)
    outbox.one(kind="verification", to=first.email)
    answers = []
    for name, address in (("Eve", "ANN@example.com"), ("Ann", "ann@example.com")):
        response = client.post(
            f"{AUTH}/sign-up/email",
            json={"name": name, "email": address, "password": "other-password-9"},
            headers=ORIGIN,
        )
        assert response.status_code == 200
        assert response.headers.getlist("Set-Cookie") == []
        body = ordered(response)
        assert list(body) == ["token", "user"]
        assert body["token"] is None
        user = body["user"]
        assert list(user) == list(first.user)
        assert ID.match(user["id"])
        assert user["id"] != first.user["id"]
        assert (user["name"], user["email"], user["emailVerified"], user["image"]) == (
            name,
            "ann@example.com",
            False,
            None,
        )
        answers.append(user["id"])
    assert answers[0] != answers[1]
    outbox.nothing_new()
    assert [u.id for u in db_rows(app, User)] == [first.user["id"]]


@pytest.mark.settings(**REQUIRE)
def test_untrusted_callback_urls_are_refused(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    mail = outbox.one(kind="verification", to=account.email)
    for target in (f"{EVIL}/x", "//evil.example/x"):
        response = click(
            client,
            f"{BASE}{AUTH}/verify-email?token={mail['token']}&callbackURL={quote(target, safe='')}",
        )
        assert_error(response, 403, "INVALID_CALLBACK_URL", "Invalid callbackURL")
    response = client.post(
        f"{AUTH}/sign-up/email",
        json={"name": "Bo", "email": "bo@example.com", "password": PASSWORD, "callbackURL": EVIL},
        headers=ORIGIN,
    )
    assert_error(response, 403, "INVALID_CALLBACK_URL", "Invalid callbackURL")
    outbox.nothing_new()
    assert db_rows(app, User)[0].email_verified is False


# --------------------------------------------------------------------------------------------
# POST /send-verification-email (§2.21)


@pytest.mark.settings(EMAIL_BACKEND=None)
def test_send_verification_email_without_a_sender(client: FlaskClient):
    response = client.post(
        f"{AUTH}/send-verification-email", json={"email": "ann@example.com"}, headers=ORIGIN
    )
    assert_error(
        response, 400, "VERIFICATION_EMAIL_NOT_ENABLED", "Verification email isn't enabled"
    )


def test_send_verification_email_anonymous(app: Flask, outbox: Outbox):
    sign_up(app.test_client(), "ann@example.com")
    sign_up(app.test_client(), "vera@example.com")
    verified = app.test_client()
    sign_in(verified, "vera@example.com")
    verify_by_link(verified, outbox, "vera@example.com")

    anonymous = app.test_client()
    answers = {}
    for address in ("nobody@example.com", "ANN@example.com", "vera@example.com"):
        started = time.monotonic()
        response = anonymous.post(
            f"{AUTH}/send-verification-email",
            json={"email": address, "callbackURL": "/welcome"},
            headers=ORIGIN,
        )
        elapsed = time.monotonic() - started
        assert elapsed >= 0.5, (address, elapsed)
        assert response.status_code == 200
        answers[address] = response.get_data()
    assert set(answers.values()) == {b'{"status":true}'}
    mail = outbox.one(kind="verification", to="ann@example.com")
    assert query(mail["url"])["callbackURL"] == ["/welcome"]
    assert redirected_to(click(anonymous, mail["url"])) == f"{BASE}/welcome"
    reader = app.test_client()
    sign_in(reader, "ann@example.com")
    assert get_session(reader)["user"]["emailVerified"] is True


def test_send_verification_email_signed_in(client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    response = client.post(
        f"{AUTH}/send-verification-email", json={"email": "bob@example.com"}, headers=ORIGIN
    )
    assert_error(response, 400, "EMAIL_MISMATCH", "Email mismatch")
    outbox.nothing_new()
    verify_by_link(client, outbox, account.email)
    response = client.post(
        f"{AUTH}/send-verification-email", json={"email": account.email}, headers=ORIGIN
    )
    assert_error(response, 400, "EMAIL_ALREADY_VERIFIED", "Email is already verified")
    outbox.nothing_new()


# --------------------------------------------------------------------------------------------
# password reset (§2.17-§2.19, peer-wire §18)


def test_request_password_reset_known_and_unknown(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    known = request_reset(client, "ANN@example.com")
    unknown = request_reset(client, "nobody@example.com")
    for response in (known, unknown):
        assert response.status_code == 200
        assert list(ordered(response).items()) == [("status", True), ("message", RESET_MESSAGE)]
    assert known.get_data() == unknown.get_data()
    mail = outbox.one(kind="reset-password", to=account.email)
    outbox.nothing_new()
    assert mail["subject"] == "Reset your Better Auth password"
    assert mail["user_id"] == account.user["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{24}", mail["token"])
    assert mail["url"] == f"{BASE}{AUTH}/reset-password/{mail['token']}?callbackURL=%2Freset"
    row, decoy = sorted(db_rows(app, Verification), key=lambda r: r.value != account.user["id"])
    assert row.identifier == f"reset-password:{mail['token']}"
    assert row.value == account.user["id"]
    # The unknown address stored a decoy of the same shape (equal work), owned by no user.
    assert decoy.identifier.startswith("reset-password:") and ID.match(decoy.value)
    lifetime = row.expires_at - datetime.now(UTC)
    assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)


def test_request_password_reset_untrusted_redirect(app: Flask, client: FlaskClient, outbox: Outbox):
    sign_up(client)
    response = request_reset(client, "ann@example.com", f"{EVIL}/reset")
    assert_error(response, 403, "INVALID_REDIRECT_URL", "Invalid redirectURL")
    outbox.nothing_new()
    assert db_rows(app, Verification) == []


@pytest.mark.settings(EMAIL_BACKEND=None)
def test_request_password_reset_without_a_sender(client: FlaskClient):
    sign_up(client)
    response = request_reset(client, "ann@example.com")
    assert_error(response, 400, "RESET_PASSWORD_DISABLED", "Reset password isn't enabled")


def test_reset_link_redirects_with_the_token(client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    anonymous = client.application.test_client()
    for redirect_to, expected in (
        ("/reset", f"{BASE}/reset?token="),
        (f"{BASE}/reset?lang=en", f"{BASE}/reset?lang=en&token="),
    ):
        request_reset(anonymous, account.email, redirect_to)
        mail = outbox.one(kind="reset-password", to=account.email)
        response = click(anonymous, mail["url"])
        assert response.status_code == 302
        assert response.headers["Location"] == expected + mail["token"]
        # Opening the link does not use the token up.
        assert click(anonymous, mail["url"]).headers["Location"] == expected + mail["token"]
    bogus = click(anonymous, f"{BASE}{AUTH}/reset-password/bogus-token?callbackURL=%2Freset")
    assert bogus.headers["Location"] == f"{BASE}/reset?error=INVALID_TOKEN"
    untrusted = click(
        anonymous, f"{BASE}{AUTH}/reset-password/x?callbackURL={quote(EVIL, safe='')}"
    )
    assert_error(untrusted, 403, "INVALID_CALLBACK_URL", "Invalid callbackURL")


def test_reset_password_flow(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)  # this device stays signed in
    before = get_session(client)["session"]["token"]
    browser = app.test_client()
    assert request_reset(browser, account.email).status_code == 200
    mail = outbox.one(kind="reset-password", to=account.email)
    landing = redirected_to(click(browser, mail["url"]))
    (token,) = query(landing)["token"]
    assert token == mail["token"]

    short = reset(browser, token, "short")
    assert_error(short, 400, "PASSWORD_TOO_SHORT", "Password too short")
    assert len(db_rows(app, Verification)) == 1  # still usable

    events: list[Any] = []

    def receiver(sender: Flask, **kwargs: Any) -> None:
        events.append((sender, kwargs["user"].id))

    with password_reset.connected_to(receiver, app):
        done = reset(browser, token)
    assert done.status_code == 200
    assert ordered(done) == {"status": True}
    assert done.headers.getlist("Set-Cookie") == []
    assert "set-auth-token" not in done.headers
    assert events == [(app, account.user["id"])]
    assert get_session(client)["session"]["token"] == before  # other sessions are kept
    assert not get_session(browser)  # and nobody was signed in

    assert_error(reset(browser, token, "yet-another-pw-3"), 400, "INVALID_TOKEN", "Invalid token")
    assert db_rows(app, Verification) == []
    assert sign_in(browser, account.email).status_code == 401
    assert sign_in(browser, account.email, NEW_PASSWORD).status_code == 200


def test_reset_password_token_in_the_query(client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    request_reset(client, account.email)
    mail = outbox.one(kind="reset-password", to=account.email)
    response = client.post(
        f"{AUTH}/reset-password?token={mail['token']}",
        json={"newPassword": NEW_PASSWORD},
        headers=ORIGIN,
    )
    assert ordered(response) == {"status": True}
    missing = client.post(
        f"{AUTH}/reset-password", json={"newPassword": NEW_PASSWORD}, headers=ORIGIN
    )
    assert_error(missing, 400, "INVALID_TOKEN", "Invalid token")


@pytest.mark.settings(REVOKE_SESSIONS_ON_PASSWORD_RESET=True)
def test_reset_password_revokes_sessions(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    other = app.test_client()
    sign_in(other, account.email)
    assert len(db_rows(app, Session)) == 2
    browser = app.test_client()
    request_reset(browser, account.email)
    mail = outbox.one(kind="reset-password", to=account.email)
    assert ordered(reset(browser, mail["token"])) == {"status": True}
    assert db_rows(app, Session) == []
    assert not get_session(client)
    assert not get_session(other)


def test_on_password_reset_callback(build: Callable[..., Flask]):
    calls: list[str] = []
    app = build(
        send_reset_password=lambda **kw: calls.append(kw["token"]),
        on_password_reset=lambda **kw: calls.append(f"reset {kw['user'].email}"),
    )
    client = app.test_client()
    sign_up(client)
    request_reset(client, "ann@example.com")
    assert len(calls) == 1
    assert ordered(reset(client, calls[0])) == {"status": True}
    assert calls[1:] == ["reset ann@example.com"]


@pytest.mark.settings(RESET_PASSWORD_TOKEN_EXPIRES_IN=120)
def test_expired_reset_token(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    request_reset(client, account.email)
    mail = outbox.one(kind="reset-password", to=account.email)
    (row,) = db_rows(app, Verification)
    assert timedelta(seconds=100) < row.expires_at - datetime.now(UTC) <= timedelta(seconds=120)
    with app.app_context():
        db = app.extensions["better_auth"].db
        db.session.execute(
            update(Verification).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        db.session.commit()
    assert click(client, mail["url"]).headers["Location"] == f"{BASE}/reset?error=INVALID_TOKEN"
    assert_error(reset(client, mail["token"]), 400, "INVALID_TOKEN", "Invalid token")
    assert sign_in(client, account.email).status_code == 200


def race(app: Flask, token: str, passwords: list[str]) -> list[tuple[int, Any]]:
    """POST /reset-password with ``token`` from one thread per password, released together."""
    barrier = threading.Barrier(len(passwords))
    results: list[tuple[int, Any] | None] = [None] * len(passwords)
    errors: list[BaseException] = []

    def attempt(i: int) -> None:
        try:
            racer = app.test_client()
            barrier.wait(timeout=10)
            response = reset(racer, token, passwords[i])
            results[i] = (response.status_code, response.get_json())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(passwords))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return [result for result in results if result is not None]


def test_concurrent_resets_with_one_token(app: Flask, client: FlaskClient, outbox: Outbox):
    """Two simultaneous POST /reset-password with one token: exactly one wins, every time."""
    rounds = 10
    account = sign_up(client)
    for n in range(rounds):
        # One token at a time: a new password ends the user's other reset tokens.
        request_reset(client, account.email)
        token = outbox.one(kind="reset-password", to=account.email)["token"]
        passwords = [f"password-{n}-a", f"password-{n}-b"]
        results = race(app, token, passwords)
        assert sorted(status for status, _ in results) == [200, 400], (n, results)
        winner = 0 if results[0][0] == 200 else 1
        assert results[winner][1] == {"status": True}
        assert results[1 - winner][1] == {"message": "Invalid token", "code": "INVALID_TOKEN"}
        assert sign_in(client, account.email, passwords[1 - winner]).status_code == 401
        assert sign_in(client, account.email, passwords[winner]).status_code == 200
    assert db_rows(app, Verification) == []


# --------------------------------------------------------------------------------------------
# change of email (§2.11, §2.20)

CHANGE = {"CHANGE_EMAIL_ENABLED": True}


def change_email(client: FlaskClient, new: str, **extra: Any) -> Any:
    return client.post(f"{AUTH}/change-email", json={"newEmail": new, **extra}, headers=ORIGIN)


def test_change_email_disabled(client: FlaskClient, outbox: Outbox):
    sign_up(client)
    response = change_email(client, "new@example.com")
    assert_error(response, 400, "CHANGE_EMAIL_DISABLED", "Change email is disabled")
    outbox.nothing_new()


@pytest.mark.settings(**CHANGE)
def test_change_email_to_the_same_address(client: FlaskClient, outbox: Outbox):
    sign_up(client)
    response = change_email(client, "ANN@example.com")
    assert response.status_code == 400
    assert ordered(response) == {"message": "Email is the same"}
    outbox.nothing_new()


@pytest.mark.settings(EMAIL_BACKEND=None, **CHANGE)
def test_change_email_without_a_sender(client: FlaskClient):
    sign_up(client)
    response = change_email(client, "new@example.com")
    assert response.status_code == 400
    assert ordered(response) == {"message": "Verification email isn't enabled"}


@pytest.mark.settings(**CHANGE)
def test_change_email_to_a_taken_address(app: Flask, client: FlaskClient, outbox: Outbox):
    sign_up(app.test_client(), "bob@example.com")
    account = sign_up(client)
    verify_by_link(client, outbox, account.email)
    response = change_email(client, "BOB@example.com")
    assert response.status_code == 200
    assert ordered(response) == {"status": True}
    outbox.nothing_new()
    assert sorted(u.email for u in db_rows(app, User)) == ["ann@example.com", "bob@example.com"]


@pytest.mark.settings(UPDATE_EMAIL_WITHOUT_VERIFICATION=True, **CHANGE)
def test_change_email_of_an_unverified_user_at_once(
    app: Flask, client: FlaskClient, outbox: Outbox
):
    account = sign_up(client)
    response = change_email(client, "New@Example.com", callbackURL="/api/open")
    assert ordered(response) == {"status": True}
    cookie = set_cookies(response)[SESSION_COOKIE]
    assert cookie["value"].startswith(account.token + ".")
    user = get_session(client)["user"]
    assert (user["email"], user["emailVerified"]) == ("new@example.com", False)
    mail = outbox.one(kind="verification", to="new@example.com")
    assert jwt_claims(mail["token"])["email"] == "new@example.com"
    assert redirected_to(click(client, mail["url"])) == f"{BASE}/api/open"
    user = get_session(client)["user"]
    assert (user["email"], user["emailVerified"]) == ("new@example.com", True)
    assert sign_in(app.test_client(), "ann@example.com").status_code == 401
    assert sign_in(app.test_client(), "new@example.com").status_code == 200


@pytest.mark.settings(**CHANGE)
def test_change_email_of_a_verified_user(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    verify_by_link(client, outbox, account.email)
    response = change_email(client, "new@example.com", callbackURL="/api/open")
    assert ordered(response) == {"status": True}
    mail = outbox.one(kind="verification", to="new@example.com")
    claims = jwt_claims(mail["token"])
    assert (claims["email"], claims["updateTo"], claims["requestType"], claims["userId"]) == (
        "ann@example.com",
        "new@example.com",
        "change-email-verification",
        account.user["id"],
    )
    assert get_session(client)["user"]["email"] == "ann@example.com"  # not yet

    followed = click(client, mail["url"])
    assert redirected_to(followed) == f"{BASE}/api/open"
    assert SESSION_COOKIE in set_cookies(followed)
    assert browse(client, followed).get_json() == {"signed_in": True}
    user = get_session(client)["user"]
    assert (user["email"], user["emailVerified"]) == ("new@example.com", True)
    assert sign_in(app.test_client(), "new@example.com").status_code == 200
    assert sign_in(app.test_client(), "ann@example.com").status_code == 401
    outbox.nothing_new()
    # The used link cannot change the address again.
    assert redirected_to(click(client, mail["url"])) == f"{BASE}/api/open?error=INVALID_TOKEN"


@pytest.mark.settings(**CHANGE)
def test_change_email_of_an_unverified_user_by_link(
    app: Flask, client: FlaskClient, outbox: Outbox
):
    sign_up(client)
    assert ordered(change_email(client, "new@example.com")) == {"status": True}
    mail = outbox.one(kind="verification", to="new@example.com")
    assert get_session(client)["user"]["email"] == "ann@example.com"
    assert redirected_to(click(app.test_client(), mail["url"])) == f"{BASE}/"
    assert get_session(client)["user"]["email"] == "new@example.com"


@pytest.mark.settings(SEND_CHANGE_EMAIL_CONFIRMATION=True, **CHANGE)
def test_change_email_confirmed_by_the_old_address(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    verify_by_link(client, outbox, account.email)
    assert ordered(change_email(client, "new@example.com", callbackURL="/api/open")) == {
        "status": True
    }
    confirmation = outbox.one(kind="change-email-confirmation", to="ann@example.com")
    assert confirmation["subject"] == "Approve the change of your Better Auth email address"
    assert jwt_claims(confirmation["token"])["requestType"] == "change-email-confirmation"
    assert redirected_to(click(client, confirmation["url"])) == f"{BASE}/api/open"
    assert get_session(client)["user"]["email"] == "ann@example.com"

    verification = outbox.one(kind="verification", to="new@example.com")
    assert jwt_claims(verification["token"])["requestType"] == "change-email-verification"
    assert query(verification["url"])["callbackURL"] == ["/api/open"]
    assert redirected_to(click(client, verification["url"])) == f"{BASE}/api/open"
    user = get_session(client)["user"]
    assert (user["email"], user["emailVerified"]) == ("new@example.com", True)
    outbox.nothing_new()


@pytest.mark.settings(**CHANGE)
def test_change_email_link_opened_by_another_user(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    verify_by_link(client, outbox, account.email)
    change_email(client, "new@example.com", callbackURL="/api/open")
    mail = outbox.one(kind="verification", to="new@example.com")
    bob = app.test_client()
    sign_up(bob, "bob@example.com")
    response = click(bob, mail["url"])
    assert redirected_to(response) == f"{BASE}/api/open?error=INVALID_USER"
    assert set_cookies(response) == {}
    assert get_session(client)["user"]["email"] == "ann@example.com"
    assert get_session(bob)["user"]["email"] == "bob@example.com"


# --------------------------------------------------------------------------------------------
# delete-user by emailed link (§2.15, §2.16)

DELETE_BY_MAIL = {"SEND_DELETE_ACCOUNT_VERIFICATION": True}


def delete_user(client: FlaskClient, **body: Any) -> Any:
    return client.post(f"{AUTH}/delete-user", json=body, headers=ORIGIN)


def assert_gone(app: Flask, user_id: str) -> None:
    assert db_rows(app, User, User.id == user_id) == []
    assert db_rows(app, Session, Session.user_id == user_id) == []
    assert db_rows(app, Account, Account.user_id == user_id) == []


@pytest.mark.settings(**DELETE_BY_MAIL)
def test_delete_user_by_mailed_link(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    second_device = app.test_client()
    sign_in(second_device, account.email)
    bob = app.test_client()
    sign_up(bob, "bob@example.com")

    response = delete_user(client, callbackURL="/api/open")
    assert list(ordered(response).items()) == [
        ("success", True),
        ("message", "Verification email sent"),
    ]
    assert get_session(client)["user"]["id"] == account.user["id"]  # still there
    mail = outbox.one(kind="delete-account", to=account.email)
    assert mail["subject"] == "Confirm the deletion of your Better Auth account"
    assert re.fullmatch(r"[0-9a-z]{32}", mail["token"])
    assert mail["url"] == (
        f"{BASE}{AUTH}/delete-user/callback?token={mail['token']}&callbackURL=%2Fapi%2Fopen"
    )
    (row,) = db_rows(app, Verification)
    assert (row.identifier, row.value) == (f"delete-account-{mail['token']}", account.user["id"])

    anonymous = click(app.test_client(), mail["url"])
    assert_error(anonymous, 404, "FAILED_TO_GET_USER_INFO", "Failed to get user info")
    wrong = click(client, f"{BASE}{AUTH}/delete-user/callback?token=nope&callbackURL=%2F")
    assert_error(wrong, 404, "INVALID_TOKEN", "Invalid token")
    by_bob = click(bob, mail["url"])  # another user's token: refused, and not used up
    assert_error(by_bob, 404, "INVALID_TOKEN", "Invalid token")
    assert len(db_rows(app, User)) == 2

    done = click(client, mail["url"])
    assert redirected_to(done) == f"{BASE}/api/open"
    assert set_cookies(done)[SESSION_COOKIE]["max-age"] == "0"
    assert_gone(app, account.user["id"])
    assert not get_session(second_device)
    assert browse(client, done).get_json() == {"signed_in": False}
    assert get_session(bob)["user"]["email"] == "bob@example.com"


@pytest.mark.settings(**DELETE_BY_MAIL)
def test_delete_user_with_the_mailed_token(app: Flask, client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    delete_user(client)
    mail = outbox.one(kind="delete-account", to=account.email)
    assert query(mail["url"])["callbackURL"] == ["/"]
    assert_error(delete_user(client, token="wrong"), 404, "INVALID_TOKEN", "Invalid token")
    response = delete_user(client, token=mail["token"])
    assert response.status_code == 200
    assert list(ordered(response).items()) == [("success", True), ("message", "User deleted")]
    assert set_cookies(response)[SESSION_COOKIE]["max-age"] == "0"
    assert_gone(app, account.user["id"])
    assert db_rows(app, Verification) == []


# --------------------------------------------------------------------------------------------
# delivery: callbacks, failures, templates, subjects, console


def test_send_email_callback_receives_every_message(build: Callable[..., Flask]):
    sent: list[Email] = []
    app = build(send_email=sent.append, config={"BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION": True})
    client = app.test_client()
    account = sign_up(client)
    request_reset(client, account.email)
    assert [m.kind for m in sent] == ["verification", "reset-password"]
    for message in sent:
        assert isinstance(message, Email)
        assert message.to == account.email
        assert message.user.id == account.user["id"]
        assert message.url in message.text
        assert message.html is not None and html.escape(message.url) in message.html
        assert message.token in message.url
    verification, reset_mail = sent
    assert verification.subject == "Verify your email address for Better Auth"
    assert reset_mail.subject == "Reset your Better Auth password"
    assert redirected_to(click(client, verification.url)) == f"{BASE}/"
    assert sign_in(client, account.email).status_code == 200


def test_per_kind_callback_takes_precedence(build: Callable[..., Flask]):
    generic: list[Email] = []
    resets: list[dict[str, Any]] = []
    app = build(send_email=generic.append, send_reset_password=lambda **kw: resets.append(kw))
    client = app.test_client()
    account = sign_up(client)
    request_reset(client, account.email)
    assert generic == []
    (call,) = resets
    assert sorted(call) == ["token", "url", "user"]
    assert call["user"].id == account.user["id"]
    assert call["url"] == f"{BASE}{AUTH}/reset-password/{call['token']}?callbackURL=%2Freset"
    client.post(f"{AUTH}/send-verification-email", json={"email": account.email}, headers=ORIGIN)
    assert [m.kind for m in generic] == ["verification"]
    assert len(resets) == 1


def test_callbacks_turn_on_their_flows(build: Callable[..., Flask]):
    """A ``send_change_email_confirmation`` / ``send_delete_account_verification`` callback is
    enough to turn that step on (extension docstring), as in Better Auth."""
    mails: dict[str, list[dict[str, Any]]] = {"verify": [], "confirm": [], "delete": []}
    app = build(
        send_verification_email=lambda **kw: mails["verify"].append(kw),
        send_change_email_confirmation=lambda **kw: mails["confirm"].append(kw),
        send_delete_account_verification=lambda **kw: mails["delete"].append(kw),
        config={"BETTER_AUTH_CHANGE_EMAIL_ENABLED": True},
    )
    client = app.test_client()
    account = sign_up(client)
    client.post(f"{AUTH}/send-verification-email", json={"email": account.email}, headers=ORIGIN)
    (verify,) = mails["verify"]
    assert click(client, verify["url"]).status_code == 302

    assert ordered(change_email(client, "new@example.com")) == {"status": True}
    (confirm,) = mails["confirm"]
    assert confirm["user"].email == account.email
    assert confirm["new_email"] == "new@example.com"  # Better Auth's newEmail
    assert jwt_claims(confirm["token"])["requestType"] == "change-email-confirmation"
    assert click(client, confirm["url"]).status_code == 302
    assert jwt_claims(mails["verify"][-1]["token"])["updateTo"] == "new@example.com"
    # The verification of the new address reaches a callback addressed to it, as in Better
    # Auth (a callback mailing user.email must not send the new address's link to the old).
    assert mails["verify"][-1]["user"].email == "new@example.com"
    assert click(client, mails["verify"][-1]["url"]).status_code == 302
    assert get_session(client)["user"]["email"] == "new@example.com"

    response = delete_user(client)
    assert ordered(response) == {"success": True, "message": "Verification email sent"}
    (delete,) = mails["delete"]
    assert click(client, delete["url"]).status_code == 302
    assert_gone(app, account.user["id"])


def test_a_failing_callback_changes_nothing_in_the_answer(
    build: Callable[..., Flask], caplog: pytest.LogCaptureFixture
):
    seen: list[dict[str, Any]] = []

    def broken(**kwargs: Any) -> None:
        seen.append(kwargs)
        raise RuntimeError("mail server on fire")

    def broken_generic(message: Email) -> None:
        seen.append({"url": message.url, "token": message.token})
        raise ConnectionError("no route to mail host")

    app = build(
        send_reset_password=broken,
        send_email=broken_generic,
        config={"BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION": True},
    )
    client = app.test_client()
    caplog.set_level(logging.ERROR, logger=EMAIL_LOGGER)
    account = sign_up(client)  # the verification mail fails: sign-up still answers as usual
    assert db_rows(app, User)[0].email == account.email
    response = request_reset(client, account.email)
    assert response.status_code == 200
    assert list(ordered(response).items()) == [("status", True), ("message", RESET_MESSAGE)]

    records = [r for r in caplog.records if r.name == EMAIL_LOGGER]
    assert [r.levelno for r in records] == [logging.ERROR, logging.ERROR]
    assert "verification" in records[0].getMessage()
    assert "reset-password" in records[1].getMessage()
    assert all(r.exc_info is not None for r in records)
    assert len(seen) == 2
    for call in seen:
        assert call["token"] not in caplog.text
        assert call["url"] not in caplog.text
    # The data was committed: the reset token and the verification link both work.
    assert ordered(reset(client, seen[1]["token"])) == {"status": True}
    assert redirected_to(click(client, seen[0]["url"])) == f"{BASE}/"
    assert sign_in(client, account.email, NEW_PASSWORD).status_code == 200


def test_app_templates_override_the_package_ones(
    build: Callable[..., Flask], tmp_path: Path, outbox: Outbox, outbox_file: Path
):
    folder = tmp_path / "templates" / "better_auth" / "email"
    folder.mkdir(parents=True)
    (folder / "reset-password.txt").write_text(
        "Custom for {{ user.name }} at {{ app_name }}: {{ url }} ({{ to }})", encoding="utf-8"
    )
    app = build(
        template_folder=str(tmp_path / "templates"),
        config={
            "BETTER_AUTH_EMAIL_BACKEND": "outbox",
            "BETTER_AUTH_EMAIL_OUTBOX": str(outbox_file),
            "BETTER_AUTH_APP_NAME": "Acme",
        },
    )
    client = app.test_client()
    account = sign_up(client)
    request_reset(client, account.email)
    mail = outbox.one(kind="reset-password", to=account.email)
    assert mail["text"] == f"Custom for Ann at Acme: {mail['url']} (ann@example.com)"
    assert "Choose a new password" in mail["html"]  # the package's HTML template still applies


@pytest.mark.settings(
    APP_NAME="Acme", EMAIL_SUBJECTS={"reset-password": "{app_name}: choose a new password"}
)
def test_subject_overrides(client: FlaskClient, outbox: Outbox):
    account = sign_up(client)
    request_reset(client, account.email)
    assert outbox.one(kind="reset-password", to=account.email)["subject"] == (
        "Acme: choose a new password"
    )
    client.post(f"{AUTH}/send-verification-email", json={"email": account.email}, headers=ORIGIN)
    mail = outbox.one(kind="verification", to=account.email)
    assert mail["subject"] == "Verify your email address for Acme"
    assert "for Acme" in mail["text"]


@pytest.mark.settings(EMAIL_BACKEND="console")
def test_console_backend_logs_the_message(
    client: FlaskClient, outbox: Outbox, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger=EMAIL_LOGGER)
    account = sign_up(client)
    assert request_reset(client, account.email).status_code == 200
    (record,) = [r for r in caplog.records if r.name == EMAIL_LOGGER]
    text = record.getMessage()
    assert text.startswith("email (reset-password) to ann@example.com: Reset your Better Auth")
    url = re.search(r"http://localhost/api/auth/reset-password/[A-Za-z0-9]{24}\S*", text)
    assert url is not None
    assert click(client, url.group()).status_code == 302
    assert outbox.all() == []


# --------------------------------------------------------------------------------------------
# SMTP, with a real SMTP server


class Recorder:
    """An aiosmtpd handler that keeps every envelope."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Recorder]]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, recorder
    finally:
        controller.stop()


def assert_reset_message(recorder: Recorder, *, sender: str, envelope_from: str) -> None:
    (envelope,) = recorder.envelopes
    assert envelope.mail_from == envelope_from
    assert envelope.rcpt_tos == ["ann@example.com"]
    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert message["From"] == sender
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Reset your Better Auth password"
    raw = envelope.original_content.decode()
    assert re.search(r"^Message-ID: <[^<>@\s]+@[^<>@\s]+>\r?$", raw, re.M), raw
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in message.iter_parts()}
    assert sorted(parts) == ["text/html", "text/plain"]
    url = re.search(
        r"http://localhost/api/auth/reset-password/[A-Za-z0-9]{24}\S*", parts["text/plain"]
    )
    assert url is not None
    assert html.escape(url.group()) in parts["text/html"]


def test_smtp_backend(build: Callable[..., Flask], smtp_server: tuple[int, Recorder]):
    port, recorder = smtp_server
    app = build(
        config={
            "BETTER_AUTH_EMAIL_BACKEND": "smtp",
            "BETTER_AUTH_SMTP_HOST": "127.0.0.1",
            "BETTER_AUTH_SMTP_PORT": port,
            "BETTER_AUTH_EMAIL_FROM": "Acme <auth@example.com>",
        }
    )
    client = app.test_client()
    account = sign_up(client)
    response = request_reset(client, account.email)
    assert list(ordered(response).items()) == [("status", True), ("message", RESET_MESSAGE)]
    assert_reset_message(
        recorder, sender="Acme <auth@example.com>", envelope_from="auth@example.com"
    )
    # The mailed URL works like the outbox's.
    body = recorder.envelopes[0].original_content.decode()
    message = email.message_from_string(body, policy=email.policy.default)
    plain = message.get_body(preferencelist=("plain",)).get_content()
    url = re.search(r"http://localhost\S+", plain).group()
    assert click(client, url).headers["Location"].startswith(f"{BASE}/reset?token=")


@pytest.mark.parametrize(
    ("default_sender", "header"),
    [
        ("flask-mail@example.com", "flask-mail@example.com"),
        # Flask-Mail also takes a (name, address) pair.
        (("Flask Mail", "flask-mail@example.com"), "Flask Mail <flask-mail@example.com>"),
    ],
)
def test_smtp_backend_reads_flask_mail_settings(
    build: Callable[..., Flask],
    smtp_server: tuple[int, Recorder],
    default_sender: Any,
    header: str,
):
    port, recorder = smtp_server
    app = build(
        config={
            "BETTER_AUTH_EMAIL_BACKEND": "smtp",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": port,
            "MAIL_DEFAULT_SENDER": default_sender,
        }
    )
    client = app.test_client()
    sign_up(client)
    assert request_reset(client, "ann@example.com").status_code == 200
    assert_reset_message(recorder, sender=header, envelope_from="flask-mail@example.com")


def test_smtp_server_down(build: Callable[..., Flask], caplog: pytest.LogCaptureFixture):
    app = build(
        config={
            "BETTER_AUTH_EMAIL_BACKEND": "smtp",
            "BETTER_AUTH_SMTP_HOST": "127.0.0.1",
            "BETTER_AUTH_SMTP_PORT": free_port(),  # nothing listens there
            "BETTER_AUTH_SMTP_TIMEOUT": 5,
        }
    )
    client = app.test_client()
    account = sign_up(client)
    caplog.set_level(logging.ERROR, logger=EMAIL_LOGGER)
    response = request_reset(client, account.email)
    assert response.status_code == 200
    assert list(ordered(response).items()) == [("status", True), ("message", RESET_MESSAGE)]
    (record,) = [r for r in caplog.records if r.name == EMAIL_LOGGER]
    assert record.levelno == logging.ERROR
    assert "reset-password" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], OSError)
    (row,) = db_rows(app, Verification)  # the token was stored all the same
    token = row.identifier.removeprefix("reset-password:")
    assert token not in caplog.text
    assert ordered(reset(client, token)) == {"status": True}

"""Server-rendered apps: Flask-Login's interface, a login view of the app's own, HTML forms.

The app here is what docs/server-rendered.rst builds: a login form checked with
``authenticate``, ``login_user`` / ``logout_user``, ``next`` validated with ``safe_next_url``,
templates reading ``current_user``; plus the unauthorized handler, ``LOGIN_DISABLED`` and the
303 answer to an HTML form posted to ``/sign-in/email``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ORIGIN, PASSWORD, make_app, set_cookies, sign_up
from flask import Flask, jsonify, redirect, render_template_string, request, url_for
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_better_auth import (
    AnonymousUser,
    authenticate,
    current_user,
    fresh_login_required,
    login_required,
    login_user,
    logout_user,
    safe_next_url,
    session_revoked,
    user_signed_in,
    user_signed_out,
)
from flask_better_auth.cookies import encode_signed
from flask_better_auth.models import Session
from flask_better_auth.testing import create_user

AUTH = "/api/auth"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
HTML = {"Accept": BROWSER}
SESSION_COOKIE = "better-auth.session-token"
DONT_REMEMBER = "better-auth.dont-remember"
SESSION_DATA = "better-auth.session-data"
UNAUTHORIZED = b'{"message":"Unauthorized","code":"UNAUTHORIZED"}'

LOGIN_PAGE = """<form method="post">
{% if error %}<p class="error">{{ error }}</p>{% endif %}
<input name="email"> <input name="password" type="password">
<label><input type="checkbox" name="remember"> Remember me</label>
</form>"""
PAGE = """{% if current_user.is_authenticated -%}
Hello {{ current_user.name }} ({{ current_user.get_id() }}) active={{ current_user.is_active }}
{%- else -%}
Hello stranger{{ current_user.name }} anonymous={{ current_user.is_anonymous }}
{%- endif %}"""


def add_login_views(app: Flask) -> None:
    """The login view of docs/server-rendered.rst."""

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        error = None
        if request.method == "POST":
            user = authenticate(request.form.get("email", ""), request.form.get("password", ""))
            if user is None:
                error = "Wrong email or password."
            elif login_user(user, remember=request.form.get("remember") == "on") is None:
                error = "Please verify your email address first."
            else:
                return redirect(safe_next_url(request.args.get("next"), url_for("home")))
        return render_template_string(LOGIN_PAGE, error=error), 401 if error else 200

    @app.post("/logout")
    def logout() -> Any:
        logout_user()
        return redirect(url_for("home"))

    @app.get("/")
    def home() -> Any:
        return render_template_string(PAGE)

    @app.get("/account")
    @login_required
    def account() -> Any:
        return render_template_string(PAGE)


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str) -> Iterator[Flask]:
    """conftest's app, with ``BETTER_AUTH_LOGIN_VIEW = "login"`` unless a test says otherwise."""
    marker = request.node.get_closest_marker("settings")
    app = make_app(database_url, **{"LOGIN_VIEW": "login", **(marker.kwargs if marker else {})})
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


@pytest.fixture
def site(app: Flask) -> Flask:
    add_login_views(app)
    return app


@pytest.fixture
def events(app: Flask) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    recorded: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for signal in (user_signed_in, user_signed_out, session_revoked):

        def record(sender: Any, _name: str = str(signal.name), **kwargs: Any) -> None:
            assert sender is app
            recorded.append((_name, kwargs))

        signal.connect(record, app)
        receivers.append((signal, record))
    yield recorded
    for signal, receiver in receivers:
        signal.disconnect(receiver, app)


def session_rows(app: Flask) -> list[Session]:
    with app.app_context():
        db = app.extensions["better_auth"].db
        return list(db.session.execute(select(Session)).scalars())


# ---------------------------------------------------------------- Flask-Login's interface


def test_user_and_anonymous_answer_flask_logins_interface(app: Flask) -> None:
    user = create_user(app, "ann@example.com", name="Ann")
    assert (user.is_authenticated, user.is_active, user.is_anonymous) == (True, True, False)
    assert user.get_id() == user.id and bool(user)
    anonymous = AnonymousUser()
    assert (anonymous.is_authenticated, anonymous.is_active, anonymous.is_anonymous) == (
        False,
        False,
        True,
    )
    assert anonymous.get_id() is None and not anonymous


def test_templates_read_current_user_signed_in_or_not(site: Flask) -> None:
    browser = site.test_client()
    page = browser.get("/")
    assert page.status_code == 200
    # Anonymous: falsy, attributes a template asks for are there or render empty; no error.
    assert page.text == "Hello stranger anonymous=True"
    assert browser.get("/api/open").get_json() == {"signed_in": False}
    account = sign_up(browser)
    assert browser.get("/").text == f"Hello Ann ({account.user['id']}) active=True"


# ---------------------------------------------------------------- a login view of the app's own


def test_login_view_end_to_end(site: Flask, events: list[Any]) -> None:
    create_user(site, "ann@example.com", name="Ann", password=PASSWORD)
    browser = site.test_client()

    # A protected page sends the browser to the login view, with where it was going.
    response = browser.get("/account", headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Faccount"
    assert browser.get("/login?next=%2Faccount").status_code == 200

    # A wrong password: the form again, no cookie, no session.
    form = {"email": "ann@example.com", "password": "wrong-horse-1", "remember": "on"}
    response = browser.post("/login?next=%2Faccount", data=form)
    assert response.status_code == 401
    assert "Wrong email or password." in response.text
    assert "Set-Cookie" not in response.headers
    assert session_rows(site) == [] and events == []

    # The right one: signed in, sent on to next, with Better Auth's session cookie.
    form["password"] = PASSWORD
    response = browser.post("/login?next=%2Faccount", data=form)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    (session,) = session_rows(site)
    cookies = set_cookies(response)
    assert list(cookies) == [SESSION_COOKIE]
    cookie = cookies[SESSION_COOKIE]
    assert cookie["value"] == encode_signed(site.config["BETTER_AUTH_SECRET"], session.token)
    assert cookie["max-age"] == "604800"
    assert cookie["path"] == "/" and cookie["samesite"] == "Lax"
    assert cookie["httponly"] is True and cookie["secure"] is True
    assert session.user_agent.startswith("Werkzeug/")
    (name, kwargs), *rest = events
    assert name == "user-signed-in" and rest == []
    assert kwargs["user"].email == "ann@example.com" and kwargs["session"].id == session.id

    page = browser.get("/account", headers=HTML)
    assert page.status_code == 200
    assert page.text == f"Hello Ann ({session.user_id}) active=True"
    # The session is Better Auth's: the JSON API sees it too.
    assert browser.get(f"{AUTH}/get-session").get_json()["session"]["id"] == session.id

    # Sign out: the session is revoked and the cookies expired.
    events.clear()
    response = browser.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    expired = set_cookies(response)
    assert set(expired) == {SESSION_COOKIE, SESSION_DATA, DONT_REMEMBER}
    assert all(c["value"] == "" and c["max-age"] == "0" for c in expired.values())
    assert session_rows(site) == []
    assert [name for name, _ in events] == ["session-revoked", "user-signed-out"]
    assert events[0][1] == {"user_id": session.user_id, "tokens": [session.token]}
    assert browser.get("/account", headers=HTML).status_code == 302


def test_login_view_remember_me_off(site: Flask) -> None:
    create_user(site, "ann@example.com", password=PASSWORD)
    browser = site.test_client()
    response = browser.post("/login", data={"email": "ann@example.com", "password": PASSWORD})
    cookies = set_cookies(response)
    assert list(cookies) == [SESSION_COOKIE, DONT_REMEMBER]  # a browser-session cookie
    assert "max-age" not in cookies[SESSION_COOKIE] and "expires" not in cookies[SESSION_COOKIE]
    assert response.headers["Location"] == "/"
    response = browser.post(
        "/login", data={"email": "ann@example.com", "password": PASSWORD, "remember": "on"}
    )
    assert set_cookies(response)[SESSION_COOKIE]["max-age"] == "604800"


@pytest.mark.parametrize(
    ("next_url", "location"),
    [
        ("/account?tab=1", "/account?tab=1"),
        ("http://localhost/account", "http://localhost/account"),  # the base URL's origin
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/account\r\nSet-Cookie: x=1", "/"),
        ("", "/"),
    ],
)
def test_login_view_next_is_validated(site: Flask, next_url: str, location: str) -> None:
    create_user(site, "ann@example.com", password=PASSWORD)
    response = site.test_client().post(
        "/login",
        query_string={"next": next_url},
        data={"email": "ann@example.com", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == location


def test_safe_next_url_outside_a_login_view(app: Flask) -> None:
    with app.test_request_context("/"):
        assert safe_next_url(None) == "/"
        assert safe_next_url("/ok", "/home") == "/ok"
        assert safe_next_url("https://evil.example", "/home") == "/home"


@pytest.mark.settings(REQUIRE_EMAIL_VERIFICATION=True)
def test_login_user_refuses_an_unverified_user_while_verification_is_required(
    site: Flask, events: list[Any]
) -> None:
    create_user(site, "ann@example.com", password=PASSWORD, email_verified=False)
    browser = site.test_client()
    form = {"email": "ann@example.com", "password": PASSWORD}
    response = browser.post("/login", data=form)
    assert response.status_code == 401
    assert "Please verify your email address first." in response.text
    assert "Set-Cookie" not in response.headers
    assert session_rows(site) == [] and events == []
    with site.test_request_context("/"):
        user = authenticate("ann@example.com", PASSWORD)
        assert user is not None and user.is_active is False
        assert login_user(user, force=True) is not None  # the app may insist
    assert len(session_rows(site)) == 1


class ScryptCalls:
    """Counts ``hashlib.scrypt`` calls (the real function still runs) and their parameters."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[int, int]] = []
        real = hashlib.scrypt

        def scrypt(password: bytes, **kwargs: Any) -> bytes:
            self.calls.append((kwargs["n"], len(kwargs["salt"])))
            return real(password, **kwargs)

        monkeypatch.setattr(hashlib, "scrypt", scrypt)


def test_authenticate_does_the_same_work_for_every_email(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_user(app, "ann@example.com", password=PASSWORD)
    create_user(app, "bob@example.com")  # no password at all
    scrypt = ScryptCalls(monkeypatch)
    cases = [
        ("ann@example.com", PASSWORD, True),
        ("ANN@example.com", PASSWORD, True),
        ("ann@example.com", "wrong-horse-1", False),
        ("bob@example.com", PASSWORD, False),
        ("nobody@example.com", PASSWORD, False),
    ]
    for email, password, ok in cases:
        scrypt.calls.clear()
        with app.test_request_context("/"):
            user = authenticate(email, password)
        assert (user is not None) == ok, email
        assert scrypt.calls == [(1024, 32)], email  # exactly one hash, the same one
    # Refused before any hashing, as /sign-in/email refuses them.
    scrypt.calls.clear()
    with app.test_request_context("/"):
        assert authenticate("not-an-email", PASSWORD) is None
        assert authenticate("ann@example.com", "x" * 129) is None
    assert scrypt.calls == []


@pytest.mark.settings(EMAIL_AND_PASSWORD_ENABLED=False)
def test_authenticate_is_off_with_email_and_password(app: Flask) -> None:
    create_user(app, "ann@example.com", password=PASSWORD)
    with app.test_request_context("/"):
        assert authenticate("ann@example.com", PASSWORD) is None


def test_logout_user_without_a_session(site: Flask, events: list[Any]) -> None:
    response = site.test_client().post("/logout")
    assert response.status_code == 302
    assert {c["max-age"] for c in set_cookies(response).values()} == {"0"}
    assert events == []


# ---------------------------------------------------------------- unauthorized handlers


def add_protected_views(app: Flask) -> None:
    @app.get("/page")
    @login_required
    def page() -> Any:
        return jsonify(signed_in=bool(current_user))

    @app.get("/settings")
    @fresh_login_required
    def settings_page() -> Any:
        return jsonify(signed_in=bool(current_user))


def test_unauthorized_handler_answers_html_requests(app: Flask) -> None:
    add_protected_views(app)
    auth = app.extensions["better_auth"].extension
    seen: list[str] = []

    @auth.unauthorized_handler
    def unauthorized() -> Any:
        seen.append(request.path)
        return render_template_string("<a href='/login'>Sign in</a> first"), 401

    client = app.test_client()
    response = client.get("/page?x=1", headers=HTML)
    assert (response.status_code, response.text) == (401, "<a href='/login'>Sign in</a> first")
    assert response.mimetype == "text/html"
    assert client.get("/settings", headers=HTML).status_code == 401
    assert seen == ["/page", "/settings"]
    # API clients (no Accept, */*, JSON) keep Better Auth's JSON 401.
    for accept in (None, "*/*", "application/json"):
        response = client.get("/page", headers={"Accept": accept} if accept else {})
        assert (response.status_code, response.get_data()) == (401, UNAUTHORIZED)
    assert len(seen) == 2
    sign_up(client)
    assert client.get("/page", headers=HTML).get_json() == {"signed_in": True}


@pytest.mark.settings(LOGIN_VIEW="/login")
def test_unauthorized_handler_wins_over_the_login_view(app: Flask) -> None:
    add_protected_views(app)
    client = app.test_client()
    assert client.get("/page", headers=HTML).headers["Location"] == "/login?next=%2Fpage"
    auth = app.extensions["better_auth"].extension

    @auth.unauthorized_handler
    async def unauthorized() -> Any:  # async handlers work, like async views
        return redirect(url_for("page", came="back"))

    response = client.get("/page", headers=HTML)
    assert response.headers["Location"] == "/page?came=back"


def test_needs_refresh_handler(app: Flask) -> None:
    add_protected_views(app)
    client = app.test_client()
    account = sign_up(client)
    with app.app_context():
        db = app.extensions["better_auth"].db
        row = db.session.execute(select(Session).filter_by(token=account.token)).scalar_one()
        row.created_at = row.created_at.replace(year=row.created_at.year - 1)
        db.session.commit()
    response = client.get("/settings", headers=HTML)
    assert response.status_code == 403  # no handler: the JSON error
    assert response.get_json()["code"] == "SESSION_NOT_FRESH"
    auth = app.extensions["better_auth"].extension

    @auth.needs_refresh_handler
    def refresh() -> Any:
        return redirect("/login?reauth=1")

    assert client.get("/settings", headers=HTML).headers["Location"] == "/login?reauth=1"
    assert client.get("/settings").get_json()["code"] == "SESSION_NOT_FRESH"
    assert client.get("/page", headers=HTML).get_json() == {"signed_in": True}


def test_handlers_belong_to_their_extension(database_url: str) -> None:
    first, second = make_app(database_url), make_app(database_url, create_tables=False)
    for app in (first, second):
        add_protected_views(app)

    @first.extensions["better_auth"].extension.unauthorized_handler
    def unauthorized() -> Any:
        return "first app's page", 401

    assert first.test_client().get("/page", headers=HTML).text == "first app's page"
    assert second.test_client().get("/page", headers=HTML).get_data() == UNAUTHORIZED
    for app in (first, second):
        with app.app_context():
            app.extensions["better_auth"].db.engine.dispose()


# ---------------------------------------------------------------- LOGIN_DISABLED


def test_login_disabled_lets_every_request_through(app: Flask) -> None:
    add_protected_views(app)
    client = app.test_client()
    assert client.get("/page").get_data() == UNAUTHORIZED
    app.config["LOGIN_DISABLED"] = True  # switched on an existing app, as with Flask-Login
    assert client.get("/page").get_json() == {"signed_in": False}
    assert client.get("/settings").get_json() == {"signed_in": False}
    # Only the decorators: the auth routes still require their session.
    assert client.get(f"{AUTH}/list-sessions").status_code == 401
    app.config["LOGIN_DISABLED"] = False
    assert client.get("/settings").get_data() == UNAUTHORIZED


# ---------------------------------------------------------------- HTML form to /sign-in/email


FORM = {"email": "ann@example.com", "password": PASSWORD, "callbackURL": "/dashboard"}


def test_html_form_sign_in_with_callback_url_is_sent_on_with_303(client: FlaskClient) -> None:
    sign_up(client)
    browser = client.application.test_client()
    headers = {**ORIGIN, **HTML, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}
    response = browser.post(f"{AUTH}/sign-in/email", data=FORM, headers=headers)
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard"
    assert response.get_data() == b""
    cookies = set_cookies(response)
    assert cookies[SESSION_COOKIE]["max-age"] == "604800"
    assert browser.get("/api/me").status_code == 200  # the cookie signs the browser in


@pytest.mark.parametrize(
    ("body", "accept"),
    [
        ("form", "*/*"),  # fetch() with a FormData-like body
        ("form", None),
        ("form", "application/json"),
        ("json", BROWSER),  # a JSON body is a script's, whatever it accepts
    ],
)
def test_other_sign_in_clients_keep_better_auths_json(
    client: FlaskClient, body: str, accept: str | None
) -> None:
    sign_up(client)
    headers = {**ORIGIN, **({"Accept": accept} if accept else {})}
    kwargs: dict[str, Any] = {"data": FORM} if body == "form" else {"json": FORM}
    response = client.post(f"{AUTH}/sign-in/email", headers=headers, **kwargs)
    assert response.status_code == 200
    data = response.get_json()
    assert (data["redirect"], data["url"]) == (True, "/dashboard")
    assert response.headers["Location"] == "/dashboard"


def test_html_form_sign_in_without_callback_or_with_a_bad_one(client: FlaskClient) -> None:
    sign_up(client)
    headers = {**ORIGIN, **HTML}
    plain = {"email": "ann@example.com", "password": PASSWORD}
    response = client.post(f"{AUTH}/sign-in/email", data=plain, headers=headers)
    assert response.status_code == 200 and response.get_json()["redirect"] is False
    evil = {**plain, "callbackURL": "https://evil.example/"}
    response = client.post(f"{AUTH}/sign-in/email", data=evil, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["code"] == "INVALID_CALLBACK_URL"
    wrong = {**FORM, "password": "wrong-horse-1"}
    response = client.post(f"{AUTH}/sign-in/email", data=wrong, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "INVALID_EMAIL_OR_PASSWORD"


def test_login_required_redirect_round_trips_through_the_login_view(site: Flask) -> None:
    create_user(site, "ann@example.com", password=PASSWORD)
    browser = site.test_client()
    response = browser.get("/account?tab=2", headers=HTML)
    location = urlsplit(response.headers["Location"])
    (next_url,) = parse_qs(location.query)["next"]
    response = browser.post(
        location.path,
        query_string={"next": next_url},
        data={"email": "ann@example.com", "password": PASSWORD},
    )
    assert response.headers["Location"] == "/account?tab=2"
    assert browser.get(response.headers["Location"]).status_code == 200

"""``BETTER_AUTH_RESET_PASSWORD_PAGE``: where a reset link requested without ``redirectTo`` lands.

Better Auth mails ``…/reset-password/<token>?callbackURL=`` when the request had no
``redirectTo``, and following it dead-ends on ``/error?error=INVALID_TOKEN``. Unset, the setting
keeps that; set, the link lands on the app's reset page with ``?token=…`` (or ``?error=…``).
Over HTTP, on SQLite and PostgreSQL; mails are read from the outbox backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import BASE, ORIGIN, PASSWORD, make_app, sign_in, sign_up
from flask import Flask
from flask.testing import FlaskClient

from flask_better_auth import ConfigError

AUTH = "/api/auth"
NEW_PASSWORD = "brand-new-horse-2"
FRONT = "http://app.localhost:3000"


@pytest.fixture
def outbox_file(tmp_path: Path) -> Path:
    return tmp_path / "outbox.jsonl"


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str, outbox_file: Path) -> Iterator[Flask]:
    """conftest's app mailing to an outbox, with this test's ``@pytest.mark.settings``."""
    marker = request.node.get_closest_marker("settings")
    overrides: dict[str, Any] = {"EMAIL_BACKEND": "outbox", "EMAIL_OUTBOX": str(outbox_file)}
    overrides.update(marker.kwargs if marker else {})
    app = make_app(database_url, **overrides)
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


def reset_mail(client: FlaskClient, outbox_file: Path, email: str, **body: Any) -> dict[str, Any]:
    """Ask for a reset link (``body`` may add ``redirectTo``) and return the mail it sent."""
    response = client.post(
        f"{AUTH}/request-password-reset", json={"email": email, **body}, headers=ORIGIN
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    lines = outbox_file.read_text(encoding="utf-8").splitlines()
    mail: dict[str, Any] = json.loads(lines[-1])
    assert mail["kind"] == "reset-password" and mail["to"] == email
    return mail


def follow(client: FlaskClient, url: str) -> str:
    """Open a mailed link as a browser would; the ``Location`` of its 302."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == BASE, url
    response = client.get(f"{parts.path}?{parts.query}" if parts.query else parts.path)
    assert response.status_code == 302, response.get_data(as_text=True)
    location: str = response.headers["Location"]
    return location


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.get_json()["code"] == code


def test_unset_the_link_dead_ends_as_in_better_auth(client: FlaskClient, outbox_file: Path):
    account = sign_up(client)
    mail = reset_mail(client, outbox_file, account.email)
    assert mail["url"] == f"{BASE}{AUTH}/reset-password/{mail['token']}?callbackURL="
    assert follow(client, mail["url"]) == f"{BASE}{AUTH}/error?error=INVALID_TOKEN"
    # No callbackURL at all is still Better Auth's schema error.
    response = client.get(f"{AUTH}/reset-password/{mail['token']}")
    assert_error(response, 400, "VALIDATION_ERROR")


@pytest.mark.settings(RESET_PASSWORD_PAGE="/reset-password")
def test_the_link_lands_on_the_page_and_the_reset_works(
    client: FlaskClient, outbox_file: Path, app: Flask
):
    account = sign_up(client)
    browser = app.test_client()
    mail = reset_mail(browser, outbox_file, account.email)
    location = follow(browser, mail["url"])
    assert location == f"{BASE}/reset-password?token={mail['token']}"
    # A link stripped of its query (some mail clients do that) lands there too.
    bare = browser.get(f"{AUTH}/reset-password/{mail['token']}")
    assert bare.status_code == 302 and bare.headers["Location"] == location

    (token,) = parse_qs(urlsplit(location).query)["token"]
    response = browser.post(
        f"{AUTH}/reset-password", json={"newPassword": NEW_PASSWORD, "token": token}, headers=ORIGIN
    )
    assert response.status_code == 200 and response.get_json() == {"status": True}
    assert_error(sign_in(browser, account.email, PASSWORD), 401, "INVALID_EMAIL_OR_PASSWORD")
    assert sign_in(browser, account.email, NEW_PASSWORD).status_code == 200
    # The token is used up: the same link now lands on the page with the error.
    assert follow(browser, mail["url"]) == f"{BASE}/reset-password?error=INVALID_TOKEN"


@pytest.mark.settings(RESET_PASSWORD_PAGE="/reset-password")
def test_unknown_token_lands_on_the_page_with_the_error(client: FlaskClient):
    response = client.get(f"{AUTH}/reset-password/bogus-token?callbackURL=")
    assert response.status_code == 302
    assert response.headers["Location"] == f"{BASE}/reset-password?error=INVALID_TOKEN"


@pytest.mark.settings(RESET_PASSWORD_PAGE="/reset-password")
def test_redirect_to_still_wins(client: FlaskClient, outbox_file: Path):
    account = sign_up(client)
    mail = reset_mail(client, outbox_file, account.email, redirectTo="/account/new-password")
    location = follow(client, mail["url"])
    assert location == f"{BASE}/account/new-password?token={mail['token']}"


@pytest.mark.settings(RESET_PASSWORD_PAGE=f"{FRONT}/account/reset?lang=en", TRUSTED_ORIGINS=[FRONT])
def test_a_page_on_a_trusted_origin(client: FlaskClient, outbox_file: Path):
    account = sign_up(client)
    mail = reset_mail(client, outbox_file, account.email)
    location = follow(client, mail["url"])
    assert location == f"{FRONT}/account/reset?lang=en&token={mail['token']}"


@pytest.mark.parametrize(
    "page",
    [
        "reset-password",  # neither a path nor a URL
        "//evil.example/reset",  # protocol-relative: another host
        "/\\evil.example/reset",  # a backslash is a slash to a browser
        "/reset\n",
        "/re\tset",
        "javascript:alert(1)",
        "ftp://localhost/reset",
        "http://evil.example/reset",  # not a trusted origin
        "http://user@localhost/reset",  # userinfo: not the origin listed
        f"{FRONT}/reset",  # trusted only through a wildcard below
        42,
    ],
)
def test_bad_pages_fail_at_start_up(tmp_path: Path, page: Any):
    with pytest.raises(ConfigError, match="BETTER_AUTH_RESET_PASSWORD_PAGE"):
        make_app(
            f"sqlite:///{tmp_path / 'auth.sqlite'}",
            create_tables=False,
            RESET_PASSWORD_PAGE=page,
            TRUSTED_ORIGINS=["http://*.localhost:3000"],
        )


@pytest.mark.parametrize(
    ("page", "extra"),
    [
        ("/reset-password", {}),
        (f"{BASE}/reset-password", {}),  # the base URL's own origin
        (f"{FRONT}/reset", {"CORS_ORIGINS": [FRONT]}),  # a CORS origin is trusted too
        ("", {}),  # empty: unset
    ],
)
def test_good_pages_are_accepted(tmp_path: Path, page: str, extra: dict[str, Any]):
    app = make_app(
        f"sqlite:///{tmp_path / 'auth.sqlite'}",
        create_tables=False,
        RESET_PASSWORD_PAGE=page,
        **extra,
    )
    assert app.extensions["better_auth"].settings.reset_password_page == (page or None)

"""A database written by the real Better Auth server (shared/peer) works with ours as is.

The fixture was made by tests/fixtures/make_peer_fixture.sh: sign-up, two sign-ins and an
update-user against better-auth 1.7.25 on SQLite.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_app

from flask_better_auth.models import iso, metadata

FIXTURES = Path(__file__).parent / "fixtures"
PEER = json.loads((FIXTURES / "peer-better-auth.json").read_text())
JS_COOKIES = {
    "SECRET": PEER["secret"],
    "BASE_URL": PEER["baseURL"],
    "SESSION_COOKIE_NAME": "better-auth.session_token",
    "DONT_REMEMBER_COOKIE_NAME": "better-auth.dont_remember",
    "SESSION_DATA_COOKIE_NAME": "better-auth.session_data",
    "COOKIE_SECURE": False,
    "SCRYPT_N": 16384,  # the JS hash was made with the real cost
}


def _peer_app(tmp_path: Path, **extra: Any) -> Any:
    db_file = tmp_path / "peer.sqlite"
    shutil.copy(FIXTURES / "peer-better-auth.sqlite", db_file)
    # The fixture's sessions expire a week after it was made: move them into the future the
    # way the JS server writes dates (toISOString text), so the test does not age.
    future = datetime.now(UTC) + timedelta(days=3)
    with sqlite3.connect(db_file) as conn:
        conn.execute('UPDATE session SET "expiresAt" = ?', (iso(future),))
    return make_app(f"sqlite:///{db_file}", create_tables=False, **{**JS_COOKIES, **extra})


@pytest.fixture
def peer_app(tmp_path: Path) -> Any:
    app = _peer_app(tmp_path)
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()


def test_js_user_signs_in_with_the_same_password(peer_app: Any) -> None:
    client = peer_app.test_client()
    response = client.post(
        "/api/auth/sign-in/email",
        json={"email": PEER["emailInput"], "password": PEER["password"]},
        headers={"Origin": PEER["baseURL"]},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    assert data["user"]["id"] == PEER["userId"]
    assert data["user"]["email"] == PEER["email"]
    assert data["user"]["name"] == PEER["updatedName"]
    assert data["user"]["createdAt"] == PEER["sessions"][0]["response"]["user"]["createdAt"]
    # The new session is stored as the JS server stores dates, so JS can read it back.
    with sqlite3.connect(
        peer_app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    ) as c:
        row = c.execute(
            'SELECT "expiresAt", typeof("expiresAt") FROM session WHERE token = ?', (data["token"],)
        ).fetchone()
    assert row[1] == "text"
    assert datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    wrong = client.post(
        "/api/auth/sign-in/email",
        json={"email": PEER["email"], "password": "not-the-password"},
        headers={"Origin": PEER["baseURL"]},
    )
    assert wrong.status_code == 401


@pytest.mark.parametrize("index", [0, 1])
def test_js_session_cookie_and_bearer_token_are_accepted(peer_app: Any, index: int) -> None:
    session = PEER["sessions"][index]
    client = peer_app.test_client()
    client.set_cookie("better-auth.session_token", session["cookieValue"])
    data = client.get("/api/auth/get-session").get_json()
    assert data["session"]["id"] == session["sessionId"]
    assert data["session"]["createdAt"] == session["createdAt"]
    assert data["session"]["userAgent"] == PEER["userAgent"]
    assert data["user"]["id"] == PEER["userId"]
    assert data["user"]["emailVerified"] is False

    bearer = peer_app.test_client()
    me = bearer.get("/api/me", headers={"Authorization": f"Bearer {session['setAuthToken']}"})
    assert me.status_code == 200
    assert me.get_json()["user"]["email"] == PEER["email"]


def test_js_sessions_are_listed_and_revocable(tmp_path: Path) -> None:
    # list-sessions needs a fresh session; the fixture's age depends on when it was made.
    peer_app = _peer_app(tmp_path, SESSION_FRESH_AGE=0)
    client = peer_app.test_client()
    client.set_cookie("better-auth.session_token", PEER["sessions"][0]["cookieValue"])
    sessions = client.get("/api/auth/list-sessions").get_json()
    assert sorted(s["id"] for s in sessions) == sorted(s["sessionId"] for s in PEER["sessions"])
    revoked = client.post(
        "/api/auth/revoke-other-sessions", json={}, headers={"Origin": PEER["baseURL"]}
    )
    assert revoked.get_json() == {"status": True}
    other = peer_app.test_client()
    other.set_cookie("better-auth.session_token", PEER["sessions"][1]["cookieValue"])
    assert other.get("/api/auth/get-session").get_data() == b"null"
    with peer_app.app_context():
        peer_app.extensions["better_auth"].db.engine.dispose()


def test_our_schema_matches_the_js_servers(tmp_path: Path) -> None:
    ours = tmp_path / "ours.sqlite"
    app = make_app(f"sqlite:///{ours}")
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()

    def columns(path: Path) -> dict[str, list[tuple[str, str, int]]]:
        with sqlite3.connect(path) as conn:
            tables = [t.name for t in metadata.sorted_tables]
            return {
                t: sorted(
                    (name, ctype.lower(), notnull)
                    for _, name, ctype, notnull, *_ in conn.execute(f'PRAGMA table_info("{t}")')
                )
                for t in tables
            }

    def indexes(path: Path) -> set[str]:
        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
            )
            return {name for (name,) in rows}

    js = columns(FIXTURES / "peer-better-auth.sqlite")
    mine = columns(ours)
    assert set(js) == set(mine)
    for table in js:
        assert [c[0] for c in js[table]] == [c[0] for c in mine[table]], table
        assert [c[2] for c in js[table]] == [c[2] for c in mine[table]], table
        # Same storage: text stays text, dates are "date" (ISO text), booleans numeric 0/1.
        for (name, js_type, _), (_, our_type, _) in zip(js[table], mine[table], strict=True):
            assert (js_type, our_type) in {
                ("text", "text"),
                ("date", "date"),
                ("integer", "boolean"),
            }, name
    assert indexes(FIXTURES / "peer-better-auth.sqlite") == indexes(ours)

"""Secondary storage on a real Redis: Better Auth's keys and TTLs, revocation, verification
values, and what happens when Redis goes away (a dedicated redis-server the tests stop)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import ORIGIN, PASSWORD, SECRET, make_app, queries, set_cookies, sign_in, sign_up
from flask import Flask
from flask.testing import FlaskClient
from processes import stop_process
from sqlalchemy import delete, func, select

from flask_better_auth import ConfigError
from flask_better_auth.cookies import encode_signed
from flask_better_auth.models import Session, Verification, utcnow
from flask_better_auth.state import storage

REDIS_URL = os.environ.get("FBA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
COOKIE = "better-auth.session-token"
WEEK = 7 * 24 * 3600
REDIS_ONLY = pytest.mark.settings(STORE_SESSION_IN_DATABASE=False)
UNAVAILABLE = {"message": "Service temporarily unavailable", "code": "SERVICE_UNAVAILABLE"}


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _missing(f"Redis at {REDIS_URL} is not reachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of the test's own, its keys deleted afterwards (parallel runs never meet)."""
    value = f"fba-test:{uuid.uuid4().hex}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def close_app(app: Flask) -> None:
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()
    secondary = app.extensions["better_auth"].secondary
    if secondary is not None:
        secondary.close()


@pytest.fixture
def make(database_url: str, redis_url: str, prefix: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on the shared Redis (the test's prefix); closed at the end."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        settings = {"SECONDARY_STORAGE_URL": redis_url, "SECONDARY_STORAGE_PREFIX": prefix}
        app = make_app(database_url, **{**settings, **overrides})
        apps.append(app)
        return app

    yield build
    for app in apps:
        close_app(app)


@pytest.fixture
def app(request: pytest.FixtureRequest, make: Callable[..., Flask]) -> Flask:
    marker = request.node.get_closest_marker("settings")
    return make(**(dict(marker.kwargs) if marker else {}))


def session_rows(app: Flask) -> int:
    with app.app_context():
        db = app.extensions["better_auth"].db
        return int(db.session.execute(select(func.count()).select_from(Session)).scalar_one())


def entry(r: redis.Redis, prefix: str, token: str) -> dict[str, Any] | None:
    raw = r.get(prefix + token)
    return None if raw is None else json.loads(raw)


def replay(app: Flask, token: str) -> FlaskClient:
    """A client presenting ``token``'s signed cookie (a device that kept it)."""
    client = app.test_client()
    client.set_cookie(COOKIE, encode_signed(SECRET, token))
    return client


# ---------------------------------------------------------------- keys and TTLs


@pytest.mark.parametrize("in_database", [True, False], ids=["with-db", "redis-only"])
def test_a_session_lives_in_redis_with_better_auths_keys_and_ttls(
    make: Callable[..., Flask], r: redis.Redis, prefix: str, in_database: bool
):
    app = make(STORE_SESSION_IN_DATABASE=in_database)
    client = app.test_client()
    account = sign_up(client)
    user_id = account.user["id"]

    stored = entry(r, prefix, account.token)
    assert stored is not None and list(stored) == ["session", "user"]
    assert stored["user"] == account.user
    session = client.get("/api/auth/get-session").get_json()["session"]
    assert stored["session"] == session
    assert WEEK - 5 <= r.ttl(prefix + account.token) <= WEEK

    references = json.loads(r.get(f"{prefix}active-sessions-{user_id}"))
    assert [ref["token"] for ref in references] == [account.token]
    assert abs(references[0]["expiresAt"] - (time.time() + WEEK) * 1000) < 5000
    assert WEEK - 5 <= r.ttl(f"{prefix}active-sessions-{user_id}") <= WEEK

    assert session_rows(app) == (1 if in_database else 0)


def test_a_redis_hit_costs_no_database_query(app: Flask, client: FlaskClient):
    account = sign_up(client)
    with queries(app) as statements:
        me = client.get("/api/me")
        session = client.get("/api/auth/get-session")
        bearer = app.test_client().get(
            "/api/me", headers={"Authorization": f"Bearer {account.token}"}
        )
    assert statements == []
    assert me.status_code == session.status_code == bearer.status_code == 200
    assert me.get_json()["user"] == account.user
    assert session.get_json()["session"]["token"] == account.token


def test_requests_without_credentials_never_touch_redis(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
):
    storage = app.extensions["better_auth"].secondary
    calls: list[Any] = []
    original = storage.call
    monkeypatch.setattr(storage, "call", lambda *a, **k: calls.append(a) or original(*a, **k))
    assert client.get("/api/open").get_json() == {"signed_in": False}
    assert client.get("/api/auth/get-session").get_data() == b"null"
    assert calls == []


def test_sign_out_deletes_the_keys(app: Flask, client: FlaskClient, r: redis.Redis, prefix: str):
    account = sign_up(client)
    assert client.post("/api/auth/sign-out", headers=ORIGIN).get_json() == {"success": True}
    assert r.get(prefix + account.token) is None
    assert r.get(f"{prefix}active-sessions-{account.user['id']}") is None  # empty: deleted
    assert session_rows(app) == 0
    assert replay(app, account.token).get("/api/auth/get-session").get_data() == b"null"


@REDIS_ONLY
def test_sign_out_in_redis_only_mode(app: Flask, client: FlaskClient, r: redis.Redis, prefix: str):
    account = sign_up(client)
    laptop = app.test_client()
    second = sign_in(laptop, account.email).get_json()["token"]
    assert client.post("/api/auth/sign-out", headers=ORIGIN).status_code == 200
    assert r.get(prefix + account.token) is None
    references = json.loads(r.get(f"{prefix}active-sessions-{account.user['id']}"))
    assert [ref["token"] for ref in references] == [second]
    assert laptop.get("/api/me").status_code == 200


@REDIS_ONLY
def test_list_sessions_reads_the_active_sessions_index(app: Flask, client: FlaskClient):
    account = sign_up(client)
    laptop = app.test_client()
    second = sign_in(laptop, account.email).get_json()["token"]
    sessions = client.get("/api/auth/list-sessions").get_json()
    assert [s["token"] for s in sessions] == [account.token, second]
    assert session_rows(app) == 0


@REDIS_ONLY
def test_revoke_sessions_sets_the_revoked_before_marker(
    app: Flask, client: FlaskClient, r: redis.Redis, prefix: str
):
    phone = sign_up(client)
    laptop = app.test_client()
    second = sign_in(laptop, phone.email).get_json()["token"]
    old_entry = r.get(prefix + phone.token)
    before = int(time.time() * 1000)
    assert client.post("/api/auth/revoke-sessions", headers=ORIGIN).get_json() == {"status": True}

    key = f"{prefix}revoked-sessions-before-{phone.user['id']}"
    assert before <= int(r.get(key)) <= int(time.time() * 1000)
    assert WEEK - 5 <= r.ttl(key) <= WEEK
    assert r.get(prefix + phone.token) is None and r.get(prefix + second) is None
    assert laptop.get("/api/me").status_code == 401

    # An entry the revocation missed (a racing write) is refused by the marker...
    r.set(prefix + phone.token, old_entry, ex=3600)
    assert replay(app, phone.token).get("/api/auth/get-session").get_data() == b"null"
    # ...while a session created afterwards works.
    assert sign_in(client, phone.email).status_code == 200
    assert client.get("/api/me").status_code == 200


@pytest.mark.parametrize("in_database", [True, False], ids=["with-db", "redis-only"])
def test_revoke_other_sessions_and_revoke_session(
    make: Callable[..., Flask], r: redis.Redis, prefix: str, in_database: bool
):
    app = make(STORE_SESSION_IN_DATABASE=in_database)
    phone = app.test_client()
    account = sign_up(phone)
    laptop, tablet = app.test_client(), app.test_client()
    laptop_token = sign_in(laptop, account.email).get_json()["token"]
    tablet_token = sign_in(tablet, account.email).get_json()["token"]

    # Someone else's token: silently nothing.
    stranger = app.test_client()
    sign_up(stranger, "eve@example.com")
    response = stranger.post(
        "/api/auth/revoke-session", json={"token": tablet_token}, headers=ORIGIN
    )
    assert response.get_json() == {"status": True}
    assert r.get(prefix + tablet_token) is not None

    phone.post("/api/auth/revoke-session", json={"token": tablet_token}, headers=ORIGIN)
    assert r.get(prefix + tablet_token) is None
    assert tablet.get("/api/me").status_code == 401

    phone.post("/api/auth/revoke-other-sessions", headers=ORIGIN)
    assert r.get(prefix + laptop_token) is None
    assert r.get(prefix + account.token) is not None
    assert laptop.get("/api/me").status_code == 401
    assert phone.get("/api/me").status_code == 200
    assert r.get(f"{prefix}revoked-sessions-before-{account.user['id']}") is None


@pytest.mark.parametrize("in_database", [True, False], ids=["with-db", "redis-only"])
def test_a_user_update_rewrites_every_cached_session(
    make: Callable[..., Flask], r: redis.Redis, prefix: str, in_database: bool
):
    app = make(STORE_SESSION_IN_DATABASE=in_database)
    phone = app.test_client()
    account = sign_up(phone)
    laptop = app.test_client()
    laptop_token = sign_in(laptop, account.email).get_json()["token"]
    response = phone.post("/api/auth/update-user", json={"name": "Annie"}, headers=ORIGIN)
    assert response.get_json() == {"status": True}
    for token in (account.token, laptop_token):
        assert entry(r, prefix, token)["user"]["name"] == "Annie"
        assert r.ttl(prefix + token) > WEEK - 10  # the TTL is kept
    with queries(app) as statements:
        body = laptop.get("/api/auth/get-session").get_json()
    assert body["user"]["name"] == "Annie"
    assert statements == []


@pytest.mark.settings(STORE_SESSION_IN_DATABASE=False, SESSION_UPDATE_AGE=0)
def test_a_refresh_rewrites_the_entry(app: Flask, client: FlaskClient, r: redis.Redis, prefix: str):
    account = sign_up(client)
    created = entry(r, prefix, account.token)["session"]
    time.sleep(0.01)
    response = client.get("/api/auth/get-session")
    assert COOKIE in set_cookies(response)
    refreshed = entry(r, prefix, account.token)["session"]
    assert refreshed["expiresAt"] > created["expiresAt"]
    assert refreshed["updatedAt"] > created["updatedAt"]
    assert refreshed["createdAt"] == created["createdAt"]
    assert response.get_json()["session"] == refreshed
    assert r.ttl(prefix + account.token) >= WEEK - 5


@REDIS_ONLY
def test_change_password_revoking_other_sessions_keeps_the_new_one(
    app: Flask, client: FlaskClient, r: redis.Redis, prefix: str
):
    account = sign_up(client)
    laptop = app.test_client()
    sign_in(laptop, account.email)
    response = client.post(
        "/api/auth/change-password",
        json={
            "currentPassword": PASSWORD,
            "newPassword": "another-pass-1",
            "revokeOtherSessions": True,
        },
        headers=ORIGIN,
    )
    token = response.get_json()["token"]
    assert token and token != account.token
    assert r.get(f"{prefix}revoked-sessions-before-{account.user['id']}") is not None
    assert r.get(prefix + account.token) is None
    assert client.get("/api/me").status_code == 200  # created after the marker: valid
    assert laptop.get("/api/me").status_code == 401


@REDIS_ONLY
def test_delete_user_removes_the_cached_sessions(
    app: Flask, client: FlaskClient, r: redis.Redis, prefix: str
):
    account = sign_up(client)
    response = client.post("/api/auth/delete-user", json={"password": PASSWORD}, headers=ORIGIN)
    assert response.get_json() == {"success": True, "message": "User deleted"}
    assert r.get(prefix + account.token) is None
    assert replay(app, account.token).get("/api/me").status_code == 401


def test_sensitive_routes_read_the_database_when_it_holds_the_truth(
    app: Flask, client: FlaskClient
):
    """A Redis entry the database no longer has (a revocation Redis missed) cannot authorise a
    sensitive route; non-sensitive reads trust Redis, as in Better Auth."""
    account = sign_up(client)
    with app.app_context():
        db = app.extensions["better_auth"].db
        db.session.execute(delete(Session).where(Session.token == account.token))
        db.session.commit()
    assert client.get("/api/me").status_code == 200
    response = client.post("/api/auth/verify-password", json={"password": PASSWORD}, headers=ORIGIN)
    assert response.status_code == 401


def test_a_write_that_failed_is_undone_when_redis_answers_again(
    app: Flask, client: FlaskClient, r: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
):
    """Sign-out while Redis refuses: the database row goes, the Redis entry stays behind and
    is deleted by the next command that reaches Redis; it never authorises in between."""
    account = sign_up(client)
    storage = app.extensions["better_auth"].secondary

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise redis.ConnectionError("refused for the test")

    monkeypatch.setattr(storage.client, "delete", refuse)
    assert client.post("/api/auth/sign-out", headers=ORIGIN).status_code == 200
    monkeypatch.undo()
    assert r.get(prefix + account.token) is not None  # left behind
    stale = replay(app, account.token)
    assert stale.get("/api/auth/get-session").get_data() == b"null"  # reads went to the DB

    sign_up(app.test_client(), "bob@example.com")  # any Redis command: the stale key goes
    assert r.get(prefix + account.token) is None
    assert stale.get("/api/auth/get-session").get_data() == b"null"


# ---------------------------------------------------------------- verification values


@pytest.mark.parametrize("in_database", [True, False], ids=["with-db", "redis-only"])
def test_reset_tokens_live_in_redis_with_a_ttl_and_work_once(
    make: Callable[..., Flask], r: redis.Redis, prefix: str, tmp_path: Path, in_database: bool
):
    outbox = tmp_path / "outbox.jsonl"
    app = make(
        VERIFICATION_STORE_IN_DATABASE=in_database, EMAIL_BACKEND="outbox", EMAIL_OUTBOX=str(outbox)
    )
    client = app.test_client()
    account = sign_up(client)
    response = client.post(
        "/api/auth/request-password-reset",
        json={"email": account.email, "redirectTo": "/reset"},
        headers=ORIGIN,
    )
    assert response.status_code == 200
    token = json.loads(outbox.read_text().splitlines()[-1])["token"]
    key = f"{prefix}verification:reset-password:{token}"
    row = json.loads(r.get(key))
    assert row["identifier"] == f"reset-password:{token}"
    assert row["value"] == account.user["id"]
    assert 3595 <= r.ttl(key) <= 3600
    with app.app_context():
        db = app.extensions["better_auth"].db
        rows = db.session.execute(select(func.count()).select_from(Verification)).scalar_one()
    assert rows == (1 if in_database else 0)

    link = client.get(f"/api/auth/reset-password/{token}?callbackURL=/reset")
    assert link.status_code == 302 and link.headers["Location"].endswith(f"/reset?token={token}")
    body = {"newPassword": "another-pass-1", "token": token}
    assert client.post("/api/auth/reset-password", json=body, headers=ORIGIN).status_code == 200
    again = client.post("/api/auth/reset-password", json=body, headers=ORIGIN)
    assert again.status_code == 400 and again.get_json()["code"] == "INVALID_TOKEN"
    assert r.get(key) is None
    assert sign_in(app.test_client(), account.email, "another-pass-1").status_code == 200


@pytest.mark.settings(VERIFICATION_STORE_IN_DATABASE=False)
def test_a_redis_verification_value_is_consumed_once_under_a_race(app: Flask):
    with app.app_context():
        storage().verifications.create("race:1", "the-value", utcnow() + timedelta(minutes=5))
        storage().commit()
    results: list[str | None] = []
    barrier = threading.Barrier(8)

    def take() -> None:
        with app.app_context():
            barrier.wait()
            results.append(storage().verifications.consume("race:1"))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("the-value") == 1 and results.count(None) == 7


# ---------------------------------------------------------------- configuration


def test_a_non_redis_url_is_a_config_error(database_url: str):
    with pytest.raises(ConfigError, match="BETTER_AUTH_SECONDARY_STORAGE_URL"):
        make_app(database_url, create_tables=False, SECONDARY_STORAGE_URL="http://localhost:6379")


# ---------------------------------------------------------------- Redis outage


class RedisServer:
    """A redis-server of the test's own, on a free port: the tests may stop it."""

    def __init__(self, tmp_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.RedisError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        self.stop()
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture
def dedicated_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed")
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def test_redis_stopped_sessions_are_still_served_from_the_database(
    database_url: str, dedicated_redis: RedisServer, caplog: pytest.LogCaptureFixture
):
    app = make_app(
        database_url,
        SECONDARY_STORAGE_URL=dedicated_redis.url,
        SECONDARY_STORAGE_TIMEOUT=0.5,
    )
    try:
        client = app.test_client()
        account = sign_up(client)
        assert app.extensions["better_auth"].secondary.ping()
        dedicated_redis.stop()

        with caplog.at_level(logging.WARNING, logger="flask_better_auth"):
            me = client.get("/api/me")
            assert me.status_code == 200, me.get_data(as_text=True)
            assert me.get_json()["user"] == account.user
            session = client.get("/api/auth/get-session")
            assert session.status_code == 200
            assert session.get_json()["session"]["token"] == account.token
            bearer = app.test_client().get(
                "/api/me", headers={"Authorization": f"Bearer {account.token}"}
            )
            assert bearer.status_code == 200
            sensitive = client.post(
                "/api/auth/verify-password", json={"password": PASSWORD}, headers=ORIGIN
            )
            assert sensitive.get_json() == {"status": True}
            renamed = client.post("/api/auth/update-user", json={"name": "Annie"}, headers=ORIGIN)
            assert renamed.get_json() == {"status": True}
            laptop = app.test_client()
            assert sign_in(laptop, account.email).status_code == 200
            assert laptop.get("/api/me").get_json()["user"]["name"] == "Annie"
            assert client.post("/api/auth/sign-out", headers=ORIGIN).status_code == 200
            assert client.get("/api/auth/get-session").get_data() == b"null"
        unreachable = [rec for rec in caplog.records if "unreachable" in rec.getMessage()]
        assert len(unreachable) == 1  # once per outage, not once per request
    finally:
        close_app(app)


def test_redis_stopped_with_sessions_only_in_redis_answers_503(
    database_url: str, dedicated_redis: RedisServer
):
    app = make_app(
        database_url,
        SECONDARY_STORAGE_URL=dedicated_redis.url,
        SECONDARY_STORAGE_TIMEOUT=0.5,
        STORE_SESSION_IN_DATABASE=False,
    )
    try:
        client = app.test_client()
        account = sign_up(client)
        dedicated_redis.stop()

        for response in (
            client.get("/api/auth/get-session"),
            client.get("/api/me"),
            client.post("/api/auth/sign-out", headers=ORIGIN),  # cannot revoke: fails closed
            sign_in(app.test_client(), account.email),
        ):
            assert response.status_code == 503
            assert response.get_json() == UNAVAILABLE
            assert response.headers.getlist("Set-Cookie") == []  # nobody is signed out
        # Without credentials nothing needs Redis.
        assert app.test_client().get("/api/open").get_json() == {"signed_in": False}
        assert app.test_client().get("/api/auth/get-session").get_data() == b"null"
    finally:
        close_app(app)

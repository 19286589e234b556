"""The storage protocols, implementation by implementation: the database (SQLite and
PostgreSQL), Redis alone, and the layered wrapper, with Redis up and with Redis down (fail open
where the database holds the data too, fail closed where Redis holds the only copy)."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import ORIGIN, make_app, queries
from flask import Flask

import flask_better_auth
from flask_better_auth.crypto import generate_id
from flask_better_auth.models import Account, Session, User, utcnow
from flask_better_auth.secondary_storage import StorageUnavailable
from flask_better_auth.state import state, storage
from flask_better_auth.storage import (
    RESET_PASSWORD_PREFIX,
    Conflict,
    KeyValueStore,
    LayeredStorage,
    SessionStore,
    VerificationStore,
)
from flask_better_auth.storage.database import (
    Database,
    DatabaseKeyValue,
    DatabaseSessions,
    DatabaseVerifications,
)
from flask_better_auth.storage.redis import RedisKeyValue, RedisSessions, RedisVerifications

REDIS_URL = os.environ.get("FBA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: Nothing listens on port 1: every command is refused at once, as by a Redis that is down.
DOWN_URL = "redis://127.0.0.1:1/0"
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    value = f"fba-test:{uuid.uuid4().hex}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{value}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def close(app: Flask) -> None:
    with app.app_context():
        state().db.session.remove()
        state().db.engine.dispose()
    if state_of(app).secondary is not None:
        state_of(app).secondary.close()


def state_of(app: Flask) -> Any:
    return app.extensions["better_auth"]


@dataclass
class Implementation:
    """The stores under test (built inside an app context)."""

    sessions: SessionStore
    verifications: VerificationStore
    kv: KeyValueStore


def implementation(kind: str) -> Implementation:
    if kind == "database":
        database = Database(state().db)
        return Implementation(
            DatabaseSessions(database), DatabaseVerifications(database), DatabaseKeyValue(database)
        )
    if kind == "redis":
        secondary = state().secondary
        return Implementation(
            RedisSessions(secondary), RedisVerifications(secondary), RedisKeyValue(secondary)
        )
    layered = storage()
    assert isinstance(layered, LayeredStorage)
    return Implementation(layered.sessions, layered.verifications, layered.kv)


@pytest.fixture(params=["database", "redis", "layered"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(kind: str, database_url: str, request: pytest.FixtureRequest) -> Iterator[Flask]:
    settings: dict[str, Any] = {}
    if kind != "database":
        settings["SECONDARY_STORAGE_URL"] = request.getfixturevalue("redis_url")
        settings["SECONDARY_STORAGE_PREFIX"] = request.getfixturevalue("prefix")
    if kind == "redis":
        settings["STORE_SESSION_IN_DATABASE"] = False  # verification values follow
    app = make_app(database_url, **settings)
    yield app
    close(app)


def add_user(email: str = "ann@example.com") -> User:
    user = storage().users.create("Ann", email, password_hash="hash")
    storage().commit()
    return user


def new_session(user: User, *, created: datetime | None = None) -> Session:
    now = created or utcnow()
    return Session(
        id=generate_id(),
        token=generate_id(),
        user_id=user.id,
        expires_at=now + timedelta(days=7),
        created_at=now,
        updated_at=now,
        ip_address="",
        user_agent="test",
    )


def same_instant(a: datetime, b: datetime) -> bool:
    return abs(a - b) < timedelta(milliseconds=1)  # JSON dates keep milliseconds


# ---------------------------------------------------------------- each implementation


def test_sessions_through_the_protocol(app: Flask, kind: str):
    with app.test_request_context():
        sessions = implementation(kind).sessions
        user = add_user()
        start = utcnow()
        first, second, third = (new_session(user, created=start + i * MINUTE) for i in range(3))
        for session in (third, first, second):
            sessions.create(session, user)
        storage().commit()

        found = sessions.find(first.token)
        assert found is not None
        read_from = "database" if kind == "database" else "secondary"  # Redis answers first
        assert (found[0].id, found[1].id, found[2]) == (first.id, user.id, read_from)
        assert sessions.source == ("secondary" if kind == "redis" else "database")
        assert sessions.find("no-such-token") is None
        listed = sessions.list_active(user.id)
        assert [s.id for s in listed] == [first.id, second.id, third.id]

        stamp = utcnow()
        assert sessions.extend(first, user, stamp, stamp + timedelta(days=9))
        assert first.expires_at == stamp + timedelta(days=9)
        found = sessions.find(first.token, authoritative=True)
        assert found is not None and same_instant(found[0].expires_at, first.expires_at)

        assert sessions.delete_for_user("someone-else", token=second.token) == 0
        assert sessions.delete_for_user(user.id, token=second.token) == 1
        assert sessions.delete_for_user(user.id, keep_token=third.token) == 1  # the first
        assert sessions.delete_token(third.token) == user.id
        assert sessions.delete_token(third.token) is None
        storage().commit()
        assert sessions.list_active(user.id) == []
        assert all(sessions.find(s.token) is None for s in (first, second, third))

        fourth, fifth = new_session(user), new_session(user)
        sessions.create(fourth, user)
        sessions.create(fifth, user)
        storage().commit()
        sessions.discard(fifth)
        assert sessions.find(fifth.token) is None
        assert sessions.delete_for_user(user.id) == 1
        storage().commit()
        assert sessions.find(fourth.token) is None


def test_a_user_update_reaches_the_sessions_copy(app: Flask, kind: str):
    with app.test_request_context():
        sessions = implementation(kind).sessions
        user = add_user()
        session = new_session(user)
        sessions.create(session, user)
        storage().commit()
        row = storage().users.update(user, name="Anna")
        storage().commit()
        sessions.refresh_user(row)
        found = sessions.find(session.token)
        assert found is not None and found[1].name == "Anna"


def test_an_extension_of_a_deleted_session_fails(app: Flask, kind: str):
    with app.test_request_context():
        sessions = implementation(kind).sessions
        user = add_user()
        session = new_session(user)
        sessions.create(session, user)
        storage().commit()
        before = session.expires_at
        assert sessions.delete_for_user(user.id) == 1
        storage().commit()
        stamp = utcnow()
        assert not sessions.extend(session, user, stamp, stamp + timedelta(days=9))
        assert session.expires_at == before


def test_verification_values_through_the_protocol(app: Flask, kind: str):
    with app.test_request_context():
        values = implementation(kind).verifications
        later = utcnow() + timedelta(minutes=5)
        row = values.create("reset-password:abc", "user-1", later)
        storage().commit()
        found = values.find("reset-password:abc")
        assert found is not None and (found.id, found.value) == (row.id, "user-1")
        assert values.consume("reset-password:abc") == "user-1"
        storage().commit()
        assert values.consume("reset-password:abc") is None
        assert values.find("reset-password:abc") is None

        values.create("gone", "value", utcnow() - MINUTE)
        storage().commit()
        assert values.find("gone") is None and values.consume("gone") is None

        for identifier, value in (("a*1", "u1"), ("a*2", "u1"), ("a*3", "u2"), ("b-4", "u1")):
            values.create(f"{RESET_PASSWORD_PREFIX}{identifier}", value, later)
        values.create("other:5", "u1", later)
        storage().commit()
        values.delete_matching(f"{RESET_PASSWORD_PREFIX}a*", "u1")
        storage().commit()
        left = {
            name
            for name in ("a*1", "a*2", "a*3", "b-4")
            if values.find(f"{RESET_PASSWORD_PREFIX}{name}") is not None
        }
        assert left == {"a*3", "b-4"} and values.find("other:5") is not None


def test_expired_rows_are_purged_in_batches(app: Flask, kind: str):
    with app.test_request_context():
        values = implementation(kind).verifications
        for number in range(3):
            values.create(f"old:{number}", "v", utcnow() - MINUTE)
        values.create("fresh", "v", utcnow() + MINUTE)
        storage().commit()
        if kind == "redis":  # Redis expires its keys itself: nothing to purge
            assert values.count_expired(utcnow()) == 0
            assert values.purge_expired(utcnow(), 2) == (0, 0)
            return
        assert values.count_expired(utcnow()) == 3
        assert values.purge_expired(utcnow(), 2) == (2, 2)
        assert values.purge_expired(utcnow(), 2) == (1, 1)
        assert values.purge_expired(utcnow(), 2) == (0, 0)
        assert values.find("fresh") is not None


def test_the_key_value_store_with_ttl(app: Flask, kind: str):
    with app.test_request_context():
        kv = implementation(kind).kv
        kv.set("plugin:a", "one", MINUTE)
        kv.set("plugin:a", "two", MINUTE)
        assert kv.get("plugin:a") == "two"
        assert kv.take("plugin:a") == "two"
        assert kv.take("plugin:a") is None and kv.get("plugin:a") is None
        kv.set("plugin:b", "x", MINUTE)
        kv.delete("plugin:b")
        assert kv.get("plugin:b") is None
        assert [kv.increment("plugin:c", timedelta(seconds=1)) for _ in range(3)] == [1, 2, 3]
        kv.set("plugin:d", "short", timedelta(seconds=1))
        storage().rollback()  # the store's writes are its own: a failing request keeps them
        assert kv.get("plugin:d") == "short" and kv.increment("plugin:c", MINUTE) == 4
        time.sleep(1.2)
        assert kv.get("plugin:d") is None
        assert kv.increment("plugin:c", MINUTE) == 1  # the window had closed: a new one


def test_redis_counts_exactly_under_a_race(redis_url: str, prefix: str, tmp_path: Path):
    # (The database's first increment of a key may race: documented on DatabaseKeyValue.)
    app = make_app(
        f"sqlite:///{tmp_path / 'auth.sqlite'}",
        SECONDARY_STORAGE_URL=redis_url,
        SECONDARY_STORAGE_PREFIX=prefix,
        VERIFICATION_STORE_IN_DATABASE=False,
    )
    counts: list[int] = []
    barrier = threading.Barrier(8)

    def count() -> None:
        with app.app_context():
            kv = storage().kv
            barrier.wait()
            counts.append(kv.increment("plugin:race", MINUTE))

    try:
        threads = [threading.Thread(target=count) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        close(app)
    assert sorted(counts) == list(range(1, 9))


# ---------------------------------------------------------------- users and accounts


def test_users_and_accounts_through_the_protocol(database_url: str):
    app = make_app(database_url)
    try:
        with app.test_request_context():
            store = storage()
            user = store.users.create("Ann", "Ann@Example.com", password_hash="h1", verified=True)
            plain = store.users.create("Bob", "bob@example.com")
            store.commit()
            assert store.users.by_email("ANN@example.com") is user
            assert store.users.get(plain.id) is plain
            assert store.accounts.credential(plain.id) is None
            account = store.accounts.credential(user.id)
            assert isinstance(account, Account) and account.password == "h1"
            with pytest.raises(Conflict):
                store.users.create("Other Ann", "ann@example.com", password_hash="h2")
            assert store.users.by_email("ann@example.com") is not None

            store.verifications.create(f"{RESET_PASSWORD_PREFIX}t", user.id, utcnow() + MINUTE)
            store.commit()
            store.accounts.set_password(user.id, "h3")
            store.accounts.set_password(plain.id, "h4")  # creates the credential account
            store.commit()
            assert store.verifications.find(f"{RESET_PASSWORD_PREFIX}t") is None
            credentials = (store.accounts.credential(user.id), store.accounts.credential(plain.id))
            assert [a.password if a else None for a in credentials] == ["h3", "h4"]

            cached = User.from_json(user.to_json())  # as a cookie cache or Redis holds it
            assert store.users.row(cached) is user
            assert store.users.update(cached, name="Anna") is user and user.name == "Anna"
            with pytest.raises(Conflict):
                store.users.update(plain, email="ann@example.com")
            expected = {"email": "ann@example.com", "email_verified": False}
            assert not store.users.update_if(user, expected, name="No")
            expected["email_verified"] = True
            assert store.users.update_if(user, expected, email="anna@example.com")
            assert user.email == "anna@example.com"
            with pytest.raises(Conflict):
                store.users.update_if(plain, {}, email="anna@example.com")
            store.commit()

            store.users.delete(user.id)
            store.commit()
            assert store.users.get(user.id) is None and store.accounts.credential(user.id) is None
    finally:
        close(app)


def test_a_session_lookup_is_one_query(database_url: str):
    app = make_app(database_url)
    try:
        with app.test_request_context():
            user = add_user()
            session = new_session(user)
            storage().sessions.create(session, user)
            storage().commit()
            token = session.token
            state().db.session.remove()
        with app.test_request_context(), queries(app) as statements:
            found = storage().sessions.find(token)
            assert found is not None and found[1].email == "ann@example.com"
        assert len(statements) == 1
    finally:
        close(app)


# ---------------------------------------------------------------- Redis down


def test_redis_down_with_the_database_holding_the_data_fails_open(
    database_url: str, caplog: pytest.LogCaptureFixture
):
    app = make_app(database_url, SECONDARY_STORAGE_URL=DOWN_URL)
    caplog.set_level(logging.WARNING, logger="flask_better_auth")
    try:
        with app.test_request_context():
            store = storage()
            assert isinstance(store.kv, DatabaseKeyValue)
            user = add_user()
            session = new_session(user)
            store.sessions.create(session, user)
            store.commit()
            found = store.sessions.find(session.token)
            assert found is not None and found[2] == "database"
            stamp = utcnow()
            assert store.sessions.extend(session, user, stamp, stamp + timedelta(days=9))
            assert [s.id for s in store.sessions.list_active(user.id)] == [session.id]
            store.sessions.refresh_user(user)
            store.verifications.create("reset-password:t", user.id, utcnow() + MINUTE)
            store.commit()
            assert store.verifications.find("reset-password:t") is not None
            assert store.verifications.consume("reset-password:t") == user.id
            store.kv.set("plugin:a", "1", MINUTE)
            assert store.kv.get("plugin:a") == "1"
            assert store.sessions.delete_for_user(user.id) == 1
            store.commit()
            assert store.sessions.find(session.token) is None
        unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(unreachable) == 1  # logged once per outage
    finally:
        close(app)


def test_redis_down_holding_the_only_copy_fails_closed(database_url: str):
    app = make_app(database_url, SECONDARY_STORAGE_URL=DOWN_URL, STORE_SESSION_IN_DATABASE=False)
    try:
        with app.test_request_context():
            store = storage()
            assert isinstance(store.kv, RedisKeyValue)
            user = add_user()
            with pytest.raises(StorageUnavailable):
                store.sessions.create(new_session(user), user)
            with pytest.raises(StorageUnavailable):
                store.sessions.find("token")
            with pytest.raises(StorageUnavailable):
                store.sessions.delete_for_user(user.id)
            with pytest.raises(StorageUnavailable):
                store.verifications.create("reset-password:t", user.id, utcnow() + MINUTE)
            with pytest.raises(StorageUnavailable):
                store.kv.increment("plugin:attempts", MINUTE)
        response = app.test_client().post(
            "/api/auth/sign-up/email",
            json={"name": "Bob", "email": "bob@example.com", "password": "correct-horse-1"},
            headers=ORIGIN,
        )
        assert response.status_code == 503
        assert response.get_json()["code"] == "SERVICE_UNAVAILABLE"
        assert response.headers["Retry-After"] == "1"
        with app.app_context():  # the sign-up was rolled back with its session
            assert storage().users.by_email("bob@example.com") is None
    finally:
        close(app)


def test_each_kind_of_data_fails_by_where_its_copies_are(database_url: str):
    """Sessions in the database too, verification values only in Redis: one fails open, the
    other closed, in the same app."""
    app = make_app(
        database_url, SECONDARY_STORAGE_URL=DOWN_URL, VERIFICATION_STORE_IN_DATABASE=False
    )
    try:
        with app.test_request_context():
            store = storage()
            user = add_user()
            session = new_session(user)
            store.sessions.create(session, user)
            store.commit()
            assert store.sessions.find(session.token) is not None
            with pytest.raises(StorageUnavailable):
                store.verifications.find("reset-password:t")
            with pytest.raises(StorageUnavailable):
                store.kv.get("plugin:a")
    finally:
        close(app)


def test_the_storage_is_chosen_once_per_app(database_url: str):
    app = make_app(database_url)
    try:
        with app.app_context():
            first = storage()
        with app.app_context():
            assert storage() is first and isinstance(first.kv, DatabaseKeyValue)
    finally:
        close(app)


def test_nothing_reaches_around_the_storage():
    """Only the storage package works with the SQLAlchemy session (the extension closes it at
    the end of a request), and no module grows past 600 lines."""
    package = Path(flask_better_auth.__file__).parent
    around = re.compile(r"db\.session|db_session|\.session\(\)")
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.parent.name != "storage"
        and path.name != "extension.py"
        and around.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    too_long = [p.name for p in package.rglob("*.py") if len(p.read_text().splitlines()) > 600]
    assert too_long == []

"""App-factory fixtures: every wire test runs on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient
from nodejs import node_env  # noqa: F401  (a fixture, shared by the tests that run Node)
from sqlalchemy import event

from flask_better_auth import BetterAuth, current_session, current_user, login_required
from flask_better_auth.models import metadata

SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
BASE = "http://localhost"
ORIGIN = {"Origin": BASE}
PASSWORD = "correct-horse-1"

PG_URL = os.environ.get(
    "FBA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test process's own on the local PostgreSQL server, dropped at the end.

    Named after the xdist worker and the process id, so parallel runs never share one.
    """
    import psycopg

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"fba_test_{re.sub(r'[^a-z0-9_]', '_', worker.lower())}_{os.getpid()}"
    conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL at {conninfo} is not reachable: {exc}")
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'auth.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def make_app(database_url: str, *, create_tables: bool = True, **overrides: Any) -> Flask:
    """A small app like a user's: the extension, a protected route and an open one.

    ``overrides`` are ``BETTER_AUTH_*`` settings without the prefix (``COOKIE_SECURE=False``).
    """
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        BETTER_AUTH_SECRET=SECRET,
        BETTER_AUTH_BASE_URL=BASE,
        BETTER_AUTH_SCRYPT_N=1024,  # test-only: real cost is proven in test_crypto.py
        BETTER_AUTH_DELETE_USER_ENABLED=True,
    )
    app.config.update(
        {
            f"BETTER_AUTH_{k}" if not k.startswith(("BETTER_", "SQLALCHEMY")) else k: v
            for k, v in overrides.items()
        }
    )
    auth = BetterAuth(app)

    @app.get("/api/me")
    @login_required
    def me() -> Any:
        return jsonify(user=current_user.to_json(), session=current_session.to_json())

    @app.get("/api/open")
    def open_route() -> Any:
        return jsonify(signed_in=bool(current_user))

    if create_tables:
        with app.app_context():
            metadata.drop_all(auth.db.engine)
            metadata.create_all(auth.db.engine)
    return app


@pytest.fixture
def app(request: pytest.FixtureRequest, database_url: str) -> Iterator[Flask]:
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    app = make_app(database_url, **overrides)
    yield app
    close_app(app)


def close_app(app: Flask) -> None:
    """Release what an app made by :func:`make_app` holds: database connections, Redis pool."""
    state = app.extensions["better_auth"]
    with app.app_context():
        state.db.session.remove()
        state.db.engine.dispose()
    if state.secondary is not None:
        state.secondary.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class Account:
    email: str
    password: str
    token: str
    user: dict[str, Any]


def sign_up(
    client: FlaskClient, email: str = "ann@example.com", password: str = PASSWORD, **extra: Any
) -> Account:
    """Sign up through the HTTP API; the client's cookie jar keeps the session."""
    body = {"name": "Ann", "email": email, "password": password, **extra}
    response = client.post("/api/auth/sign-up/email", json=body, headers=ORIGIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    return Account(email=email.lower(), password=password, token=data["token"], user=data["user"])


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(
        "/api/auth/sign-in/email",
        json={"email": email, "password": password, **extra},
        headers=ORIGIN,
    )


@contextmanager
def queries(app: Flask) -> Iterator[list[str]]:
    """The SQL statements run while the block runs."""
    with app.app_context():
        engine = app.extensions["better_auth"].db.engine
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def set_cookies(response: Any) -> dict[str, dict[str, Any]]:
    """Every Set-Cookie of a response, parsed: {name: {"value", "max-age", "secure"…}}."""
    parsed: dict[str, dict[str, Any]] = {}
    for header in response.headers.getlist("Set-Cookie"):
        first, *attrs = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        cookie: dict[str, Any] = {"value": value, "raw": header}
        for attr in attrs:
            key, sep, val = attr.partition("=")
            cookie[key.lower()] = val if sep else True
        parsed[name] = cookie
    return parsed

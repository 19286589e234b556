"""The plugin seam, proven by a test plugin (tests/seam_plugin) using every part of it.

Its column reaches get-session, ``current_user``, the cookie cache and Redis; its table and
columns are made by ``flask better-auth migrate`` only where it is enabled; apps with and
without it live side by side in one process, each with its own blueprint.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import ORIGIN, make_app, queries, set_cookies, sign_in, sign_up
from conftest import close_app as close
from flask import Flask
from seam_plugin import Note, SeamNotes
from sqlalchemy import create_engine, inspect, text

from flask_better_auth import BetterAuth, ConfigError
from flask_better_auth.endpoints import Endpoints
from flask_better_auth.migrations import VERSION_TABLE
from flask_better_auth.models import metadata, rate_limit_metadata
from flask_better_auth.plugins import REGISTRY, Plugin, register_plugin

REDIS_URL = os.environ.get("FBA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AUTH = "/api/auth"


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    register_plugin(SeamNotes)
    yield
    REGISTRY.pop(SeamNotes.id, None)


def drop_note_table(app: Flask) -> None:
    with app.app_context():
        Note.__table__.drop(app.extensions["better_auth"].db.engine, checkfirst=True)


def plugin_app(database_url: str, **overrides: Any) -> Flask:
    """``make_app`` with the plugin enabled by id, its table created fresh."""
    app = make_app(database_url, PLUGINS=["seam-notes"], **overrides)
    drop_note_table(app)
    with app.app_context():
        app.extensions["better_auth"].extension.create_all()
    return app


STORAGES = {
    "database": {},
    "cookie-cache": {"COOKIE_CACHE_ENABLED": True},
    "redis": {"SECONDARY_STORAGE_URL": REDIS_URL},
    "redis-only": {"SECONDARY_STORAGE_URL": REDIS_URL, "STORE_SESSION_IN_DATABASE": False},
}


@pytest.mark.parametrize("storage", list(STORAGES))
def test_the_column_flows_everywhere(database_url: str, storage: str, tmp_path: Path) -> None:
    prefix = f"seam-{os.getpid()}-{tmp_path.name}:"
    settings: dict[str, Any] = dict(STORAGES[storage])
    if "SECONDARY_STORAGE_URL" in settings:
        settings["SECONDARY_STORAGE_PREFIX"] = prefix
    app = plugin_app(database_url, **settings)
    try:
        client = app.test_client()
        account = sign_up(client)
        # Better Auth's key order: the plugin's fields after updatedAt, the id last.
        assert list(account.user) == [
            "name",
            "email",
            "emailVerified",
            "image",
            "createdAt",
            "updatedAt",
            "favoriteColor",
            "id",
        ]
        assert account.user["favoriteColor"] == "blue"
        session = client.get(f"{AUTH}/get-session").get_json()
        assert list(session["session"])[-2:] == ["deviceLabel", "id"]
        assert session["user"]["favoriteColor"] == "blue"

        r = client.post(f"{AUTH}/seam-notes/set-color", json={"color": "green"}, headers=ORIGIN)
        assert r.status_code == 200, r.get_data(as_text=True)
        if storage == "cookie-cache":
            assert "better-auth.session-data" in set_cookies(r)
        again = client.get(f"{AUTH}/get-session").get_json()
        assert again["user"]["favoriteColor"] == "green"
        assert client.get("/api/me").get_json()["user"]["favoriteColor"] == "green"
        fresh = client.get(f"{AUTH}/get-session?disableCookieCache=true").get_json()
        assert fresh["user"]["favoriteColor"] == "green"
        if "SECONDARY_STORAGE_URL" in settings:
            stored = redis.Redis.from_url(REDIS_URL).get(prefix + account.token)
            assert stored is not None
            assert json.loads(stored)["user"]["favoriteColor"] == "green"
    finally:
        if "SECONDARY_STORAGE_URL" in settings:
            r = redis.Redis.from_url(REDIS_URL)
            for key in r.scan_iter(match=prefix + "*"):
                r.delete(key)
        drop_note_table(app)
        close(app)


def test_routes_hooks_errors_and_settings(database_url: str) -> None:
    app = plugin_app(database_url, SEAM_NOTES_GREETING="hi there")
    try:
        client = app.test_client()
        sign_up(client)
        r = client.post(f"{AUTH}/seam-notes/add", json={"text": "buy milk"}, headers=ORIGIN)
        assert r.status_code == 200
        assert r.get_json()["greeting"] == "hi there"
        note_id = r.get_json()["id"]
        r = client.get(f"{AUTH}/seam-notes/{note_id}")
        assert r.get_json()["text"] == "buy milk"
        # The plugin's error code, in Better Auth's shape.
        r = client.post(f"{AUTH}/seam-notes/add", json={"text": "far too long"}, headers=ORIGIN)
        assert (r.status_code, r.get_json()) == (
            400,
            {"message": "Note too long", "code": "NOTE_TOO_LONG"},
        )
        # A before-hook answers instead of the handler.
        r = client.post(f"{AUTH}/seam-notes/add", json={"text": "secret"}, headers=ORIGIN)
        assert (r.status_code, r.get_json()) == (403, {"refused": True})
        # The endpoint's auth level: no session, no handler.
        anonymous = app.test_client()
        r = anonymous.post(f"{AUTH}/seam-notes/add", json={"text": "x"}, headers=ORIGIN)
        assert (r.status_code, r.get_json()["code"]) == (401, "UNAUTHORIZED")
        assert anonymous.get(f"{AUTH}/seam-notes/{note_id}").status_code == 401
    finally:
        drop_note_table(app)
        close(app)


def test_an_after_hook_replaces_the_sign_in_answer(database_url: str) -> None:
    app = plugin_app(database_url)
    try:
        client = app.test_client()
        sign_up(client, "red@example.com")
        r = client.post(f"{AUTH}/seam-notes/set-color", json={"color": "red"}, headers=ORIGIN)
        assert r.status_code == 200
        other = app.test_client()
        r = sign_in(other, "red@example.com")
        assert (r.status_code, r.get_json()) == (200, {"twoFactorRedirect": True})
        assert r.headers["X-Seam-Hook"] == "after"
        assert "set-auth-token" not in r.headers
        assert set_cookies(r)["better-auth.session-token"]["max-age"] == "0"
        assert other.get(f"{AUTH}/get-session").get_json() is None
        sign_up(app.test_client(), "blue@example.com")
        r = sign_in(app.test_client(), "blue@example.com")
        assert r.get_json()["user"]["favoriteColor"] == "blue"
        assert r.headers["X-Seam-Hook"] == "after"
    finally:
        drop_note_table(app)
        close(app)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_endpoint_rate_limit_rule(database_url: str) -> None:
    app = plugin_app(database_url, RATE_LIMIT_ENABLED=True)
    try:
        client = app.test_client()
        sign_up(client)
        codes = [
            client.post(f"{AUTH}/seam-notes/add", json={"text": "n"}, headers=ORIGIN).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
    finally:
        drop_note_table(app)
        close(app)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_email_kind_and_command(database_url: str) -> None:
    sent: list[Any] = []
    app = make_app(database_url, create_tables=False)  # a first app: proves nothing leaks
    close(app)
    flask_app = Flask(__name__)
    flask_app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        BETTER_AUTH_SECRET="x" * 40,
        BETTER_AUTH_SCRYPT_N=1024,
        BETTER_AUTH_APP_NAME="Acme",
    )
    auth = BetterAuth(flask_app, plugins=[SeamNotes()], send_email=sent.append)
    with flask_app.app_context():
        auth.create_all()
    try:
        client = flask_app.test_client()
        sign_up(client)
        with client.post(f"{AUTH}/seam-notes/mail", headers=ORIGIN) as r:
            assert r.status_code == 200
        (email,) = sent
        assert (email.kind, email.subject) == ("seam-note", "A note from Acme")
        assert email.text.startswith("Hello Ann, a note: https://example.com/n")
        result = flask_app.test_cli_runner().invoke(args=["better-auth", "seam-notes-count"])
        assert (result.exit_code, result.output) == (0, "0\n")
    finally:
        drop_note_table(flask_app)
        close(flask_app)


def columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        names = inspect(engine).get_table_names()
        if table not in names:
            return set()
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def reset(url: str) -> None:
    """No Better Auth table and no version table (the PostgreSQL test database is shared)."""
    engine = create_engine(url)
    try:
        Note.__table__.drop(engine, checkfirst=True)
        rate_limit_metadata.drop_all(engine)
        metadata.drop_all(engine)
        with engine.begin() as connection:
            for table in (VERSION_TABLE, "better_auth_seam_notes_alembic_version"):
                connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
    finally:
        engine.dispose()


def test_migrate_creates_what_the_enabled_plugins_need(database_url: str, tmp_path: Path) -> None:
    # The app without the plugin on either database (PostgreSQL would refuse an INSERT or a
    # RETURNING naming the column its table lacks; SQLite takes "favoriteColor" for a string).
    with_url = f"sqlite:///{tmp_path / 'with.sqlite'}"
    without_url = database_url
    reset(without_url)
    with_app = make_app(with_url, create_tables=False, PLUGINS=["seam-notes"])
    without_app = make_app(without_url, create_tables=False)
    try:
        result = with_app.test_cli_runner().invoke(args=["better-auth", "migrate"])
        assert result.exit_code == 0, result.output
        assert "Applied seam-notes seam_notes_0001" in result.output
        assert columns(with_url, "seamNote") == {"id", "text", "userId"}
        assert "favoriteColor" in columns(with_url, "user")
        assert "deviceLabel" in columns(with_url, "session")
        result = with_app.test_cli_runner().invoke(args=["better-auth", "migrate"])
        assert "Applied" not in result.output

        result = without_app.test_cli_runner().invoke(args=["better-auth", "migrate"])
        assert result.exit_code == 0, result.output
        assert columns(without_url, "seamNote") == set()
        assert "favoriteColor" not in columns(without_url, "user")
        # The app without the plugin works on its database without the column, in the same
        # process as the app whose plugin added it to the shared table.
        client = without_app.test_client()
        account = sign_up(client)
        assert "favoriteColor" not in account.user
        assert "favoriteColor" not in client.get(f"{AUTH}/get-session").get_json()["user"]
        assert client.post(f"{AUTH}/seam-notes/add", json={"text": "x"}).status_code == 404
        plugged = with_app.test_client()
        assert sign_up(plugged).user["favoriteColor"] == "blue"
        r = plugged.post(f"{AUTH}/seam-notes/add", json={"text": "x"}, headers=ORIGIN)
        assert r.status_code == 200
        r = client.post(f"{AUTH}/update-user", json={"name": "Bo"}, headers=ORIGIN)
        assert r.status_code == 200
        assert client.get("/api/me").get_json()["user"]["name"] == "Bo"
    finally:
        close(with_app)
        close(without_app)
        reset(without_url)


def test_migrate_adopts_the_plugin_tables_a_deployment_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'made.sqlite'}"
    app = make_app(url, PLUGINS=["seam-notes"])  # create_all: core tables with the columns
    try:
        with app.app_context():
            app.extensions["better_auth"].extension.create_all()
        result = app.test_cli_runner().invoke(args=["better-auth", "migrate"])
        assert result.exit_code == 0, result.output
        assert "The seam-notes tables already exist: stamped seam_notes_0001." in result.output
        engine = create_engine(url)
        with engine.connect() as connection:
            stamped = connection.execute(
                text("SELECT version_num FROM better_auth_seam_notes_alembic_version")
            ).scalar_one()
        engine.dispose()
        assert stamped == "seam_notes_0001"
    finally:
        close(app)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_plugin_choice_errors(database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match=r"unknown plugin 'nope' \(known: .*seam-notes"):
        make_app(database_url, create_tables=False, PLUGINS=["nope"])
    with pytest.raises(ConfigError, match="'seam-notes' is enabled twice"):
        app = Flask(__name__)
        app.config.update(
            TESTING=True,
            BETTER_AUTH_SECRET="x" * 40,
            BETTER_AUTH_PLUGINS="seam-notes",
            SQLALCHEMY_DATABASE_URI=database_url,
        )
        BetterAuth(app, plugins=[SeamNotes()])
    with caplog.at_level(logging.WARNING, logger="flask_better_auth"):
        close(make_app(database_url, create_tables=False, PLUGINS=["seam-notes"], SEAM_NOTES_X=1))
    # The plugin's own key is known; a typo of it is reported like a core key's.
    assert [r.getMessage() for r in caplog.records] == [
        "unknown setting BETTER_AUTH_SEAM_NOTES_X, ignored:"
        " did you mean BETTER_AUTH_SEAM_NOTES_GREETING?"
    ]


class Clashing(Plugin):
    id = "clashing"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_clashes_are_refused_at_init(database_url: str) -> None:
    codes = Clashing()
    codes.error_codes = {"USER_NOT_FOUND": "Nobody here"}
    with pytest.raises(ConfigError, match="USER_NOT_FOUND"):
        BetterAuth(plugin_config(database_url), plugins=[codes])

    routes = Endpoints()

    @routes.endpoint("/sign-in/email")
    def my_sign_in() -> Any:
        return {}

    paths = Clashing()
    paths.endpoints = routes
    with pytest.raises(ConfigError, match="clashing and core both declare POST /sign-in/email"):
        BetterAuth(plugin_config(database_url), plugins=[paths])

    keys = Clashing()
    keys.keys = SeamNotes.keys
    with pytest.raises(ConfigError, match="declared by both seam-notes and seam-notes"):
        BetterAuth(plugin_config(database_url), plugins=[SeamNotes(), keys])


def plugin_config(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True, BETTER_AUTH_SECRET="x" * 40, SQLALCHEMY_DATABASE_URI=database_url
    )
    return app


def test_create_all_makes_the_columns_of_the_enabled_plugins_only(database_url: str) -> None:
    plugged = plugin_app(database_url)  # the plugin's columns join the shared tables
    assert "favoriteColor" in columns(database_url, "user")
    drop_note_table(plugged)
    close(plugged)
    plain = make_app(database_url)  # drop_all + create_all, in its own app context
    try:
        assert "favoriteColor" not in columns(database_url, "user")
        assert "deviceLabel" not in columns(database_url, "session")
        client = plain.test_client()
        assert "favoriteColor" not in sign_up(client).user
        assert client.get(f"{AUTH}/get-session").get_json()["user"]["email"] == "ann@example.com"
    finally:
        close(plain)


def test_the_columns_load_with_their_rows(database_url: str) -> None:
    # An authenticated get-session still costs one query: no lazy load of the plugin's fields.
    app = plugin_app(database_url)
    try:
        client = app.test_client()
        sign_up(client)
        with queries(app) as statements:
            data = client.get(f"{AUTH}/get-session").get_json()
        assert data["user"]["favoriteColor"] == "blue"
        assert len(statements) == 1, statements
        assert '"favoriteColor"' in statements[0]
    finally:
        drop_note_table(app)
        close(app)

"""``flask better-auth set-role EMAIL ROLE`` and ``create-user --role``, on SQLite and PostgreSQL.

The core has no roles: a plugin adds the ``role`` user field (Better Auth's admin plugin does;
a small one stands in for it here).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import PASSWORD, close_app, make_app, sign_in, sign_up
from flask import Flask
from sqlalchemy import Text

from flask_better_auth.plugins import REGISTRY, ExtraField, Plugin, register_plugin

REDIS_URL = os.environ.get("FBA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AUTH = "/api/auth"
NEEDS_PLUGIN = (
    'needs a plugin that adds a role to users (the admin plugin: BETTER_AUTH_PLUGINS = ["admin"])'
)


class Roles(Plugin):
    """The admin plugin's user field, and nothing else."""

    id = "test-roles"
    user_fields = (ExtraField("role", Text(), default="user"),)


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    register_plugin(Roles)
    yield
    REGISTRY.pop(Roles.id, None)


@pytest.fixture
def close_apps() -> Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        close_app(app)


@pytest.fixture
def roles_app(database_url: str, close_apps: list[Flask]) -> Flask:
    app = make_app(database_url, PLUGINS=["test-roles"])
    close_apps.append(app)
    return app


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["better-auth", *args])


def get_user(app: Flask, client: Any = None, query: str = "") -> dict[str, Any]:
    response = (client or app.test_client()).get(f"{AUTH}/get-session{query}")
    assert response.status_code == 200
    user: dict[str, Any] = response.get_json()["user"]
    return user


def test_set_role_reaches_get_session_and_current_user(roles_app: Flask) -> None:
    client = roles_app.test_client()
    sign_up(client, "ann@example.com")
    assert get_user(roles_app, client)["role"] == "user"  # the field's default

    # The email as sign-in finds it; the roles as Better Auth stores them (no spaces).
    result = run(roles_app, "set-role", " Ann@Example.com ", "admin, support")
    assert (result.exit_code, result.output) == (
        0,
        "Set the role of ann@example.com to admin,support.\n",
    )
    user = get_user(roles_app, client)
    assert user["role"] == "admin,support"
    # Better Auth's key order: the plugin's field after updatedAt, the id last.
    assert list(user) == [
        "name",
        "email",
        "emailVerified",
        "image",
        "createdAt",
        "updatedAt",
        "role",
        "id",
    ]
    assert client.get("/api/me").get_json()["user"]["role"] == "admin,support"
    # Set again: roles are replaced, not added.
    assert run(roles_app, "set-role", "ann@example.com", "user").exit_code == 0
    assert get_user(roles_app, client)["role"] == "user"


@pytest.mark.parametrize("sessions_in_database", [True, False])
def test_set_role_rewrites_the_sessions_copies_in_redis(
    database_url: str, sessions_in_database: bool, close_apps: list[Flask], tmp_path: Path
) -> None:
    prefix = f"set-role-{os.getpid()}-{tmp_path.name}:"
    app = make_app(
        database_url,
        PLUGINS=["test-roles"],
        SECONDARY_STORAGE_URL=REDIS_URL,
        SECONDARY_STORAGE_PREFIX=prefix,
        STORE_SESSION_IN_DATABASE=sessions_in_database,
    )
    close_apps.append(app)
    try:
        client = app.test_client()
        sign_up(client, "ann@example.com")
        assert get_user(app, client)["role"] == "user"
        assert run(app, "set-role", "ann@example.com", "admin").exit_code == 0
        # Read from Redis (while the database holds sessions too, the copy answers first).
        assert get_user(app, client)["role"] == "admin"
    finally:
        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(match=prefix + "*"):
            r.delete(key)
        r.close()


def test_set_role_says_when_redis_could_not_be_rewritten(
    database_url: str, close_apps: list[Flask]
) -> None:
    app = make_app(
        database_url,
        PLUGINS=["test-roles"],
        SECONDARY_STORAGE_URL="redis://127.0.0.1:1/0",  # nothing listens there
    )
    close_apps.append(app)
    sign_up(app.test_client(), "ann@example.com")  # sessions in the database: fail-open
    result = run(app, "set-role", "ann@example.com", "admin")
    assert result.exit_code == 1
    assert result.output.startswith("Error: Set the role of ann@example.com to admin, but the")
    assert "revoke-sessions ann@example.com" in result.output
    client = app.test_client()
    assert sign_in(client, "ann@example.com").get_json()["user"]["role"] == "admin"


def test_set_role_of_an_unknown_email_fails(roles_app: Flask) -> None:
    result = run(roles_app, "set-role", "Nobody@Example.com", "admin")
    assert (result.exit_code, result.output) == (
        1,
        "Error: No user with the email nobody@example.com.\n",
    )


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ("", "must be a role or comma-separated roles, none empty"),
        ("admin,,support", "must be a role or comma-separated roles, none empty"),
        ("admin,", "must be a role or comma-separated roles, none empty"),
        ("adm\x1bin", "must not contain control characters"),
        ("admin\n", "must not contain control characters"),
    ],
)
def test_set_role_rejects_a_bad_role(roles_app: Flask, role: str, message: str) -> None:
    client = roles_app.test_client()
    sign_up(client, "ann@example.com")
    result = run(roles_app, "set-role", "ann@example.com", role)
    assert result.exit_code == 2
    assert message in result.output
    assert get_user(roles_app, client)["role"] == "user"


def test_without_a_plugin_adding_roles_both_commands_refuse(app: Flask) -> None:
    client = app.test_client()
    sign_up(client, "ann@example.com")
    result = run(app, "set-role", "ann@example.com", "admin")
    assert (result.exit_code, result.output) == (1, f"Error: set-role {NEEDS_PLUGIN}\n")
    result = run(
        app, "create-user", "--email", "root@example.com", "--name", "Root",
        "--password", PASSWORD, "--role", "admin",
    )  # fmt: skip
    assert (result.exit_code, result.output) == (1, f"Error: --role {NEEDS_PLUGIN}\n")
    assert sign_in(app.test_client(), "root@example.com").status_code == 401  # not created
    assert "role" not in get_user(app, client)


def test_create_user_with_a_role(roles_app: Flask) -> None:
    result = run(
        roles_app, "create-user", "--email", "Root@Example.com", "--name", "Root",
        "--password", PASSWORD, "--verified", "--role", "admin",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Created user root@example.com (id ")
    assert result.output.endswith(", verified, role admin).\n")
    response = sign_in(roles_app.test_client(), "root@example.com")
    assert response.status_code == 200
    assert response.get_json()["user"]["role"] == "admin"
    # Without --role: the field's default, as for a user who signs up.
    result = run(
        roles_app, "create-user", "--email", "ops@example.com", "--name", "Ops",
        "--password", PASSWORD,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "role" not in result.output
    assert sign_in(roles_app.test_client(), "ops@example.com").get_json()["user"]["role"] == "user"


def test_create_user_rejects_a_bad_role_before_creating(roles_app: Flask) -> None:
    result = run(
        roles_app, "create-user", "--email", "root@example.com", "--name", "Root",
        "--password", PASSWORD, "--role", " , ",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "none empty" in result.output
    assert sign_in(roles_app.test_client(), "root@example.com").status_code == 401

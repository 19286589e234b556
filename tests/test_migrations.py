"""The shipped Alembic migrations and ``flask better-auth migrate / status / generate``.

The migrated schema must be exactly what ``metadata.create_all`` makes (both are Better Auth's),
an existing database (the JS server's, or one made by ``create_all``) must be adopted as is, and
an app's own ``alembic_version`` must never be touched.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import ORIGIN, make_app, sign_up
from flask import Flask
from sqlalchemy import Column, Engine, MetaData, Table, Text, inspect, text

from flask_better_auth.migrations import (
    MODEL_TABLES,
    VERSION_TABLE,
    alembic_config,
    include_name,
    revisions,
    upgrade,
)
from flask_better_auth.models import metadata, rate_limit_metadata

FIXTURES = Path(__file__).parent / "fixtures"
PEER = json.loads((FIXTURES / "peer-better-auth.json").read_text())
HEAD = revisions()[-1].revision


def reset(engine: Engine) -> None:
    """An empty database: no Better Auth tables and no version tables of any history."""
    rate_limit_metadata.drop_all(engine)
    metadata.drop_all(engine)
    with engine.begin() as connection:
        for table in (VERSION_TABLE, "alembic_version"):
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))


@pytest.fixture
def bare_app(database_url: str) -> Iterator[Flask]:
    """The test app on an empty database (no tables at all)."""
    app = make_app(database_url, create_tables=False)
    with app.app_context():
        reset(engine_of(app))
    yield app
    with app.app_context():
        reset(engine_of(app))
        engine_of(app).dispose()


def engine_of(app: Flask) -> Engine:
    with app.app_context():
        engine: Engine = app.extensions["better_auth"].db.engine
    return engine


def run(app: Flask, *args: str, input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=["better-auth", *args], input=input)


def schema(engine: Engine) -> dict[str, Any]:
    """Everything the inspector sees of the Better Auth tables (not of the version table)."""
    with engine.connect() as connection:
        inspector = inspect(connection)
        return {
            table: {
                "columns": [
                    (column["name"], repr(column["type"]), column["nullable"])
                    for column in inspector.get_columns(table)
                ],
                "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (index["name"], tuple(index["column_names"]), bool(index["unique"]))
                    for index in inspector.get_indexes(table)
                ),
                "uniques": sorted(
                    (str(unique["name"]), tuple(unique["column_names"]))
                    for unique in inspector.get_unique_constraints(table)
                ),
                "foreign keys": sorted(
                    (
                        tuple(fk["constrained_columns"]),
                        fk["referred_table"],
                        tuple(fk["referred_columns"]),
                        fk["options"].get("ondelete"),
                    )
                    for fk in inspector.get_foreign_keys(table)
                ),
            }
            for table in sorted(inspector.get_table_names())
            if table != VERSION_TABLE
        }


def create_all(engine: Engine) -> None:
    """Every table, as ``BetterAuth.create_all`` makes them with database rate limiting."""
    metadata.create_all(engine)
    rate_limit_metadata.create_all(engine)


def version_rows(engine: Engine, table: str = VERSION_TABLE) -> list[str]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text(f"SELECT version_num FROM {table}"))]


def test_migrated_schema_equals_create_all(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    result = run(bare_app, "migrate")
    assert result.exit_code == 0, result.output
    assert f"Applied {revisions()[0].revision}" in result.output
    migrated = schema(engine)
    assert version_rows(engine) == [HEAD]

    reset(engine)
    create_all(engine)
    created = schema(engine)

    assert migrated == created
    assert set(migrated) == set(MODEL_TABLES) == {*metadata.tables, "rateLimit"}
    indexes = {name: migrated[name]["indexes"] for name in migrated}
    assert ("session_userId_idx", ("userId",), False) in indexes["session"]
    assert ("account_userId_idx", ("userId",), False) in indexes["account"]
    assert ("verification_identifier_idx", ("identifier",), False) in indexes["verification"]
    date_type = "DATE()" if engine.dialect.name == "sqlite" else "TIMESTAMP(timezone=True)"
    assert ("expiresAt", date_type, False) in migrated["session"]["columns"]
    assert ("lastRequest", "BIGINT()", False) in migrated["rateLimit"]["columns"]


def test_migrated_database_serves_sign_up(bare_app: Flask) -> None:
    assert run(bare_app, "migrate").exit_code == 0
    sign_up(bare_app.test_client())
    again = run(bare_app, "migrate")
    assert again.exit_code == 0, again.output
    assert "up to date" in again.output


def test_migrate_adopts_tables_made_by_create_all(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    metadata.create_all(engine)
    account = sign_up(bare_app.test_client())

    result = run(bare_app, "migrate")
    assert result.exit_code == 0, result.output
    assert "already exist" in result.output
    assert f"stamped revision {revisions()[0].revision}" in result.output
    assert "Applied 0002_rate_limit" in result.output  # the table create_all left out
    assert version_rows(engine) == [HEAD]
    response = bare_app.test_client().post(
        "/api/auth/sign-in/email",
        json={"email": account.email, "password": account.password},
        headers=ORIGIN,
    )
    assert response.status_code == 200


def test_migrate_adopts_the_js_servers_database(tmp_path: Path) -> None:
    db_file = tmp_path / "peer.sqlite"
    shutil.copy(FIXTURES / "peer-better-auth.sqlite", db_file)
    tables = ("user", "session", "account", "verification")

    def rows() -> dict[str, list[Any]]:
        with sqlite3.connect(db_file) as conn:
            return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY id').fetchall() for t in tables}

    before = rows()
    app = make_app(
        f"sqlite:///{db_file}", create_tables=False, SECRET=PEER["secret"], SCRYPT_N=16384
    )
    try:
        status = run(app, "status")
        assert status.exit_code == 0, status.output
        assert "Current revision: none" in status.output
        assert "migrate would stamp" in status.output

        result = run(app, "migrate")
        assert result.exit_code == 0, result.output
        assert "stamped revision 0001_core_tables" in result.output
        assert "Applied 0002_rate_limit" in result.output
        assert rows() == before and before["user"]
        assert version_rows(engine_of(app)) == [HEAD]
        assert "Up to date." in run(app, "status").output

        response = app.test_client().post(
            "/api/auth/sign-in/email",
            json={"email": PEER["email"], "password": PEER["password"]},
            headers=ORIGIN,
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["user"]["id"] == PEER["userId"]
    finally:
        engine_of(app).dispose()


def test_migrate_adopts_every_table_that_exists(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    create_all(engine)  # the rateLimit table too
    result = run(bare_app, "migrate")
    assert result.exit_code == 0, result.output
    assert f"stamped revision {HEAD} without changing them" in result.output
    assert "Applied" not in result.output
    assert version_rows(engine) == [HEAD]


def test_a_later_table_made_outside_migrations_is_adopted(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001_core_tables")
    rate_limit_metadata.create_all(engine)
    status = run(bare_app, "status")
    assert "Current revision: 0001_core_tables" in status.output
    assert "migrate would stamp 0002_rate_limit" in status.output
    sql = run(bare_app, "migrate", "--sql").output
    assert f"UPDATE {VERSION_TABLE} SET version_num='0002_rate_limit'" in sql
    assert "CREATE TABLE" not in sql
    result = run(bare_app, "migrate")
    assert result.exit_code == 0, result.output
    assert "stamped revision 0002_rate_limit" in result.output
    assert version_rows(engine) == [HEAD]


def test_concurrent_migrations_on_postgres_run_once(bare_app: Flask) -> None:
    """Instances starting together: the second waits on the advisory lock, then finds the
    tables up to date instead of failing on CREATE TABLE."""
    engine = engine_of(bare_app)
    if engine.dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's")
    second: dict[str, Any] = {}

    def migrate_too() -> None:
        with engine.begin() as connection:
            second["before"] = upgrade(connection)

    with engine.begin() as connection:
        first = upgrade(connection)
        thread = threading.Thread(target=migrate_too)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # blocked until the first transaction ends
    thread.join(10)
    assert first.pending and second["before"].up_to_date
    assert version_rows(engine) == [HEAD]


def test_the_apps_own_alembic_history_is_untouched(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        )
        connection.execute(text("INSERT INTO alembic_version VALUES ('apps_own_rev')"))
    result = run(bare_app, "migrate")
    assert result.exit_code == 0, result.output
    assert version_rows(engine, "alembic_version") == ["apps_own_rev"]
    assert version_rows(engine) == [HEAD]


def test_partial_tables_fail_clearly_and_change_nothing(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    metadata.tables["user"].create(engine)
    result = run(bare_app, "migrate")
    assert result.exit_code == 1
    assert "Some Better Auth tables exist (user)" in result.output
    assert inspect(engine).get_table_names() == ["user"]
    assert run(bare_app, "status").exit_code == 1


def test_a_revision_from_a_newer_version_is_refused(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    assert run(bare_app, "migrate").exit_code == 0
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099_future'"))
    result = run(bare_app, "migrate")
    assert result.exit_code == 1
    assert "holds revision '0099_future', which this version" in result.output
    assert version_rows(engine) == ["0099_future"]


def test_a_table_lacking_columns_is_not_adopted(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text('DROP TABLE "verification"'))
        connection.execute(text('CREATE TABLE "verification" (id TEXT PRIMARY KEY)'))
    result = run(bare_app, "migrate")
    assert result.exit_code == 1
    assert 'Table "verification" exists but lacks the columns identifier' in result.output
    assert VERSION_TABLE not in inspect(engine).get_table_names()


def test_migrate_sql_prints_without_running(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    result = run(bare_app, "migrate", "--sql")
    assert result.exit_code == 0, result.output
    assert f"CREATE TABLE {VERSION_TABLE}" in result.output
    assert "CREATE INDEX" in result.output and "session_userId_idx" in result.output
    assert inspect(engine).get_table_names() == []

    create_all(engine)  # existing tables: the SQL only records the revision
    adopted = run(bare_app, "migrate", "--sql")
    assert adopted.exit_code == 0, adopted.output
    assert f"INSERT INTO {VERSION_TABLE}" in adopted.output
    assert "CREATE TABLE user" not in adopted.output.replace('"', "")
    assert VERSION_TABLE not in inspect(engine).get_table_names()

    assert run(bare_app, "migrate").exit_code == 0
    current = run(bare_app, "migrate", "--sql")
    assert current.exit_code == 0 and "up to date" in current.output


def test_status_before_and_after(bare_app: Flask) -> None:
    before = run(bare_app, "status")
    assert before.exit_code == 0, before.output
    assert "Current revision: none" in before.output
    assert "Pending (" in before.output and HEAD in before.output
    assert "Better Auth tables present: none" in before.output
    assert run(bare_app, "migrate").exit_code == 0
    after = run(bare_app, "status")
    assert f"Current revision: {HEAD}" in after.output
    assert "Up to date." in after.output
    assert "Pending" not in after.output


def test_generate_prints_the_ddl_of_the_configured_dialect(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    result = run(bare_app, "generate")
    assert result.exit_code == 0, result.output
    assert f"-- Better Auth tables for {engine.dialect.name}" in result.output
    for name in ("session_userId_idx", "account_userId_idx", "verification_identifier_idx"):
        assert name in result.output
    assert ("TIMESTAMP WITH TIME ZONE" in result.output) == (engine.dialect.name == "postgresql")
    assert inspect(engine).get_table_names() == []

    # The printed SQL, run by hand, makes the same schema as create_all.
    with engine.begin() as connection:
        for statement in result.output.split(";\n"):
            body = "\n".join(
                line for line in statement.splitlines() if not line.startswith("--")
            ).strip()
            if body:
                connection.execute(text(body))
    generated = schema(engine)
    reset(engine)
    metadata.create_all(engine)
    assert generated == schema(engine)


def test_generate_includes_rate_limit_with_database_storage(tmp_path: Path) -> None:
    plain = make_app(f"sqlite:///{tmp_path / 'a.sqlite'}", create_tables=False)
    database = make_app(
        f"sqlite:///{tmp_path / 'b.sqlite'}", create_tables=False, RATE_LIMIT_STORAGE="database"
    )
    try:
        assert 'CREATE TABLE "rateLimit"' not in run(plain, "generate").output
        output = run(database, "generate").output
        assert 'CREATE TABLE "rateLimit"' in output and '"lastRequest" BIGINT NOT NULL' in output
    finally:
        engine_of(plain).dispose()
        engine_of(database).dispose()


def test_downgrade_to_base_removes_everything(bare_app: Flask) -> None:
    engine = engine_of(bare_app)
    assert run(bare_app, "migrate").exit_code == 0
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert inspect(engine).get_table_names() == [VERSION_TABLE]
    assert version_rows(engine) == []


def test_include_name_keeps_an_apps_autogenerate_off_our_tables(bare_app: Flask) -> None:
    """Flask-Migrate users pass ``include_name``: their ``flask db migrate`` drops nothing."""
    engine = engine_of(bare_app)
    assert run(bare_app, "migrate").exit_code == 0
    apps = MetaData()
    Table("todo", apps, Column("id", Text, primary_key=True))
    with engine.connect() as connection:
        plain = compare_metadata(MigrationContext.configure(connection), apps)
        guarded = compare_metadata(
            MigrationContext.configure(connection, opts={"include_name": include_name}), apps
        )
    dropped = {diff[1].name for diff in plain if diff[0] == "remove_table"}
    assert dropped == {*MODEL_TABLES, VERSION_TABLE}  # what happens without it
    assert [(diff[0], diff[1].name) for diff in guarded] == [("add_table", "todo")]

"""A newcomer's first run: tables made at start, missing tables named, setup mistakes in one line.

- ``auth.migrate()`` is ``flask better-auth migrate`` from Python, safe for two processes at once;
- a request (or a command) against a database without the tables says which table is missing
  and which command makes it, instead of "database unavailable";
- a ``ConfigError`` is one ``Error: …`` line from the ``flask`` command, never a traceback, and
  ``flask --help`` still lists ``better-auth``;
- an unknown ``BETTER_AUTH_*`` key is logged with a "did you mean";
- the blueprint's catch-all error handler still lets error trackers see the exception;
- the imports the docs show work.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ORIGIN, SECRET, make_app, sign_up
from flask import Flask, got_request_exception
from flask.cli import FlaskGroup
from sqlalchemy import Engine, inspect, text

from flask_better_auth import BetterAuth, ConfigError, user_signed_up
from flask_better_auth.cli import cli
from flask_better_auth.migrations import VERSION_TABLE, migrate, revisions, upgrade
from flask_better_auth.models import metadata, rate_limit_metadata

ROOT = Path(__file__).resolve().parent.parent
HEAD = revisions()[-1].revision
MISSING_USER = "table user is missing: run `flask better-auth migrate`"


def engine_of(app: Flask) -> Engine:
    with app.app_context():
        engine: Engine = app.extensions["better_auth"].db.engine
    return engine


def drop_everything(engine: Engine) -> None:
    rate_limit_metadata.drop_all(engine)
    metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


@pytest.fixture
def empty_app(database_url: str) -> Iterator[Flask]:
    """The test app on a database without any table (a first run)."""
    app = make_app(database_url, create_tables=False)
    drop_everything(engine_of(app))
    yield app
    drop_everything(engine_of(app))
    engine_of(app).dispose()


# -- auth.migrate(): the CLI's migrations, from Python ------------------------------------------


def test_migrate_at_start_makes_an_empty_database_work(empty_app: Flask) -> None:
    auth: BetterAuth = empty_app.extensions["better_auth"].extension
    with empty_app.app_context():
        first = auth.migrate()
        again = auth.migrate()
    assert [script.revision for script in first.pending][-1] == HEAD
    assert again.up_to_date and again.current == HEAD
    tables = set(inspect(engine_of(empty_app)).get_table_names())
    assert {"user", "session", "account", "verification", "rateLimit", VERSION_TABLE} <= tables
    sign_up(empty_app.test_client())


def test_two_processes_starting_at_once_migrate_once(empty_app: Flask) -> None:
    """The second waits for the first's lock (PostgreSQL's advisory lock, SQLite's write
    lock), then finds everything up to date instead of running the revisions again."""
    engine = engine_of(empty_app)
    second: dict[str, Any] = {}

    def start_too() -> None:
        try:
            second["status"] = migrate(engine)
        except Exception as exc:
            second["error"] = exc

    with engine.begin() as connection:
        first = upgrade(connection)
        thread = threading.Thread(target=start_too)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # blocked until the first transaction ends
    thread.join(10)
    assert "error" not in second, second.get("error")
    assert first.pending and second["status"].up_to_date
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    assert [row[0] for row in rows] == [HEAD]


# -- a missing table says so --------------------------------------------------------------------


def test_a_request_without_tables_logs_the_missing_table(
    empty_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"name": "Ann", "email": "ann@example.com", "password": "correct-horse-1"}
    with caplog.at_level(logging.ERROR, logger="flask_better_auth"):
        response = empty_app.test_client().post(
            "/api/auth/sign-up/email", json=body, headers=ORIGIN
        )
    assert response.status_code == 500
    assert response.content_type == "application/json"
    assert response.get_json() == {
        "message": "Internal Server Error",
        "code": "INTERNAL_SERVER_ERROR",
    }
    assert "Retry-After" not in response.headers  # waiting will not make the table
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.startswith(MISSING_USER) for message in messages), messages
    assert not any("database unavailable" in message for message in messages)
    assert all(record.exc_info is None for record in caplog.records)  # no traceback for it


def test_a_command_without_tables_names_the_missing_table(empty_app: Flask) -> None:
    result = empty_app.test_cli_runner().invoke(
        args=["better-auth", "create-user", "--email", "a@example.com", "--name", "A"],
        input="correct-horse-1\ncorrect-horse-1\n",
    )
    assert result.exit_code == 1
    assert result.output.endswith(f"Error: {MISSING_USER}\n")
    assert "Traceback" not in result.output


# -- configuration mistakes from the flask command ----------------------------------------------


def broken_app(tmp_path: Path) -> Flask:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(
        BETTER_AUTH_SECRET="short",
        BETTER_AUTH_BASE_URL="http://127.0.0.1:5000",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.sqlite'}",
    )
    BetterAuth(app)
    return app


TOO_SHORT = "Error: BETTER_AUTH_SECRET is too short (5 characters): use at least 32.\n"


def flask_command(tmp_path: Path) -> FlaskGroup:
    """The ``flask`` command on an app that fails in init_app, with ``better-auth`` added as
    the ``flask.commands`` entry point adds it to an installed package's ``flask``."""
    group = FlaskGroup(create_app=lambda: broken_app(tmp_path))
    group.add_command(cli)
    return group


def test_a_config_error_is_one_line_from_a_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(flask_command(tmp_path), ["better-auth", "status"])
    assert result.exit_code == 1
    assert result.stderr == TOO_SHORT
    assert result.stdout == ""


def test_help_lists_better_auth_when_the_app_fails_to_load(tmp_path: Path) -> None:
    result = CliRunner().invoke(flask_command(tmp_path), ["--help"])
    assert result.exit_code == 0
    assert re.search(r"^\s+better-auth\s+Better Auth: database migrations", result.stdout, re.M)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == TOO_SHORT.strip()


@pytest.fixture
def entry_point_path(tmp_path: Path) -> Path:
    """A directory whose dist-info declares setup.py's ``entry_points``, as installing the
    package would (the test venv may not have it installed)."""
    call = next(
        node
        for node in ast.walk(ast.parse((ROOT / "setup.py").read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup"
    )
    entry_points = next(
        ast.literal_eval(keyword.value)
        for keyword in call.keywords
        if keyword.arg == "entry_points"
    )
    dist = tmp_path / "site" / "fba_entry_point_probe-0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fba-entry-point-probe\nVersion: 0\n"
    )
    assert "better-auth = flask_better_auth.cli:cli" in entry_points["flask.commands"]
    (dist / "entry_points.txt").write_text(
        "".join(f"[{group}]\n" + "\n".join(lines) + "\n" for group, lines in entry_points.items())
    )
    return dist.parent


def run_flask(
    tmp_path: Path, site: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    app_file = tmp_path / "app.py"
    app_file.write_text(
        textwrap.dedent(
            """
            from flask import Flask
            from flask_better_auth import BetterAuth

            app = Flask(__name__)
            app.config["BETTER_AUTH_BASE_URL"] = "http://127.0.0.1:5000"
            app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
            app.config.from_prefixed_env()
            BetterAuth(app)
            """
        )
    )
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "PYTEST_", "COV_"))
    }
    environ.update(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), NO_COLOR="1", **env)
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", str(app_file), *args],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_flask_command_in_a_shell(tmp_path: Path, entry_point_path: Path) -> None:
    status = run_flask(
        tmp_path, entry_point_path, "better-auth", "status", FLASK_BETTER_AUTH_SECRET="short"
    )
    assert (status.returncode, status.stderr, status.stdout) == (1, TOO_SHORT, "")

    helped = run_flask(tmp_path, entry_point_path, "--help", FLASK_BETTER_AUTH_SECRET="short")
    assert helped.returncode == 0
    assert re.search(r"^\s+better-auth\s", helped.stdout, re.M), helped.stdout
    assert helped.stderr.strip() == TOO_SHORT.strip()

    numeric = run_flask(
        tmp_path, entry_point_path, "better-auth", "status", FLASK_BETTER_AUTH_SECRET="1" * 40
    )
    assert numeric.returncode == 1
    assert numeric.stderr.startswith("Error: BETTER_AUTH_SECRET must be a string, not int")
    assert "1" * 40 not in numeric.stderr  # a secret is never printed

    working = run_flask(
        tmp_path, entry_point_path, "better-auth", "status", FLASK_BETTER_AUTH_SECRET=SECRET
    )
    assert working.returncode == 0, working.stderr
    assert "Current revision: none" in working.stdout


def test_a_numeric_secret_from_the_environment_is_not_a_string(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_BETTER_AUTH_SECRET", "12345678901234567890123456789012345")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.from_prefixed_env()
    with pytest.raises(ConfigError) as raised:
        BetterAuth(app)
    assert str(raised.value).startswith("BETTER_AUTH_SECRET must be a string, not int")
    assert "not set" not in str(raised.value)


def test_a_missing_secret_is_not_set(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^BETTER_AUTH_SECRET is not set"):
        BetterAuth(app)


# -- unknown keys ------------------------------------------------------------------------------


def test_an_unknown_key_is_logged_with_the_closest_known_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A plugin's keys count as known: test_config_reader.py.
    with caplog.at_level(logging.WARNING, logger="flask_better_auth"):
        app = make_app(
            f"sqlite:///{tmp_path / 'a.sqlite'}",
            create_tables=False,
            BETTER_AUTH_COOKIES_SECURE=False,
            BETTER_AUTH_SECERT="x",
            BETTER_AUTH_ZZZ=1,
        )
    engine_of(app).dispose()
    assert sorted(record.getMessage() for record in caplog.records) == [
        "unknown setting BETTER_AUTH_COOKIES_SECURE, ignored:"
        " did you mean BETTER_AUTH_COOKIE_SECURE?",
        "unknown setting BETTER_AUTH_SECERT, ignored: did you mean BETTER_AUTH_SECRET?",
        "unknown setting BETTER_AUTH_ZZZ, ignored",
    ]


def test_known_keys_log_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_better_auth"):
        app = make_app(
            f"sqlite:///{tmp_path / 'a.sqlite'}", create_tables=False, COOKIE_SECURE=False
        )
    engine_of(app).dispose()
    assert caplog.records == []


# -- error trackers ----------------------------------------------------------------------------


def test_an_unexpected_error_reaches_got_request_exception(app: Flask) -> None:
    seen: list[BaseException] = []
    failure = RuntimeError("a receiver failed")

    def tracker(sender: Flask, exception: BaseException, **extra: Any) -> None:
        seen.append(exception)

    def failing_receiver(sender: Flask, **extra: Any) -> None:
        raise failure

    with (
        got_request_exception.connected_to(tracker, app),
        user_signed_up.connected_to(failing_receiver, app),
    ):
        response = app.test_client().post(
            "/api/auth/sign-up/email",
            json={"name": "Ann", "email": "ann@example.com", "password": "correct-horse-1"},
            headers=ORIGIN,
        )
    assert response.status_code == 500
    assert response.get_json() == {
        "message": "Internal Server Error",
        "code": "INTERNAL_SERVER_ERROR",
    }
    assert seen == [failure]


# -- the docs' imports -------------------------------------------------------------------------

IMPORT = re.compile(
    r"^\s*(from flask_better_auth[\w.]* import [\w, ]+|import flask_better_auth\S*)$", re.M
)


def test_every_import_the_docs_show_works() -> None:
    sources = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.rst"))]
    statements = sorted({match for path in sources for match in IMPORT.findall(path.read_text())})
    assert any("signals import email_verified" in line for line in statements)
    for statement in statements:
        exec(compile(statement.strip(), "<docs>", "exec"), {})

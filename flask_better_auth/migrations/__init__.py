"""Alembic migrations of the Better Auth tables, shipped with the package.

``flask better-auth migrate`` runs them; this module is what it calls. The history is kept in a
version table of its own (:data:`VERSION_TABLE`), so an app's own Alembic or Flask-Migrate
history in ``alembic_version`` is never touched. A database whose Better Auth tables already
exist (made by the JavaScript server or by :meth:`~flask_better_auth.BetterAuth.create_all`) is
adopted: the revisions that made those tables are stamped, not run.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine, Inspector, Table, inspect, text

from ..models import metadata, rate_limit_metadata

#: The table holding the Better Auth revision (not ``alembic_version``: that one is the app's).
VERSION_TABLE = "better_auth_alembic_version"

_HERE = Path(__file__).resolve().parent
# Any constant works; it only has to be the same in every process that migrates.
_PG_LOCK_KEY = 0x62657474

#: Every table the revisions create, as the models declare it.
MODEL_TABLES: Mapping[str, Table] = {**metadata.tables, **rate_limit_metadata.tables}


class MigrationError(Exception):
    """The database is in a state the migrations cannot safely handle (the message says why)."""


@dataclass(frozen=True)
class MigrationStatus:
    """Where a database stands against the shipped revisions."""

    #: The revision in :data:`VERSION_TABLE`, ``None`` when the table is missing or empty.
    current: str | None
    #: The newest shipped revision.
    head: str
    #: The revision ``migrate`` records without running anything because its tables (and
    #: those of every revision before it) already exist; ``None`` when there is none.
    adopt: str | None
    #: The revisions ``migrate`` runs, oldest first.
    pending: tuple[Script, ...]
    #: The Better Auth tables that exist (of those the revisions create).
    existing: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        """Nothing to stamp and nothing to run."""
        return self.adopt is None and not self.pending


def alembic_config(
    connection: Connection | None = None,
    *,
    output: TextIO | None = None,
    dialect_name: str | None = None,
) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the shipped revisions.

    :param connection: the connection to migrate (online mode).
    :param output: where offline (``sql=True``) commands write their SQL.
    :param dialect_name: the dialect of that SQL (offline mode).
    """
    config = Config(output_buffer=output, stdout=output or io.StringIO())
    config.set_main_option("script_location", str(_HERE).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s")  # versions/0002_rate_limit.py
    config.attributes["connection"] = connection
    config.attributes["dialect_name"] = dialect_name
    return config


def script_directory() -> ScriptDirectory:
    """The shipped revisions."""
    return ScriptDirectory.from_config(alembic_config())


def revisions() -> list[Script]:
    """Every shipped revision, oldest first (the history is linear)."""
    return list(reversed(list(script_directory().walk_revisions())))


def revision_tables(script: Script) -> tuple[str, ...]:
    """The tables a revision creates (its module's ``tables``)."""
    return tuple(getattr(script.module, "tables", ()))


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in :data:`VERSION_TABLE` (``None`` when there is none)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def status(connection: Connection) -> MigrationStatus:
    """Compare the database with the shipped revisions (reads only).

    :raises MigrationError: some Better Auth tables exist but not all of those one revision
        creates, or an existing table lacks columns the models need.
    """
    scripts = revisions()
    current = current_revision(connection)
    inspector = inspect(connection)
    names = set(inspector.get_table_names())
    ours = [table for script in scripts for table in revision_tables(script)]
    existing = tuple(table for table in ours if table in names)

    ids = [script.revision for script in scripts]
    if current is not None and current not in ids:
        raise MigrationError(
            f"{VERSION_TABLE} holds revision {current!r}, which this version of"
            " flask-better-auth does not ship (was it migrated by a newer version?)."
        )
    start = 0 if current is None else ids.index(current) + 1
    adopt: str | None = None
    for script in scripts[start:]:
        tables = revision_tables(script)
        present = [table for table in tables if table in names]
        if not tables or not present:
            break
        if len(present) < len(tables):
            missing = ", ".join(table for table in tables if table not in names)
            raise MigrationError(
                f"Some Better Auth tables exist ({', '.join(present)}) but not {missing}:"
                f" revision {script.revision} cannot be run or skipped. Create the missing"
                " tables or drop the partial ones, then migrate again."
            )
        for table in tables:
            _check_columns(inspector, table)
        adopt = script.revision
        start += 1
    return MigrationStatus(
        current=current,
        head=ids[-1],
        adopt=adopt,
        pending=tuple(scripts[start:]),
        existing=existing,
    )


def _check_columns(inspector: Inspector, table: str) -> None:
    if table not in MODEL_TABLES:
        return
    have = {column["name"] for column in inspector.get_columns(table)}
    lacking = [column.name for column in MODEL_TABLES[table].columns if column.name not in have]
    if lacking:
        raise MigrationError(
            f'Table "{table}" exists but lacks the columns {", ".join(lacking)}: it is not the'
            " Better Auth table this version expects. Add the columns or rename the table."
        )


def upgrade(connection: Connection) -> MigrationStatus:
    """Bring the database to the newest revision, adopting existing tables (stamp, not create).

    Runs in the caller's transaction: use ``engine.begin()``, or :func:`migrate`. Two processes
    never migrate at once: on PostgreSQL a transaction-scoped advisory lock, on SQLite the
    database's write lock (``BEGIN IMMEDIATE``), makes the second wait and then find the tables
    up to date.

    :return: the status before the upgrade (what was stamped and what ran).
    :raises MigrationError: see :func:`status`.
    """
    _lock(connection)
    before = status(connection)
    config = alembic_config(connection)
    if before.adopt is not None:
        command.stamp(config, before.adopt)
    if before.pending:
        command.upgrade(config, "head")
    return before


def migrate(engine: Engine) -> MigrationStatus:
    """:func:`upgrade` in a transaction of its own: what ``flask better-auth migrate`` runs.

    Idempotent, and safe for several processes starting at once (see :func:`upgrade`).
    :meth:`BetterAuth.migrate() <flask_better_auth.BetterAuth.migrate>` calls it with the
    app's engine.

    :return: the status before the upgrade.
    :raises MigrationError: see :func:`status`.
    """
    with engine.begin() as connection:
        return upgrade(connection)


def _lock(connection: Connection) -> None:
    """Hold the database's migration lock until the transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # pysqlite opens a transaction only before DML, so the CREATE TABLEs would each commit
        # on their own and a second process could run the same revision. BEGIN IMMEDIATE takes
        # the write lock now (the second process waits out its busy timeout for it), and the
        # whole upgrade commits or rolls back as one.
        dbapi = connection.connection.dbapi_connection
        if dbapi is not None and not getattr(dbapi, "in_transaction", True):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def upgrade_sql(connection: Connection, output: TextIO) -> MigrationStatus:
    """Write the SQL that :func:`upgrade` would run on this database, without running it.

    :return: the database's status.
    """
    before = status(connection)
    config = alembic_config(output=output, dialect_name=connection.dialect.name)
    start = before.current
    if before.adopt is not None:
        command.stamp(config, f"{start}:{before.adopt}" if start else before.adopt, sql=True)
        start = before.adopt
    if before.pending:
        command.upgrade(config, f"{start}:head" if start else "head", sql=True)
    return before


def include_name(name: str | None, type_: str, parent_names: Mapping[str, str | None]) -> bool:
    """For an app's own Alembic autogenerate: leave the Better Auth tables alone.

    Without it, ``flask db migrate`` sees ``user``, ``session``… in the database but not in the
    app's metadata and writes ``drop_table`` for them. Use ``Migrate(app, db,
    include_name=include_name)`` (Flask-Migrate) or pass it to ``context.configure``.
    """
    if type_ == "table":
        return name != VERSION_TABLE and name not in MODEL_TABLES
    return True


def include_object(
    object_: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """For an app's own Alembic autogenerate: leave the Better Auth tables alone on both sides.

    ``BetterAuth`` lists its tables in the app's ``db.metadata`` (so that the app's models can
    say ``db.ForeignKey("user.id")``); without this hook ``flask db migrate`` would write
    ``create_table`` for them into the app's history, since ``include_name`` only filters what
    is read from the database. Use ``Migrate(app, db, include_object=include_object)`` (it
    covers the tables in the database too) or pass it to ``context.configure``.
    """
    if type_ == "table":
        return name != VERSION_TABLE and name not in MODEL_TABLES
    return True


__all__ = [
    "MODEL_TABLES",
    "VERSION_TABLE",
    "MigrationError",
    "MigrationStatus",
    "alembic_config",
    "current_revision",
    "include_name",
    "include_object",
    "migrate",
    "revision_tables",
    "revisions",
    "script_directory",
    "status",
    "upgrade",
    "upgrade_sql",
]

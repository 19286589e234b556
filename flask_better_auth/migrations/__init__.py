"""Alembic migrations of the Better Auth tables, shipped with the package.

``flask better-auth migrate`` runs them; this module is what it calls. The history is kept in a
version table of its own (:data:`VERSION_TABLE`), so an app's own Alembic or Flask-Migrate
history in ``alembic_version`` is never touched. A database whose Better Auth tables already
exist (made by the JavaScript server or by :meth:`~flask_better_auth.BetterAuth.create_all`) is
adopted: the revisions that made those tables are stamped, not run.

Each plugin with tables or columns of its own ships its revisions as a :class:`History` of its
own (its directory, its label, its version table ``better_auth_<label>_alembic_version``):
``migrate`` runs the core's history, then those of the app's enabled plugins, so it creates
exactly what they need, and adopts what a JavaScript deployment with the same plugins made.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine, Inspector, Table, inspect, text

from ..models import CORE_COLUMNS, metadata, rate_limit_metadata

#: The table holding the Better Auth revision (not ``alembic_version``: that one is the app's).
VERSION_TABLE = "better_auth_alembic_version"

_HERE = Path(__file__).resolve().parent
# Any constant works; it only has to be the same in every process that migrates.
_PG_LOCK_KEY = 0x62657474

#: Every table the revisions create, as the models declare it.
MODEL_TABLES: Mapping[str, Table] = {**metadata.tables, **rate_limit_metadata.tables}


@dataclass(frozen=True)
class History:
    """One linear history of revisions: the core's, or one plugin's.

    :ivar label: ``"core"`` or the plugin's id.
    :ivar version_table: where the database records its revision.
    :ivar directory: the plugin's versions directory (``None``: the core's shipped ones).
    """

    label: str
    version_table: str
    directory: str | None = None

    @classmethod
    def for_plugin(cls, label: str, directory: str) -> History:
        """A plugin's history, recorded in ``better_auth_<label>_alembic_version``."""
        return cls(label, f"better_auth_{label.replace('-', '_')}_alembic_version", directory)


def plugin_histories(plugins: Any) -> list[History]:
    """The histories of an app's plugins that ship migrations (``state().plugins``)."""
    found = [plugin.migrations for plugin in getattr(plugins, "plugins", ())]
    return [History.for_plugin(m.label, m.directory) for m in found if m is not None]


#: The core's history (``user``, ``session``, ``account``, ``verification``, ``rateLimit``).
CORE = History("core", VERSION_TABLE)


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
    history: History = CORE,
) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the shipped revisions (or a plugin's).

    :param connection: the connection to migrate (online mode).
    :param output: where offline (``sql=True``) commands write their SQL.
    :param dialect_name: the dialect of that SQL (offline mode).
    :param history: whose revisions.
    """
    config = Config(output_buffer=output, stdout=output or io.StringIO())
    config.set_main_option("script_location", str(_HERE).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s")  # versions/0002_rate_limit.py
    config.attributes["connection"] = connection
    config.attributes["dialect_name"] = dialect_name
    config.attributes["version_table"] = history.version_table
    if history.directory is not None:
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", history.directory.replace("%", "%%"))
    return config


def script_directory(history: History = CORE) -> ScriptDirectory:
    """The shipped revisions (or a plugin's)."""
    return ScriptDirectory.from_config(alembic_config(history=history))


def revisions(history: History = CORE) -> list[Script]:
    """Every revision of ``history``, oldest first (each history is linear)."""
    return list(reversed(list(script_directory(history).walk_revisions())))


def revision_tables(script: Script) -> tuple[str, ...]:
    """The tables a revision creates (its module's ``tables``)."""
    return tuple(getattr(script.module, "tables", ()))


def revision_columns(script: Script) -> tuple[str, ...]:
    """The columns a revision adds to existing tables, as ``"table.column"`` (its module's
    ``columns``: a plugin's extra user/session/account fields)."""
    return tuple(getattr(script.module, "columns", ()))


def current_revision(connection: Connection, history: History = CORE) -> str | None:
    """The revision recorded in the history's version table (``None`` when there is none)."""
    opts = {"version_table": history.version_table}
    context = MigrationContext.configure(connection, opts=opts)
    return context.get_current_revision()


def _present_columns(inspector: Inspector, names: set[str], columns: tuple[str, ...]) -> list[str]:
    present = []
    for qualified in columns:
        table, _, column = qualified.partition(".")
        if table in names and column in {c["name"] for c in inspector.get_columns(table)}:
            present.append(qualified)
    return present


def status(connection: Connection, history: History = CORE) -> MigrationStatus:
    """Compare the database with the shipped revisions (reads only).

    :raises MigrationError: some Better Auth tables exist but not all of those one revision
        creates, or an existing table lacks columns the models need.
    """
    scripts = revisions(history)
    current = current_revision(connection, history)
    inspector = inspect(connection)
    names = set(inspector.get_table_names())
    ours = [table for script in scripts for table in revision_tables(script)]
    existing = tuple(table for table in ours if table in names)

    ids = [script.revision for script in scripts]
    if current is not None and current not in ids:
        raise MigrationError(
            f"{history.version_table} holds revision {current!r}, which this version of"
            f" {'flask-better-auth' if history is CORE else history.label} does not ship"
            " (was it migrated by a newer version?)."
        )
    start = 0 if current is None else ids.index(current) + 1
    adopt: str | None = None
    for script in scripts[start:]:
        tables = revision_tables(script) + revision_columns(script)
        present = [table for table in revision_tables(script) if table in names]
        present += _present_columns(inspector, names, revision_columns(script))
        if not tables or not present:
            break
        if len(present) < len(tables):
            missing = ", ".join(table for table in tables if table not in present)
            raise MigrationError(
                f"Some Better Auth tables exist ({', '.join(present)}) but not {missing}:"
                f" revision {script.revision} cannot be run or skipped. Create the missing"
                " tables or drop the partial ones, then migrate again."
            )
        for table in revision_tables(script):
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
    # The core's own columns: a plugin's are its history's business.
    if table not in MODEL_TABLES:
        return
    have = {column["name"] for column in inspector.get_columns(table)}
    expected = CORE_COLUMNS.get(table) or tuple(c.name for c in MODEL_TABLES[table].columns)
    lacking = [name for name in expected if name not in have]
    if lacking:
        raise MigrationError(
            f'Table "{table}" exists but lacks the columns {", ".join(lacking)}: it is not the'
            " Better Auth table this version expects. Add the columns or rename the table."
        )


def upgrade(connection: Connection, history: History = CORE) -> MigrationStatus:
    """Bring the database to the newest revision, adopting existing tables (stamp, not create).

    Runs in the caller's transaction: use ``engine.begin()``, or :func:`migrate`. Two processes
    never migrate at once: on PostgreSQL a transaction-scoped advisory lock, on SQLite the
    database's write lock (``BEGIN IMMEDIATE``), makes the second wait and then find the tables
    up to date.

    :return: the status before the upgrade (what was stamped and what ran).
    :raises MigrationError: see :func:`status`.
    """
    _lock(connection)
    before = status(connection, history)
    config = alembic_config(connection, history=history)
    if before.adopt is not None:
        command.stamp(config, before.adopt)
    if before.pending:
        command.upgrade(config, "head")
    return before


def migrate(engine: Engine, plugins: Sequence[History] = ()) -> MigrationStatus:
    """:func:`upgrade` in a transaction of its own: what ``flask better-auth migrate`` runs.

    Idempotent, and safe for several processes starting at once (see :func:`upgrade`).
    :meth:`BetterAuth.migrate() <flask_better_auth.BetterAuth.migrate>` calls it with the
    app's engine and the histories of its plugins.

    :param plugins: the enabled plugins' histories, upgraded after the core's, in one
        transaction.
    :return: the core's status before the upgrade (see :func:`migrate_all` for every one).
    :raises MigrationError: see :func:`status`.
    """
    return migrate_all(engine, plugins)[0][1]


def migrate_all(
    engine: Engine, plugins: Sequence[History] = ()
) -> list[tuple[History, MigrationStatus]]:
    """:func:`migrate`, returning each history's status before its upgrade (the core first)."""
    with engine.begin() as connection:
        return [(history, upgrade(connection, history)) for history in (CORE, *plugins)]


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


def upgrade_sql(connection: Connection, output: TextIO, history: History = CORE) -> MigrationStatus:
    """Write the SQL that :func:`upgrade` would run on this database, without running it.

    :return: the database's status.
    """
    before = status(connection, history)
    config = alembic_config(output=output, dialect_name=connection.dialect.name, history=history)
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
    "CORE",
    "MODEL_TABLES",
    "VERSION_TABLE",
    "History",
    "MigrationError",
    "MigrationStatus",
    "alembic_config",
    "current_revision",
    "include_name",
    "include_object",
    "migrate",
    "migrate_all",
    "plugin_histories",
    "revision_columns",
    "revision_tables",
    "revisions",
    "script_directory",
    "status",
    "upgrade",
    "upgrade_sql",
]

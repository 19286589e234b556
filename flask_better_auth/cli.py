"""``flask better-auth …``: migrations, schema SQL, users, sessions and cleanup from the shell."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
from flask import current_app, has_app_context
from flask.cli import AppGroup, ScriptInfo
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateIndex, CreateTable, ExecutableDDLElement

from .config import ConfigError
from .crypto import hash_password
from .errors import missing_table
from .migrations import (
    VERSION_TABLE,
    MigrationError,
    migrate_all,
    plugin_histories,
    status,
    upgrade_sql,
)
from .models import User, metadata, rate_limit_metadata, utcnow
from .passwords import js_length
from .schemas import is_email
from .secondary_storage import StorageUnavailable
from .signals import session_revoked
from .state import NotRegistered, app_object, state, storage
from .storage import Conflict, Purgeable, Storage


class BetterAuthGroup(AppGroup):
    """The ``better-auth`` group: a mistake in the setup is one ``Error: …`` line, not a traceback.

    Its commands load the app (``with_appcontext``) when they run, so a :class:`ConfigError`
    from ``init_app``, a missing table or an app without the extension surface here.
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The core's command, else the one an enabled plugin of the app declares."""
        return super().get_command(ctx, cmd_name) or _plugin_commands(ctx).get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugin_commands(ctx)})

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:  # a UsageError: shown with a usage line that misleads here
            raise click.ClickException(str(exc)) from None
        except DBAPIError as exc:
            problem = missing_table(exc)
            if problem is None:
                raise
            raise click.ClickException(problem) from None
        except NotRegistered as exc:
            raise click.ClickException(str(exc)) from None


def _plugin_commands(ctx: click.Context) -> dict[str, click.Command]:
    """The commands of the app's plugins (none when the app cannot be loaded: ``--help``)."""
    if has_app_context():
        app = current_app
    else:
        try:
            app = ctx.ensure_object(ScriptInfo).load_app()
        except Exception:  # the core's commands report it when they run
            return {}
    joined = getattr(app.extensions.get("better_auth"), "plugins", None)
    plugins = joined.plugins if joined is not None else ()
    return {c.name: c for p in plugins for c in p.commands if c.name is not None}


# Also registered as a `flask.commands` entry point (setup.py), so that `flask --help` lists it
# even when the app cannot be loaded; init_app adds it to the app's own commands too.
cli = BetterAuthGroup("better-auth", help="Better Auth: database migrations, users and sessions.")


@contextmanager
def _migration_errors() -> Iterator[None]:
    try:
        yield
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


@cli.command("migrate")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
def migrate_command(sql: bool) -> None:
    """Create or update the Better Auth tables.

    Alembic migrations shipped with the package, recorded in their own version table
    (better_auth_alembic_version). Tables that already exist (made by Better Auth's
    JavaScript server or by create_all) are adopted: their revision is recorded without
    changing them.
    """
    engine = state().db.engine
    plugins = plugin_histories(state().plugins)
    if sql:
        buffer = io.StringIO()
        with _migration_errors(), engine.connect() as connection:
            before = upgrade_sql(connection, buffer)
            for history in plugins:
                if upgrade_sql(connection, buffer, history).up_to_date:
                    buffer.write(f"-- The {history.label} tables are up to date.\n")
        if before.up_to_date:
            click.echo(f"-- The Better Auth tables are up to date (revision {before.head}).")
        click.echo(buffer.getvalue(), nl=False)
        return
    with _migration_errors():
        (_, before), *others = migrate_all(engine, plugins)
    for history, done in others:
        for script in done.pending:
            click.echo(f"Applied {history.label} {script.revision}: {script.doc}")
        if done.adopt is not None:
            click.echo(f"The {history.label} tables already exist: stamped {done.adopt}.")
    if before.adopt is not None:
        click.echo(
            f"Better Auth tables already exist ({', '.join(before.existing)}):"
            f" stamped revision {before.adopt} without changing them."
        )
    for script in before.pending:
        click.echo(f"Applied {script.revision}: {script.doc}")
    if before.up_to_date:
        click.echo(f"The Better Auth tables are up to date (revision {before.head}).")
    else:
        click.echo(f"Database at revision {before.head} (in table {VERSION_TABLE}).")


@cli.command("status")
def status_command() -> None:
    """Show the database's revision and what migrate would do."""
    engine = state().db.engine
    with _migration_errors(), engine.connect() as connection:
        now = status(connection)
    click.echo(f"Database: {engine.url.render_as_string(hide_password=True)}")
    click.echo(f"Current revision: {now.current or 'none'} (table {VERSION_TABLE})")
    click.echo(f"Head revision: {now.head}")
    click.echo(f"Better Auth tables present: {', '.join(now.existing) or 'none'}")
    if now.adopt is not None:
        click.echo(f"migrate would stamp {now.adopt}: its tables already exist.")
    if now.pending:
        click.echo(f"Pending ({len(now.pending)}):")
        for script in now.pending:
            click.echo(f"  {script.revision}: {script.doc}")
    if now.up_to_date:
        click.echo("Up to date.")


def enabled_tables() -> list[Table]:
    """The tables the app's enabled features use, in creation order (``rateLimit`` only with
    ``BETTER_AUTH_RATE_LIMIT_STORAGE = "database"``; ``migrate`` creates every table)."""
    tables = list(metadata.sorted_tables)
    if state().settings.rate_limit.storage == "database":  # as create_all, as Better Auth
        tables += rate_limit_metadata.sorted_tables
    return tables


@cli.command("generate")
def generate_command() -> None:
    """Print the CREATE statements of the tables.

    The tables of the enabled features, in the SQL dialect of the configured database.
    """
    dialect = state().db.engine.dialect
    click.echo(f"-- Better Auth tables for {dialect.name}")
    for table in enabled_tables():
        indexes = sorted(table.indexes, key=lambda index: str(index.name))
        ddl: list[ExecutableDDLElement] = [CreateTable(table), *map(CreateIndex, indexes)]
        for statement in ddl:
            sql = str(statement.compile(dialect=dialect)).strip()
            click.echo("\n".join(line.rstrip() for line in sql.splitlines()) + ";\n")


#: The user field holding roles (Better Auth's admin plugin): ``"admin"``, or a comma-separated
#: list ``"admin,support"``.
ROLE_FIELD = "role"


def _check_role(ctx: click.Context, param: click.Parameter, role: str | None) -> str | None:
    """A role or comma-separated roles, spaces around each dropped (``"admin, support"`` is
    stored ``"admin,support"``, the form Better Auth's admin plugin writes and splits)."""
    if role is None:
        return None
    if not role.isprintable():  # before stripping: a newline is no part of a role either
        raise click.BadParameter("must not contain control characters")
    roles = [part.strip() for part in role.split(",")]
    if not all(roles):
        raise click.BadParameter("must be a role or comma-separated roles, none empty")
    return ",".join(roles)


def _role_attribute(command: str) -> str:
    """The model attribute of the ``role`` user field an enabled plugin adds.

    :raises click.ClickException: no enabled plugin adds one (the core has no roles).
    """
    plugins = state().plugins
    for extra in plugins.user_fields if plugins is not None else ():
        if extra.name == ROLE_FIELD:
            return extra.attribute
    raise click.ClickException(
        f"{command} needs a plugin that adds a role to users"
        ' (the admin plugin: BETTER_AUTH_PLUGINS = ["admin"])'
    )


def _existing_user(store: Storage, email: str) -> User:
    """The user with ``email``, found as sign-in finds it (lower-cased; spaces around dropped).

    :raises click.ClickException: no such user.
    """
    user = store.users.by_email(email.strip())
    if user is None:
        raise click.ClickException(f"No user with the email {email.strip().lower()}.")
    return user


@cli.command("create-user")
@click.option("--email", required=True, help="The user's email (stored lower-cased).")
@click.option("--name", required=True, help="The user's display name.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The password (prompted for, hidden, when not given).",
)
@click.option("--verified", is_flag=True, help="Mark the email as verified.")
@click.option(
    "--role",
    callback=_check_role,
    help="Give the user this role, or comma-separated roles (needs the admin plugin).",
)
def create_user_command(
    email: str, name: str, password: str, verified: bool, role: str | None
) -> None:
    """Create a user who signs in with email and password."""
    conf = state().settings
    email = email.strip().lower()
    if not is_email(email):
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="--email")
    if not name.strip():
        raise click.BadParameter("must not be empty", param_hint="--name")
    length = js_length(password)
    if not conf.password.min_length <= length <= conf.password.max_length:
        raise click.BadParameter(
            f"must be {conf.password.min_length} to {conf.password.max_length} characters",
            param_hint="--password",
        )
    values = {_role_attribute("--role"): role} if role is not None else {}
    store = storage()
    if store.users.by_email(email) is not None:
        raise click.ClickException(f"A user with the email {email} already exists.")
    password_hash = hash_password(password, n=conf.password.scrypt_n)
    try:
        user = store.users.create(name, email, password_hash=password_hash, verified=verified)
    except Conflict:  # created meanwhile
        raise click.ClickException(f"A user with the email {email} already exists.") from None
    if values:
        store.users.update(user, **values)
    store.commit()
    details = f"{', verified' if verified else ''}{f', role {role}' if values else ''}"
    click.echo(f"Created user {email} (id {user.id}{details}).")


@cli.command("set-role")
@click.argument("email")
@click.argument("role", callback=_check_role)
def set_role_command(email: str, role: str) -> None:
    """Give the user with EMAIL the role ROLE (or comma-separated roles: admin,support).

    The way to make the first admin: the admin plugin's ``role`` user field, which an
    enabled plugin must add. Replaces the user's roles.
    """
    attribute = _role_attribute("set-role")
    store = storage()
    user = store.users.update(_existing_user(store, email), **{attribute: role})
    store.commit()
    store.sessions.refresh_user(user)  # the copies in Redis (browsers' cookie caches expire)
    secondary = state().secondary
    if secondary is not None and not secondary.ping():
        # The rewrite waits for Redis in this process, which ends now: say so (a demoted
        # admin's sessions would keep the old role until they expire).
        raise click.ClickException(
            f"Set the role of {user.email} to {role}, but the secondary storage (Redis) is"
            " unavailable: the user's sessions there keep the old role; once it is back, run"
            f" revoke-sessions {user.email}."
        )
    click.echo(f"Set the role of {user.email} to {role}.")


@cli.command("revoke-sessions")
@click.argument("email")
def revoke_sessions_command(email: str) -> None:
    """Delete every session of the user with EMAIL."""
    store = storage()
    user = _existing_user(store, email)
    try:
        count = store.sessions.delete_for_user(user.id)
    except StorageUnavailable:
        raise click.ClickException("The secondary storage (Redis) is unavailable.") from None
    store.commit()
    session_revoked.send(app_object(), user_id=user.id, tokens=None)
    click.echo(f"Revoked {_plural(count, 'session')} of {user.email}.")


def _is_terminal() -> bool:
    return sys.stdout.isatty()


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar's ``update`` on a terminal; elsewhere (logs, cron mail) a no-op."""
    if not (total and _is_terminal()):
        yield lambda steps: None
        return
    with click.progressbar(length=total, label=label) as bar:
        yield bar.update


def _purge_expired(rows: Purgeable, label: str, now: datetime, batch_size: int) -> tuple[int, int]:
    """Delete the rows that expired before ``now``, committing each batch.

    :return: the number of rows deleted and of batches.
    """
    total = rows.count_expired(now)
    deleted = batches = 0
    with _progress(total, label) as advance:
        while True:
            selected, gone = rows.purge_expired(now, batch_size)
            if not selected:
                break
            deleted += gone
            batches += 1
            advance(selected)
    return deleted, batches


@cli.command("cleanup")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Rows deleted (and committed) at a time.",
)
def cleanup_command(batch_size: int) -> None:
    """Delete expired sessions and verifications, in batches."""
    now = utcnow()
    store = storage()
    rows: tuple[tuple[Purgeable, str], ...] = (
        (store.sessions, "session"),
        (store.verifications, "verification"),
    )
    for table, what in rows:
        deleted, batches = _purge_expired(table, f"Expired {what}s", now, batch_size)
        click.echo(
            f"Deleted {_plural(deleted, 'expired ' + what)}"
            f" in {_plural(batches, 'batch', 'batches')}."
        )

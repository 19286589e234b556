"""Alembic environment of the Better Auth tables (run by ``flask better-auth migrate``).

The history lives in its own version table, ``better_auth_alembic_version``, so an app's own
Alembic or Flask-Migrate history (``alembic_version``) is never read or written.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from flask_better_auth.migrations import VERSION_TABLE
from flask_better_auth.models import metadata, rate_limit_metadata

config = context.config
target_metadata = [metadata, rate_limit_metadata]
# The core's history, or a plugin's (its own version table: migrations/__init__.History).
version_table = config.attributes.get("version_table") or VERSION_TABLE


def run_offline() -> None:
    """Write the SQL to the config's output buffer instead of running it."""
    dialect_name = config.attributes.get("dialect_name")
    url = None if dialect_name else config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        dialect_name=dialect_name,
        target_metadata=target_metadata,
        version_table=version_table,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run on the connection the caller passed (``config.attributes["connection"]``), else on
    a new engine made from the ``sqlalchemy.url`` option."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, version_table=version_table
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as own:
            context.configure(
                connection=own, target_metadata=target_metadata, version_table=version_table
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

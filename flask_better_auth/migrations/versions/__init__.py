"""The revisions of the Better Auth tables, oldest first, one file per revision id.

A new one (a plugin's table, say): pick the next id, then from the repository root::

    python -c "from alembic import command; from flask_better_auth.migrations import \\
    alembic_config; command.revision(alembic_config(), 'Add the twoFactor table', \\
    rev_id='0003_two_factor')"

fill in ``upgrade``/``downgrade`` and ``tables`` (what lets ``migrate`` adopt a database that
already has them), and extend ``tests/test_migrations.py``'s comparison with the models.
"""

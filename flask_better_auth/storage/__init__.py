"""Storage: typed protocols for users, accounts, sessions, verification values and a key/value
store with TTL, and their database, Redis and layered implementations.

The app's storage is chosen once in ``init_app`` (:func:`build_storage`) and kept on its state:
``flask_better_auth.state.storage()`` inside an app context. Routes, the CLI, the login helpers
and plugins go through it; none touches ``db.session`` directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .database import Database
from .layered import LayeredStorage
from .protocols import (
    RESET_PASSWORD_PREFIX,
    AccountStore,
    Conflict,
    KeyValueStore,
    Purgeable,
    RecordStore,
    SessionStore,
    Source,
    Storage,
    UserStore,
    VerificationStore,
)

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from ..secondary_storage import SecondaryStorage, SecondaryStorageSettings


def build_storage(
    db: SQLAlchemy, secondary: SecondaryStorage | None, settings: SecondaryStorageSettings
) -> LayeredStorage:
    """The storage of an app: its database, plus Redis when ``secondary`` is given, placed as
    ``BETTER_AUTH_STORE_SESSION_IN_DATABASE`` and ``…_VERIFICATION_STORE_IN_DATABASE`` say."""
    return LayeredStorage(
        Database(db),
        secondary,
        sessions_in_database=settings.sessions_in_database,
        verifications_in_database=settings.verifications_in_database,
    )


__all__ = [
    "RESET_PASSWORD_PREFIX",
    "AccountStore",
    "Conflict",
    "Database",
    "KeyValueStore",
    "LayeredStorage",
    "Purgeable",
    "RecordStore",
    "SessionStore",
    "Source",
    "Storage",
    "UserStore",
    "VerificationStore",
    "build_storage",
]


if TYPE_CHECKING:  # each implementation answers its protocols (mypy checks these bodies)
    from .database import (
        DatabaseKeyValue,
        DatabaseSessions,
        DatabaseUsers,
        DatabaseVerifications,
    )
    from .redis import RedisKeyValue, RedisSessions, RedisVerifications

    def _conforms(
        users: DatabaseUsers,
        sessions: tuple[DatabaseSessions, RedisSessions],
        verifications: tuple[DatabaseVerifications, RedisVerifications],
        kv: tuple[DatabaseKeyValue, RedisKeyValue],
    ) -> tuple[UserStore, list[SessionStore], list[VerificationStore], list[KeyValueStore]]:
        return users, [*sessions], [*verifications], [*kv]

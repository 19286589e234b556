"""What the routes, the CLI and plugins ask of storage: small typed protocols.

Users and accounts live in the database; sessions, verification values and the key/value
store live in the database, in Redis (secondary storage) or in both, as configured. Each
protocol says what a caller may rely on, whatever the implementation:
:mod:`~flask_better_auth.storage.database` (SQLAlchemy over the app's ``db``),
:mod:`~flask_better_auth.storage.redis` (Better Auth's ``secondaryStorage`` key layout) and
:mod:`~flask_better_auth.storage.layered`, which composes the two and alone decides what a
Redis failure means.

Writes join the current database transaction and the caller ends it with
:meth:`Storage.commit` (or :meth:`Storage.rollback`), unless a method says it commits or writes
now (Redis has no transaction: its writes happen at once). ORM objects
(:class:`~flask_better_auth.models.User`, :class:`~flask_better_auth.models.Session`…) flow
through: a user or session read from Redis is a transient copy, not a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Executable, Result

from ..models import Account, Session, User, Verification

T = TypeVar("T")

#: Where a session was read: Redis or the ``session`` table.
Source = Literal["secondary", "database"]

#: Reset tokens are verification values ``reset-password:<token>`` holding the user's id; a new
#: password deletes the user's (:meth:`AccountStore.set_password`).
RESET_PASSWORD_PREFIX = "reset-password:"


class Conflict(Exception):
    """A write broke a unique constraint (an email taken meanwhile, maybe by a concurrent
    request). The transaction was rolled back, with whatever else it held."""


class UserStore(Protocol):
    """The ``user`` table."""

    def get(self, user_id: str) -> User | None:
        """The user with this id."""

    def by_email(self, email: str) -> User | None:
        """The user with this email (compared lower-cased, as stored)."""

    def create(
        self,
        name: str,
        email: str,
        *,
        password_hash: str | None = None,
        image: str | None = None,
        verified: bool = False,
    ) -> User:
        """Add a user (and, with ``password_hash``, its credential account) to the transaction.

        Hash the password before calling: the transaction opens here.

        :raises Conflict: the email is taken, also by a concurrent sign-up that got there first.
        """

    def row(self, user: User) -> User:
        """The database row of ``user``, which may be a cached copy (cookie cache or Redis).

        A row loaded by this request is returned as is (no query).

        :raises ~flask_better_auth.errors.AuthError: ``401 UNAUTHORIZED``: the user is gone.
        """

    def update(self, user: User, **values: Any) -> User:
        """Set these attributes (and ``updated_at``) on the user's row; the row is returned.

        :raises Conflict: a new value is taken (the email).
        """

    def update_if(self, user: User, expected: Mapping[str, Any], **values: Any) -> bool:
        """Set ``values`` (and ``updated_at``) only while the row's attributes equal
        ``expected``, atomically (one conditional write; of two racing, one wins). ``user``
        follows; ``False`` when the row no longer matches.

        :raises Conflict: a new value is taken (the email).
        """

    def delete(self, user_id: str) -> None:
        """Delete the user's row and accounts (the caller deletes their sessions first:
        :meth:`SessionStore.delete_for_user`)."""


class AccountStore(Protocol):
    """The ``account`` table (email + password sign-in is the ``credential`` account)."""

    def credential(self, user_id: str) -> Account | None:
        """The user's email + password account (``providerId="credential"``), if any."""

    def set_password(
        self, user_id: str, password_hash: str, *, account: Account | None = None
    ) -> None:
        """Store a new hash in the credential account, creating it if needed; every reset link
        still out for the user stops working.

        :param account: the credential account when the caller has it already.
        """

    def get(self, account_id: str) -> Account | None:
        """The account row with this id (the row id, not the provider's ``accountId``)."""

    def find(self, provider_id: str, account_id: str) -> Account | None:
        """The account of a provider's user (``providerId`` and the provider's ``accountId``)."""

    def for_user(self, user_id: str) -> list[Account]:
        """The user's accounts, oldest first."""

    def add(self, account: Account) -> None:
        """Add a new account row (an OAuth account) to the transaction."""

    def delete(self, account: Account) -> None:
        """Delete an account row."""


class Purgeable(Protocol):
    """Rows that expire: the ``cleanup`` command deletes them in batches."""

    def count_expired(self, now: datetime) -> int:
        """How many rows expired before ``now``."""

    def purge_expired(self, now: datetime, limit: int) -> tuple[int, int]:
        """Delete (and commit) up to ``limit`` rows expired before ``now``.

        :return: how many were selected and how many deleted (fewer when a request took some
            meanwhile); ``(0, 0)`` when none is left.
        """


class SessionStore(Purgeable, Protocol):
    """Sessions, each with its user."""

    @property
    def source(self) -> Source:
        """Where the source of truth is: the database when it holds sessions, else Redis."""

    def find(
        self, token: str, *, authoritative: bool = False
    ) -> tuple[Session, User, Source] | None:
        """The session of ``token`` with its user and where it was read; expired sessions are
        returned (the caller decides). Without Redis: one indexed query.

        :param authoritative: read the source of truth only (sensitive routes), never a copy.
        :raises ~flask_better_auth.secondary_storage.StorageUnavailable: the only copy is
            unreachable.
        """

    def create(self, session: Session, user: User) -> None:
        """Store a new session (its row joins the transaction; Redis is written now)."""

    def extend(self, session: Session, user: User, stamp: datetime, expires_at: datetime) -> bool:
        """The sliding refresh, committed aside (never the app's pending work): ``expires_at``
        at ``stamp``; ``session`` follows. ``False`` when the session is gone."""

    def discard(self, session: Session) -> None:
        """Delete an expired session, committed aside."""

    def delete_token(self, token: str) -> str | None:
        """Delete the session of ``token`` (sign-out); its user's id, if there was one."""

    def delete_for_user(
        self, user_id: str, *, keep_token: str | None = None, token: str | None = None
    ) -> int:
        """Delete the user's sessions: all (refusing in Redis any it did not list, too), all
        but ``keep_token``, or only ``token`` (if it is the user's). How many were deleted."""

    def list_active(self, user_id: str) -> list[Session]:
        """The user's unexpired sessions, oldest first."""

    def refresh_user(self, user: User) -> None:
        """The user changed (committed): rewrite the copy of it the sessions keep, if any."""


class VerificationStore(Purgeable, Protocol):
    """Short-lived values under an identifier (reset and deletion tokens, spent links…)."""

    def create(self, identifier: str, value: str, expires_at: datetime) -> Verification:
        """Store ``value`` under ``identifier`` until ``expires_at``."""

    def find(self, identifier: str) -> Verification | None:
        """The newest unexpired value under ``identifier``."""

    def consume(self, identifier: str) -> str | None:
        """Take (delete and return) the newest unexpired value: of two concurrent consumers
        exactly one gets it."""

    def delete_matching(self, prefix: str, value: str) -> None:
        """Delete every value under an identifier starting with ``prefix`` that equals
        ``value`` (rare events: a scan in Redis)."""


class KeyValueStore(Protocol):
    """Plugin state that expires: attempt counters, OAuth state, one-time codes.

    Keys are the caller's own (choose a prefix of the plugin's); values are strings (JSON if
    structured). Lives where verification values are authoritative.
    """

    def get(self, key: str) -> str | None:
        """The value, or ``None`` when missing or expired."""

    def set(self, key: str, value: str, ttl: timedelta) -> None:
        """Store ``value`` for ``ttl``, replacing any value (written now)."""

    def take(self, key: str) -> str | None:
        """Get and delete, atomically: of two concurrent takers one gets the value."""

    def delete(self, key: str) -> None:
        """Delete the key (written now)."""

    def increment(self, key: str, ttl: timedelta) -> int:
        """Add one and return the new count; a new key starts at 1 and expires after ``ttl``
        (counting does not extend it: a fixed window)."""


class RecordStore(Protocol):
    """Rows of a plugin's own tables (always in the database), in the request's transaction.

    Plugins declare their models with :attr:`~flask_better_auth.plugins.Plugin.tables` and read
    and write them here, so they too never touch ``db.session``; :meth:`Storage.commit` ends
    the transaction with the rest of the request's writes.
    """

    def add(self, row: Any) -> None:
        """Add a new row (an instance of a mapped model) to the transaction."""

    def get(self, model: type[T], key: Any) -> T | None:
        """The row of ``model`` with this primary key, or ``None``."""

    def delete(self, row: Any) -> None:
        """Delete a row."""

    def scalar(self, statement: Executable) -> Any:
        """The first column of the first row of a statement built on the plugin's tables."""

    def scalars(self, statement: Executable) -> list[Any]:
        """The first column of every row of a statement (``select(Model)…`` gives rows)."""

    def execute(self, statement: Executable) -> Result[Any]:
        """Run a statement (an ``update``/``delete`` on the plugin's tables) in the transaction."""


class Storage(Protocol):
    """Everything at once, as ``state().storage`` holds it for the app."""

    users: UserStore
    accounts: AccountStore
    sessions: SessionStore
    verifications: VerificationStore
    kv: KeyValueStore
    records: RecordStore

    def commit(self) -> None:
        """Commit the transaction without expiring loaded objects (no query to read them)."""

    def rollback(self) -> None:
        """Roll the transaction back."""


__all__ = [
    "RESET_PASSWORD_PREFIX",
    "AccountStore",
    "Conflict",
    "KeyValueStore",
    "Purgeable",
    "RecordStore",
    "SessionStore",
    "Source",
    "Storage",
    "UserStore",
    "VerificationStore",
]

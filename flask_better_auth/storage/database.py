"""The database implementation: SQLAlchemy over the app's Flask-SQLAlchemy ``db``.

Every method works in the request's SQLAlchemy session (the app's own): writes join its
transaction, and :meth:`Database.commit` ends it without expiring loaded objects. The few
writes a request makes for itself (a session refresh, a purge, the key/value store) are
committed aside (:meth:`Database.write_aside`), never with the app's unfinished work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Executable,
    Integer,
    Result,
    Text,
    cast,
    delete,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from ..crypto import generate_id
from ..errors import AuthError
from ..models import Account, Session, User, Verification, utcnow
from .protocols import RESET_PASSWORD_PREFIX, Conflict, Source, VerificationStore

if TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

T = TypeVar("T")
CREDENTIAL = "credential"


class Database:
    """The app's ``db`` and the transaction rules every database store follows."""

    def __init__(self, db: SQLAlchemy) -> None:
        self.db = db

    def session(self) -> OrmSession:
        """The SQLAlchemy session of the current app context (the app's own)."""
        return self.db.session()

    def commit(self) -> None:
        """Commit without expiring loaded objects, so building the response costs no query."""
        session = self.session()
        previous = session.expire_on_commit
        session.expire_on_commit = False
        try:
            session.commit()
        finally:
            session.expire_on_commit = previous

    def rollback(self) -> None:
        """Roll the transaction back."""
        self.session().rollback()

    def aside(self, work: Callable[[OrmSession], T]) -> T:
        """Run our own small write and commit it, never the app's work.

        When the app's view has pending changes in the shared session, the write joins the
        app's own transaction instead and shares its fate (its commit or its rollback). (An app
        that flushed by hand before first touching ``current_user`` leaves nothing pending to
        see: ``login_required`` resolves the session before the view runs.)
        """
        session = self.session()
        busy = bool(session.new or session.dirty or session.deleted)
        result = work(session)
        if not busy:
            self.commit()
        return result

    def write_aside(self, statement: Executable) -> Result[Any]:
        """:meth:`aside` for one statement (its rows are not read after the commit)."""
        options = statement.execution_options(synchronize_session=False)
        return self.aside(lambda session: session.execute(options))

    def conflict_safe(self, work: Callable[[OrmSession], T]) -> T:
        """Run ``work``; a unique violation rolls back and raises :class:`Conflict`."""
        session = self.session()
        try:
            return work(session)
        except IntegrityError:
            session.rollback()
            raise Conflict() from None


class DatabaseUsers:
    """:class:`~flask_better_auth.storage.UserStore` on the ``user`` table."""

    def __init__(self, database: Database, accounts: DatabaseAccounts) -> None:
        self.database = database
        self.accounts = accounts

    def get(self, user_id: str) -> User | None:
        return self.database.session().get(User, user_id)

    def by_email(self, email: str) -> User | None:
        statement = select(User).where(User.email == email.lower())
        return self.database.session().execute(statement).scalar_one_or_none()

    def create(
        self,
        name: str,
        email: str,
        *,
        password_hash: str | None = None,
        image: str | None = None,
        verified: bool = False,
    ) -> User:
        # The user row is flushed first (the account's foreign key points at it): a taken email
        # fails here, also when a concurrent sign-up got there first (PostgreSQL waits for that
        # transaction, then fails).
        now = utcnow()
        user = User(
            id=generate_id(),
            name=name,
            email=email.lower(),
            email_verified=verified,
            image=image,
            created_at=now,
            updated_at=now,
        )

        def add(session: OrmSession) -> None:
            session.add(user)
            session.flush()

        self.database.conflict_safe(add)
        if password_hash is not None:
            self.accounts.add_credential(user.id, password_hash)
        return user

    def row(self, user: User) -> User:
        if inspect(user).persistent:
            return user
        row = self.get(user.id)
        if row is None:
            raise AuthError(401, "UNAUTHORIZED")
        return row

    def update(self, user: User, **values: Any) -> User:
        row = self.row(user)
        for key, value in values.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        self.database.conflict_safe(lambda session: session.flush())
        return row

    def update_if(self, user: User, expected: Mapping[str, Any], **values: Any) -> bool:
        values["updated_at"] = utcnow()
        conditions = [getattr(User, key) == value for key, value in expected.items()]
        statement = (
            update(User)
            .where(User.id == user.id, *conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        result = self.database.conflict_safe(lambda session: session.execute(statement))
        if not getattr(result, "rowcount", 0):
            return False
        for key, value in values.items():
            set_committed_value(user, key, value)
        return True

    def delete(self, user_id: str) -> None:
        session = self.database.session()
        session.execute(delete(Account).where(Account.user_id == user_id))
        session.execute(
            delete(User).where(User.id == user_id).execution_options(synchronize_session=False)
        )
        loaded = session.identity_map.get(identity_key(User, user_id))
        if loaded is not None:  # what get() would answer from memory: the row is gone
            session.expunge(loaded)


class DatabaseAccounts:
    """:class:`~flask_better_auth.storage.AccountStore` on the ``account`` table.

    :param verifications: where the user's reset tokens live (a new password deletes them).
    """

    def __init__(self, database: Database, verifications: VerificationStore) -> None:
        self.database = database
        self.verifications = verifications

    def credential(self, user_id: str) -> Account | None:
        statement = select(Account).where(
            Account.user_id == user_id,
            Account.provider_id == CREDENTIAL,
            Account.account_id == user_id,
        )
        return self.database.session().execute(statement).scalars().first()

    def set_password(
        self, user_id: str, password_hash: str, *, account: Account | None = None
    ) -> None:
        self.verifications.delete_matching(RESET_PASSWORD_PREFIX, user_id)
        if account is None:
            account = self.credential(user_id)
        if account is None:
            self.add_credential(user_id, password_hash)
        else:
            account.password = password_hash
            account.updated_at = utcnow()

    def get(self, account_id: str) -> Account | None:
        return self.database.session().get(Account, account_id)

    def find(self, provider_id: str, account_id: str) -> Account | None:
        statement = select(Account).where(
            Account.provider_id == provider_id, Account.account_id == account_id
        )
        return self.database.session().execute(statement).scalars().first()

    def for_user(self, user_id: str) -> list[Account]:
        statement = select(Account).where(Account.user_id == user_id).order_by(Account.created_at)
        return list(self.database.session().execute(statement).scalars())

    def add(self, account: Account) -> None:
        self.database.session().add(account)

    def delete(self, account: Account) -> None:
        self.database.session().delete(account)

    def add_credential(self, user_id: str, password_hash: str) -> None:
        """Add the credential account of a user who has none (a new user: no lookup)."""
        now = utcnow()
        self.database.session().add(
            Account(
                id=generate_id(),
                account_id=user_id,
                provider_id=CREDENTIAL,
                user_id=user_id,
                password=password_hash,
                created_at=now,
                updated_at=now,
            )
        )


def follow_extension(session: Session, stamp: datetime, expires_at: datetime) -> None:
    """Set a session's new expiry on the object as if loaded so (no write, no expiry)."""
    set_committed_value(session, "expires_at", expires_at)
    set_committed_value(session, "updated_at", stamp)


class _Expiring:
    """``count_expired`` / ``purge_expired`` of a table with ``id`` and ``expiresAt``."""

    model: type[Session] | type[Verification]
    database: Database

    def count_expired(self, now: datetime) -> int:
        statement = select(func.count()).select_from(self.model)
        session = self.database.session()
        total = int(session.execute(statement.where(self.model.expires_at < now)).scalar_one())
        self.database.commit()
        return total

    def purge_expired(self, now: datetime, limit: int) -> tuple[int, int]:
        model, session = self.model, self.database.session()
        expired = select(model.id).where(model.expires_at < now).limit(limit)
        ids = list(session.execute(expired).scalars())
        if not ids:
            return 0, 0
        result = session.execute(
            delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)
        )
        self.database.commit()
        # rowcount, not len(ids): a request may have taken a row in between
        return len(ids), int(getattr(result, "rowcount", len(ids)))


class DatabaseSessions(_Expiring):
    """:class:`~flask_better_auth.storage.SessionStore` on the ``session`` table."""

    model = Session

    def __init__(self, database: Database) -> None:
        self.database = database

    @property
    def source(self) -> Source:
        return "database"

    def find(
        self, token: str, *, authoritative: bool = False
    ) -> tuple[Session, User, Source] | None:
        session = self.database.session()
        with session.no_autoflush:  # the app's pending changes stay the app's
            row = session.execute(
                select(Session, User)
                .join(User, User.id == Session.user_id)
                .where(Session.token == token)
            ).first()
        return None if row is None else (row[0], row[1], "database")

    def create(self, session: Session, user: User) -> None:
        self.database.session().add(session)

    def write_extension(self, session: Session, stamp: datetime, expires_at: datetime) -> bool:
        """Write the new expiry aside; ``False`` when the row is gone (``session`` unchanged)."""
        result = self.database.write_aside(
            update(Session)
            .where(Session.id == session.id)
            .values(expires_at=expires_at, updated_at=stamp)
        )
        return getattr(result, "rowcount", 1) != 0

    def extend(self, session: Session, user: User, stamp: datetime, expires_at: datetime) -> bool:
        extended = self.write_extension(session, stamp, expires_at)
        if extended:
            follow_extension(session, stamp, expires_at)
        return extended

    def discard(self, session: Session) -> None:
        self.database.write_aside(delete(Session).where(Session.id == session.id))

    def delete_token(self, token: str) -> str | None:
        result = self.database.session().execute(
            delete(Session).where(Session.token == token).returning(Session.user_id)
        )
        user_ids = [row[0] for row in result]
        return user_ids[0] if user_ids else None

    def _deletion(self, user_id: str, keep_token: str | None, token: str | None) -> Any:
        statement = delete(Session).where(Session.user_id == user_id)
        if keep_token is not None:
            statement = statement.where(Session.token != keep_token)
        if token is not None:
            statement = statement.where(Session.token == token)
        return statement.execution_options(synchronize_session=False)

    def delete_for_user(
        self, user_id: str, *, keep_token: str | None = None, token: str | None = None
    ) -> int:
        result = self.database.session().execute(self._deletion(user_id, keep_token, token))
        return int(getattr(result, "rowcount", 0) or 0)

    def delete_for_user_tokens(
        self, user_id: str, *, keep_token: str | None = None, token: str | None = None
    ) -> list[str]:
        """:meth:`delete_for_user`, answering the deleted tokens (for Redis to delete too)."""
        statement = self._deletion(user_id, keep_token, token).returning(Session.token)
        return [row[0] for row in self.database.session().execute(statement)]

    def tokens_of(self, user_id: str) -> list[str]:
        """The tokens of every session row of the user."""
        statement = select(Session.token).where(Session.user_id == user_id)
        return [row[0] for row in self.database.session().execute(statement)]

    def list_active(self, user_id: str) -> list[Session]:
        statement = (
            select(Session)
            .where(Session.user_id == user_id, Session.expires_at > utcnow())
            .order_by(Session.created_at, Session.id)
        )
        return list(self.database.session().execute(statement).scalars())

    def refresh_user(self, user: User) -> None:
        """Nothing to do: a session row joins its user's row when read."""


def new_verification(identifier: str, value: str, expires_at: datetime) -> Verification:
    """A new verification row (not added anywhere yet)."""
    now = utcnow()
    return Verification(
        id=generate_id(),
        identifier=identifier,
        value=value,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )


def _newest(identifier: str) -> Any:
    return (
        select(Verification.id)
        .where(Verification.identifier == identifier, Verification.expires_at > utcnow())
        .order_by(Verification.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def _take(session: OrmSession, identifier: str) -> str | None:
    """Delete the newest unexpired row of ``identifier`` and answer its value: one
    ``DELETE … RETURNING``, so of two concurrent takers the second finds the row gone."""
    result = session.execute(
        delete(Verification)
        .where(Verification.id == _newest(identifier))
        .returning(Verification.value)
        .execution_options(synchronize_session=False)
    )
    row = result.first()
    return None if row is None else str(row[0])


class DatabaseVerifications(_Expiring):
    """:class:`~flask_better_auth.storage.VerificationStore` on the ``verification`` table."""

    model = Verification

    def __init__(self, database: Database) -> None:
        self.database = database

    def add(self, row: Verification) -> None:
        """Add a row made by :func:`new_verification` to the transaction."""
        self.database.session().add(row)

    def create(self, identifier: str, value: str, expires_at: datetime) -> Verification:
        row = new_verification(identifier, value, expires_at)
        self.add(row)
        return row

    def find(self, identifier: str) -> Verification | None:
        statement = (
            select(Verification)
            .where(Verification.identifier == identifier, Verification.expires_at > utcnow())
            .order_by(Verification.created_at.desc())
            .limit(1)
        )
        return self.database.session().execute(statement).scalar_one_or_none()

    def consume(self, identifier: str) -> str | None:
        return _take(self.database.session(), identifier)

    def delete_matching(self, prefix: str, value: str) -> None:
        self.database.session().execute(
            delete(Verification)
            .where(
                Verification.identifier.startswith(prefix, autoescape=True),
                Verification.value == value,
            )
            .execution_options(synchronize_session=False)
        )


class DatabaseKeyValue:
    """:class:`~flask_better_auth.storage.KeyValueStore` on the ``verification`` table (a key
    is an ``identifier``, as Better Auth keeps plugin state).

    Every write is committed at once (as :meth:`Database.aside` commits): a counter must count
    even when the request then fails. Two concurrent *first* increments of a key may both
    answer 1 (Redis counts exactly); later ones are exact.
    """

    def __init__(self, database: Database) -> None:
        self.database = database

    def get(self, key: str) -> str | None:
        row = DatabaseVerifications(self.database).find(key)
        return None if row is None else row.value

    def set(self, key: str, value: str, ttl: timedelta) -> None:
        def work(session: OrmSession) -> None:
            session.execute(delete(Verification).where(Verification.identifier == key))
            session.add(new_verification(key, value, utcnow() + ttl))
            session.flush()

        self.database.aside(work)

    def take(self, key: str) -> str | None:
        return self.database.aside(lambda session: _take(session, key))

    def delete(self, key: str) -> None:
        self.database.write_aside(delete(Verification).where(Verification.identifier == key))

    def increment(self, key: str, ttl: timedelta) -> int:
        def work(session: OrmSession) -> int:
            now = utcnow()
            counted = session.execute(
                update(Verification)
                .where(Verification.identifier == key, Verification.expires_at > now)
                .values(value=cast(cast(Verification.value, Integer) + 1, Text), updated_at=now)
                .returning(Verification.value)
                .execution_options(synchronize_session=False)
            ).all()
            if counted:
                return max(int(row[0]) for row in counted)
            session.execute(
                delete(Verification)
                .where(Verification.identifier == key)
                .execution_options(synchronize_session=False)
            )
            session.add(new_verification(key, "1", now + ttl))
            session.flush()
            return 1

        return self.database.aside(work)


class DatabaseRecords:
    """:class:`~flask_better_auth.storage.RecordStore` over the request's SQLAlchemy session."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def add(self, row: Any) -> None:
        self._database.session().add(row)

    def get(self, model: type[T], key: Any) -> T | None:
        return self._database.session().get(model, key)

    def delete(self, row: Any) -> None:
        self._database.session().delete(row)

    def scalar(self, statement: Executable) -> Any:
        return self._database.session().execute(statement).scalar()

    def scalars(self, statement: Executable) -> list[Any]:
        return list(self._database.session().execute(statement).scalars())

    def execute(self, statement: Executable) -> Result[Any]:
        return self._database.session().execute(statement)


__all__ = [
    "DatabaseRecords",
    "Database",
    "DatabaseAccounts",
    "DatabaseKeyValue",
    "DatabaseSessions",
    "DatabaseUsers",
    "DatabaseVerifications",
    "follow_extension",
    "new_verification",
]

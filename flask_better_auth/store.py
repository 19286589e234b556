"""Storage helpers the routes call: lookups and writes over the app's SQLAlchemy session.

With secondary storage (Redis) configured, sessions and verification values also live there
(:mod:`~flask_better_auth.secondary_storage`); these functions decide which store answers and
what a Redis failure means: where the database holds the data too it answers instead (fail
open, logged), where Redis is the only copy the request fails with ``503`` (fail closed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Executable, Result, delete, inspect, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value

from .crypto import generate_id
from .errors import AuthError
from .models import Account, Session, User, Verification, iso, parse_datetime, utcnow
from .secondary_storage import SecondaryStorage, StorageUnavailable, epoch_ms
from .state import settings, state

CREDENTIAL = "credential"
#: Reset tokens are verification values ``reset-password:<token>`` holding the user's id.
RESET_PASSWORD_PREFIX = "reset-password:"


def db_session() -> OrmSession:
    """The SQLAlchemy session of the app's ``db`` (the one given to ``BetterAuth`` or ours)."""
    return state().db.session()


def commit() -> None:
    """Commit without expiring loaded objects, so building the response costs no new query."""
    session = db_session()
    previous = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = previous


def write_aside(statement: Executable) -> Result[Any]:
    """Run and commit our own small write (a session refresh or purge), never the app's work.

    When the app's view has pending changes in the shared session, the write joins the app's
    own transaction instead and shares its fate (its commit or its rollback). (An app that
    flushed by hand before first touching ``current_user`` leaves nothing pending to see:
    ``login_required`` resolves the session before the view runs.)
    """
    session = db_session()
    busy = bool(session.new or session.dirty or session.deleted)
    result = session.execute(statement.execution_options(synchronize_session=False))
    if not busy:
        commit()
    return result


def user_by_email(email: str) -> User | None:
    """The user with this email (compared lower-cased, as stored)."""
    return (
        db_session().execute(select(User).where(User.email == email.lower())).scalar_one_or_none()
    )


def add_user_with_password(
    name: str, email: str, password_hash: str, *, image: str | None = None, verified: bool = False
) -> User:
    """Add a user and its credential account to the transaction (the caller commits).

    The user row is flushed first (the account's foreign key points at it): a taken email
    raises :class:`~sqlalchemy.exc.IntegrityError` here, also when a concurrent sign-up got
    there first (PostgreSQL waits for that transaction, then raises).
    """
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
    db = db_session()
    db.add(user)
    db.flush()
    set_password(user.id, password_hash, new_user=True)
    return user


def set_password(
    user_id: str, password_hash: str, *, account: Account | None = None, new_user: bool = False
) -> None:
    """Store a new hash in the user's credential account, creating the account if needed.

    A new password ends every reset link still out for the user (the caller commits).

    :param account: the credential account when the caller has it already (else looked up).
    :param new_user: the user was just added and has no account yet (no lookup).
    """
    if not new_user:
        delete_verifications(RESET_PASSWORD_PREFIX, user_id)
    if account is None and not new_user:
        account = credential_account(user_id)
    now = utcnow()
    if account is None:
        db_session().add(
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
    else:
        account.password = password_hash
        account.updated_at = now


def credential_account(user_id: str) -> Account | None:
    """The user's email + password account (``providerId="credential"``), if any."""
    return (
        db_session()
        .execute(
            select(Account).where(
                Account.user_id == user_id,
                Account.provider_id == CREDENTIAL,
                Account.account_id == user_id,
            )
        )
        .scalars()
        .first()
    )


def secondary() -> SecondaryStorage | None:
    """The app's secondary storage (Redis), or ``None`` when not configured."""
    return state().secondary


def _sessions_in_database() -> bool:
    return settings().secondary_storage.sessions_in_database


def _verifications_in_database() -> bool:
    return settings().secondary_storage.verifications_in_database


def find_session(
    token: str, *, authoritative: bool = False
) -> tuple[Session, User, Literal["secondary", "database"]] | None:
    """The session of ``token`` with its user and where it was read (``"secondary"`` or
    ``"database"``), or ``None``. Expired sessions are returned: the caller decides.

    Redis answers first; the database when Redis misses, fails or holds a revoked entry
    (if sessions are stored there). Without secondary storage: one indexed query.

    :param authoritative: read the source of truth: the database when sessions are stored
        there (sensitive routes), so an entry Redis kept by mistake cannot authorise them.
    :raises StorageUnavailable: Redis failed and holds the only copy of sessions.
    """
    storage = secondary()
    in_database = _sessions_in_database()
    if storage is not None and not (authoritative and in_database):
        try:
            entry = storage.get_session(token)
        except StorageUnavailable:
            if not in_database:
                raise
            entry = None
        if entry is not None:
            try:
                return Session.from_json(entry[0]), User.from_json(entry[1]), "secondary"
            except (KeyError, TypeError, ValueError):
                entry = None  # unreadable: as if missing
        if not in_database:
            return None
    db = db_session()
    with db.no_autoflush:  # the app's pending changes stay the app's
        row = db.execute(
            select(Session, User)
            .join(User, User.id == Session.user_id)
            .where(Session.token == token)
        ).first()
    return None if row is None else (row[0], row[1], "database")


def save_session(session: Session, user: User) -> None:
    """Store a new session: a row (the caller commits) and/or a Redis entry (written now)."""
    in_database = _sessions_in_database()
    if in_database:
        db_session().add(session)
    storage = secondary()
    if storage is None:
        return
    try:
        storage.set_session(session.to_json(), user.to_json(), epoch_ms(session.expires_at))
    except StorageUnavailable:
        if not in_database:
            raise
        storage.forget_later(storage.session_keys([session.token]))


def extend_session(session: Session, user: User, stamp: datetime, expires_at: datetime) -> bool:
    """Extend a session to ``expires_at`` at ``stamp`` (the sliding refresh); ``False`` if gone."""
    in_database = _sessions_in_database()
    extended = True
    if in_database:
        result = write_aside(
            update(Session)
            .where(Session.id == session.id)
            .values(expires_at=expires_at, updated_at=stamp)
        )
        extended = getattr(result, "rowcount", 1) != 0
    storage = secondary()
    if storage is not None and extended:
        data = {**session.to_json(), "expiresAt": iso(expires_at), "updatedAt": iso(stamp)}
        try:
            stored = storage.update_session(data, user.to_json(), epoch_ms(expires_at))
        except StorageUnavailable:
            if not in_database:
                raise
            storage.forget_later(storage.session_keys([session.token]))
        else:
            extended = extended if in_database else stored
    if extended:
        set_committed_value(session, "expires_at", expires_at)
        set_committed_value(session, "updated_at", stamp)
    return extended


def drop_session(session: Session) -> None:
    """Delete an expired session (committed aside, never with the app's work)."""
    if _sessions_in_database():
        write_aside(delete(Session).where(Session.id == session.id))
    storage = secondary()
    if storage is not None:
        try:
            storage.delete_session(session.token)
        except StorageUnavailable:  # it expires in Redis by itself
            storage.forget_later(storage.session_keys([session.token]))


def delete_session_token(token: str) -> str | None:
    """Delete the session of ``token`` (sign-out; the caller commits); its user id, if any."""
    in_database = _sessions_in_database()
    user_id = None
    if in_database:
        result = db_session().execute(
            delete(Session).where(Session.token == token).returning(Session.user_id)
        )
        user_ids = [row[0] for row in result]
        user_id = user_ids[0] if user_ids else None
    storage = secondary()
    if storage is not None:
        try:
            owner = storage.delete_session(token)
        except StorageUnavailable:
            if not in_database:
                raise
            storage.forget_later(storage.session_keys([token]))
        else:
            user_id = user_id if in_database else owner
    return user_id


def active_sessions(user_id: str) -> list[Session]:
    """The user's sessions that have not expired, oldest first."""
    storage = secondary()
    if storage is not None and not _sessions_in_database():
        sessions = [Session.from_json(data) for data in storage.list_sessions(user_id)]
        return sorted(sessions, key=lambda s: (s.created_at, s.id))
    return list(
        db_session()
        .execute(
            select(Session)
            .where(Session.user_id == user_id, Session.expires_at > utcnow())
            .order_by(Session.created_at, Session.id)
        )
        .scalars()
    )


def delete_sessions(
    user_id: str, *, keep_token: str | None = None, token: str | None = None
) -> int:
    """Delete the user's sessions (all, all but ``keep_token``, or only ``token``).

    Deleting all of them also sets Redis's ``revoked-sessions-before`` marker.
    """
    storage = secondary()
    in_database = _sessions_in_database()
    count = 0
    tokens: list[str] = []
    if in_database:
        statement = delete(Session).where(Session.user_id == user_id)
        if keep_token is not None:
            statement = statement.where(Session.token != keep_token)
        if token is not None:
            statement = statement.where(Session.token == token)
        statement = statement.execution_options(synchronize_session=False)
        if storage is None:
            result = db_session().execute(statement)
            return int(getattr(result, "rowcount", 0) or 0)
        tokens = [row[0] for row in db_session().execute(statement.returning(Session.token))]
        count = len(tokens)
    if storage is None:
        return count
    try:
        if token is not None:
            deleted = int(storage.delete_session(token, owner=user_id) is not None)
        else:
            deleted = storage.delete_user_sessions(
                user_id, tokens=tokens, keep=keep_token, revoke_all=keep_token is None
            )
    except StorageUnavailable:
        if not in_database:
            raise
        storage.forget_later(storage.session_keys(tokens))
        return count
    return count if in_database else deleted


def user_changed(user: User) -> None:
    """Rewrite the cached user in every Redis session entry of theirs (after a user update).

    When Redis fails: with sessions in the database the entries are deleted once Redis is
    back (reads then go to the database); else the rewrite itself is retried then.
    """
    storage = secondary()
    if storage is None:
        return
    data = user.to_json()
    try:
        storage.rewrite_user(data)
    except StorageUnavailable:
        if _sessions_in_database():
            tokens = db_session().execute(select(Session.token).where(Session.user_id == user.id))
            storage.forget_later(storage.session_keys(row[0] for row in tokens))
        else:
            storage.rewrite_user_later(data)


def user_row(user: User) -> User:
    """The database row of a user that may come from a cache (cookie cache or Redis).

    Costs a query only for a cached user: a row loaded by this request is returned as is.
    """
    if inspect(user).persistent:
        return user
    row = db_session().get(User, user.id)
    if row is None:
        raise AuthError(401, "UNAUTHORIZED")
    return row


def _verification_json(row: Verification) -> dict[str, Any]:
    return {
        "id": row.id,
        "identifier": row.identifier,
        "value": row.value,
        "expiresAt": iso(row.expires_at),
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
    }


def _unexpired(data: dict[str, Any] | None) -> Verification | None:
    """A verification row read from Redis, or ``None`` when absent, unreadable or expired."""
    if data is None:
        return None
    try:
        row = Verification(
            id=str(data.get("id", "")),
            identifier=str(data["identifier"]),
            value=str(data["value"]),
            expires_at=parse_datetime(data["expiresAt"]),
            created_at=parse_datetime(data.get("createdAt", data["expiresAt"])),
            updated_at=parse_datetime(data.get("updatedAt", data["expiresAt"])),
        )
    except (KeyError, TypeError, ValueError):
        return None
    return row if row.expires_at > datetime.now(UTC) else None


def create_verification(identifier: str, value: str, expires_at: datetime) -> Verification:
    """Store a short-lived value under ``identifier`` (the caller commits)."""
    now = utcnow()
    row = Verification(
        id=generate_id(),
        identifier=identifier,
        value=value,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )
    in_database = _verifications_in_database()
    if in_database:
        db_session().add(row)
    storage = secondary()
    if storage is not None:
        try:
            storage.set_verification(_verification_json(row), epoch_ms(expires_at))
        except StorageUnavailable:
            if not in_database:
                raise
    return row


def find_verification(identifier: str) -> Verification | None:
    """The newest unexpired value stored under ``identifier``."""
    storage = secondary()
    in_database = _verifications_in_database()
    if storage is not None:
        try:
            found = _unexpired(storage.get_verification(identifier))
        except StorageUnavailable:
            if not in_database:
                raise
            found = None
        if found is not None or not in_database:
            return found
    return (
        db_session()
        .execute(
            select(Verification)
            .where(Verification.identifier == identifier, Verification.expires_at > utcnow())
            .order_by(Verification.created_at.desc())
            .limit(1)
        )
        .scalar_one_or_none()
    )


def delete_verifications(prefix: str, value: str) -> None:
    """Delete every verification value under ``prefix…`` holding ``value`` (the caller commits
    the database part; Redis is written now).

    With the database holding verifications too, a Redis failure is only logged: what Redis
    kept no longer consumes (:func:`consume_verification` takes the row from the database).
    """
    in_database = _verifications_in_database()
    if in_database:
        db_session().execute(
            delete(Verification)
            .where(
                Verification.identifier.startswith(prefix, autoescape=True),
                Verification.value == value,
            )
            .execution_options(synchronize_session=False)
        )
    storage = secondary()
    if storage is not None:
        try:
            storage.delete_verifications(prefix, value)
        except StorageUnavailable:
            if not in_database:
                raise


def consume_verification(identifier: str) -> str | None:
    """Atomically take (delete and return) the newest unexpired value of ``identifier``.

    Of two concurrent consumers exactly one gets the value: the ``DELETE … RETURNING`` of the
    second finds the row gone (in Redis alone: ``GETDEL``).
    """
    storage = secondary()
    if storage is not None and not _verifications_in_database():
        row = _unexpired(storage.take_verification(identifier))
        return None if row is None else row.value
    value = _consume_from_database(identifier)
    if storage is not None:
        try:
            storage.delete_verification(identifier)
        except StorageUnavailable:
            storage.forget_later([storage.verification_key(identifier)])
    return value


def _consume_from_database(identifier: str) -> str | None:
    newest = (
        select(Verification.id)
        .where(Verification.identifier == identifier, Verification.expires_at > utcnow())
        .order_by(Verification.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    result = db_session().execute(
        delete(Verification)
        .where(Verification.id == newest)
        .returning(Verification.value)
        .execution_options(synchronize_session=False)
    )
    row = result.first()
    return None if row is None else str(row[0])

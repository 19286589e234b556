"""Storage helpers the routes call: lookups and writes over the app's SQLAlchemy session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Result, delete, select
from sqlalchemy.orm import Session as OrmSession

from .crypto import generate_id
from .models import Account, Session, User, Verification, utcnow
from .state import state

CREDENTIAL = "credential"


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


def active_sessions(user_id: str) -> list[Session]:
    """The user's sessions that have not expired, oldest first."""
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
    """Delete the user's sessions (all, all but ``keep_token``, or only ``token``)."""
    statement = delete(Session).where(Session.user_id == user_id)
    if keep_token is not None:
        statement = statement.where(Session.token != keep_token)
    if token is not None:
        statement = statement.where(Session.token == token)
    result = db_session().execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


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
    db_session().add(row)
    return row


def find_verification(identifier: str) -> Verification | None:
    """The newest unexpired value stored under ``identifier``."""
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


def consume_verification(identifier: str) -> str | None:
    """Atomically take (delete and return) the newest unexpired value of ``identifier``.

    Of two concurrent consumers exactly one gets the value: the ``DELETE … RETURNING`` of the
    second finds the row gone.
    """
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

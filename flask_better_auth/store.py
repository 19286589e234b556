"""Storage helpers the routes call: lookups and writes over the app's SQLAlchemy session."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session as OrmSession

from .models import Account, Session, User, utcnow
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

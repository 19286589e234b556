"""The storage an app uses: the database, Redis, or both, and what a Redis failure means.

With ``BETTER_AUTH_SECONDARY_STORAGE_URL`` set, sessions and verification values live in Redis,
and also in the database while ``BETTER_AUTH_STORE_SESSION_IN_DATABASE`` /
``BETTER_AUTH_VERIFICATION_STORE_IN_DATABASE`` say so. This module alone decides what a Redis
failure (:class:`~flask_better_auth.secondary_storage.StorageUnavailable`) means:

* **fail open** where the database holds the data too: the database answers, Redis entries a
  failed write may have left stale are deleted once Redis answers again (the failure itself is
  logged once per outage by :class:`~flask_better_auth.secondary_storage.SecondaryStorage`);
* **fail closed** where Redis holds the only copy: the error propagates, and the request
  answers ``503 SERVICE_UNAVAILABLE`` with ``Retry-After: 1``.

Reads try Redis first and fall back to the database on a miss; writes go to both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from ..models import Session, User, Verification
from ..secondary_storage import SecondaryStorage, StorageUnavailable
from .database import (
    Database,
    DatabaseAccounts,
    DatabaseKeyValue,
    DatabaseRecords,
    DatabaseSessions,
    DatabaseUsers,
    DatabaseVerifications,
    follow_extension,
    new_verification,
)
from .protocols import (
    AccountStore,
    KeyValueStore,
    RecordStore,
    SessionStore,
    Source,
    UserStore,
    VerificationStore,
)
from .redis import RedisKeyValue, RedisSessions, RedisVerifications

T = TypeVar("T")


def _redis_first(
    redis_read: Callable[[], T | None], database_read: Callable[[], T | None], *, in_database: bool
) -> T | None:
    """A read that Redis answers first: the database answers when Redis misses or fails while
    it holds the data too (fail open); where Redis is the only copy, its failure propagates
    (``503``) and its miss is the answer."""
    try:
        found = redis_read()
    except StorageUnavailable:
        if not in_database:
            raise
        found = None
    if found is not None or not in_database:
        return found
    return database_read()


class LayeredSessions:
    """Sessions in the database, in Redis, or in both (``in_database`` with ``redis``)."""

    def __init__(
        self, database: DatabaseSessions, redis: RedisSessions | None, *, in_database: bool
    ) -> None:
        self.database = database
        self.redis = redis
        self.in_database = in_database or redis is None

    @property
    def source(self) -> Source:
        return "database" if self.in_database else "secondary"

    def find(
        self, token: str, *, authoritative: bool = False
    ) -> tuple[Session, User, Source] | None:
        # Redis answers first; the database when Redis misses, fails or holds a revoked entry.
        redis = self.redis
        if redis is not None and not (authoritative and self.in_database):
            return _redis_first(
                lambda: redis.find(token),
                lambda: self.database.find(token),
                in_database=self.in_database,
            )
        return self.database.find(token)

    def create(self, session: Session, user: User) -> None:
        if self.in_database:
            self.database.create(session, user)
        if self.redis is not None:
            try:
                self.redis.create(session, user)
            except StorageUnavailable:
                if not self.in_database:
                    raise
                self.redis.forget_later([session.token])

    def extend(self, session: Session, user: User, stamp: datetime, expires_at: datetime) -> bool:
        extended = True
        if self.in_database:
            extended = self.database.write_extension(session, stamp, expires_at)
        if self.redis is not None and extended:
            try:
                stored = self.redis.write_extension(session, user, stamp, expires_at)
            except StorageUnavailable:
                if not self.in_database:
                    raise
                self.redis.forget_later([session.token])
            else:
                extended = extended if self.in_database else stored
        if extended:
            follow_extension(session, stamp, expires_at)
        return extended

    def discard(self, session: Session) -> None:
        if self.in_database:
            self.database.discard(session)
        if self.redis is not None:
            try:
                self.redis.discard(session)
            except StorageUnavailable:  # it expires in Redis by itself
                self.redis.forget_later([session.token])

    def delete_token(self, token: str) -> str | None:
        user_id = self.database.delete_token(token) if self.in_database else None
        if self.redis is not None:
            try:
                owner = self.redis.delete_token(token)
            except StorageUnavailable:
                if not self.in_database:
                    raise
                self.redis.forget_later([token])
            else:
                user_id = user_id if self.in_database else owner
        return user_id

    def delete_for_user(
        self, user_id: str, *, keep_token: str | None = None, token: str | None = None
    ) -> int:
        if self.redis is None:
            return self.database.delete_for_user(user_id, keep_token=keep_token, token=token)
        tokens: list[str] = []
        if self.in_database:
            tokens = self.database.delete_for_user_tokens(
                user_id, keep_token=keep_token, token=token
            )
        try:
            deleted = self.redis.delete_for_user(
                user_id, keep_token=keep_token, token=token, also=tokens
            )
        except StorageUnavailable:
            if not self.in_database:
                raise
            self.redis.forget_later(tokens)
            return len(tokens)
        return len(tokens) if self.in_database else deleted

    def list_active(self, user_id: str) -> list[Session]:
        if self.redis is not None and not self.in_database:
            return self.redis.list_active(user_id)
        return self.database.list_active(user_id)

    def refresh_user(self, user: User) -> None:
        # When Redis fails: with sessions in the database the entries are deleted once Redis
        # is back (reads then go to the database); else the rewrite itself is retried then.
        if self.redis is None:
            return
        try:
            self.redis.refresh_user(user)
        except StorageUnavailable:
            if self.in_database:
                self.redis.forget_later(self.database.tokens_of(user.id))
            else:
                self.redis.refresh_user_later(user)

    def count_expired(self, now: datetime) -> int:
        return self.database.count_expired(now)  # Redis expires its keys itself

    def purge_expired(self, now: datetime, limit: int) -> tuple[int, int]:
        return self.database.purge_expired(now, limit)


class LayeredVerifications:
    """Verification values in the database, in Redis, or in both."""

    def __init__(
        self,
        database: DatabaseVerifications,
        redis: RedisVerifications | None,
        *,
        in_database: bool,
    ) -> None:
        self.database = database
        self.redis = redis
        self.in_database = in_database or redis is None

    def create(self, identifier: str, value: str, expires_at: datetime) -> Verification:
        row = new_verification(identifier, value, expires_at)
        if self.in_database:
            self.database.add(row)
        if self.redis is not None:
            try:
                self.redis.add(row)
            except StorageUnavailable:
                if not self.in_database:
                    raise
        return row

    def find(self, identifier: str) -> Verification | None:
        redis = self.redis
        if redis is not None:
            return _redis_first(
                lambda: redis.find(identifier),
                lambda: self.database.find(identifier),
                in_database=self.in_database,
            )
        return self.database.find(identifier)

    def consume(self, identifier: str) -> str | None:
        # The database consumes (DELETE … RETURNING) when it holds the values; Redis's copy is
        # deleted after, so it cannot be found again.
        if self.redis is not None and not self.in_database:
            return self.redis.consume(identifier)
        value = self.database.consume(identifier)
        if self.redis is not None:
            try:
                self.redis.delete(identifier)
            except StorageUnavailable:
                self.redis.forget_later(identifier)
        return value

    def delete_matching(self, prefix: str, value: str) -> None:
        # With the database holding the values too, a Redis failure is only logged: what Redis
        # kept no longer consumes (consume takes the row from the database).
        if self.in_database:
            self.database.delete_matching(prefix, value)
        if self.redis is not None:
            try:
                self.redis.delete_matching(prefix, value)
            except StorageUnavailable:
                if not self.in_database:
                    raise

    def count_expired(self, now: datetime) -> int:
        return self.database.count_expired(now)

    def purge_expired(self, now: datetime, limit: int) -> tuple[int, int]:
        return self.database.purge_expired(now, limit)


class LayeredStorage:
    """The app's :class:`~flask_better_auth.storage.Storage`: users and accounts in the
    database, sessions and verification values where configured, and the key/value store where
    verification values are authoritative (Redis only when they live only there: a failure
    then answers ``503``, there being no other copy).

    :param database: the app's database.
    :param secondary: the app's Redis, or ``None`` without secondary storage.
    :param sessions_in_database: sessions are rows too (always ``True`` without Redis).
    :param verifications_in_database: verification values are rows too.
    """

    users: UserStore
    accounts: AccountStore
    sessions: SessionStore
    verifications: VerificationStore
    kv: KeyValueStore
    records: RecordStore

    def __init__(
        self,
        database: Database,
        secondary: SecondaryStorage | None = None,
        *,
        sessions_in_database: bool = True,
        verifications_in_database: bool = True,
    ) -> None:
        self.database = database
        self.secondary = secondary
        redis_sessions = redis_verifications = None
        if secondary is not None:
            redis_sessions = RedisSessions(secondary)
            redis_verifications = RedisVerifications(secondary)
        self.sessions = LayeredSessions(
            DatabaseSessions(database), redis_sessions, in_database=sessions_in_database
        )
        self.verifications = LayeredVerifications(
            DatabaseVerifications(database),
            redis_verifications,
            in_database=verifications_in_database,
        )
        accounts = DatabaseAccounts(database, self.verifications)
        self.accounts = accounts
        self.users = DatabaseUsers(database, accounts)
        if secondary is not None and not verifications_in_database:
            self.kv = RedisKeyValue(secondary)
        else:
            self.kv = DatabaseKeyValue(database)
        self.records = DatabaseRecords(database)

    def commit(self) -> None:
        self.database.commit()

    def rollback(self) -> None:
        self.database.rollback()


__all__ = ["LayeredSessions", "LayeredStorage", "LayeredVerifications"]

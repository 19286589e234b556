"""The Redis implementation: Better Auth's ``secondaryStorage`` layout on the app's client.

Sessions and verification values as :mod:`~flask_better_auth.secondary_storage` lays them out
(the keys a JavaScript Better Auth on the same Redis reads and writes), turned into and from
the ORM objects the rest of the package uses. Every method raises
:class:`~flask_better_auth.secondary_storage.StorageUnavailable` when Redis fails: used alone,
Redis fails closed; :mod:`~flask_better_auth.storage.layered` decides otherwise where the
database holds the data too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..models import Session, User, Verification, iso, parse_datetime
from ..secondary_storage import SecondaryStorage, dump_json, epoch_ms, load_json, ttl_seconds
from .database import follow_extension, new_verification
from .protocols import Source

if TYPE_CHECKING:
    import redis as redis_py


class RedisSessions:
    """:class:`~flask_better_auth.storage.SessionStore` on Redis alone."""

    def __init__(self, secondary: SecondaryStorage) -> None:
        self.secondary = secondary

    @property
    def source(self) -> Source:
        return "secondary"

    def find(
        self, token: str, *, authoritative: bool = False
    ) -> tuple[Session, User, Source] | None:
        entry = self.secondary.get_session(token)
        if entry is None:
            return None
        try:
            return Session.from_json(entry[0]), User.from_json(entry[1]), "secondary"
        except (KeyError, TypeError, ValueError):
            return None  # unreadable: as if missing

    def create(self, session: Session, user: User) -> None:
        self.secondary.set_session(session.to_json(), user.to_json(), epoch_ms(session.expires_at))

    def write_extension(
        self, session: Session, user: User, stamp: datetime, expires_at: datetime
    ) -> bool:
        """Rewrite the entry with the new expiry (``session`` unchanged); ``False`` if gone."""
        data = {**session.to_json(), "expiresAt": iso(expires_at), "updatedAt": iso(stamp)}
        return self.secondary.update_session(data, user.to_json(), epoch_ms(expires_at))

    def extend(self, session: Session, user: User, stamp: datetime, expires_at: datetime) -> bool:
        extended = self.write_extension(session, user, stamp, expires_at)
        if extended:
            follow_extension(session, stamp, expires_at)
        return extended

    def discard(self, session: Session) -> None:
        self.secondary.delete_session(session.token)

    def delete_token(self, token: str) -> str | None:
        return self.secondary.delete_session(token)

    def delete_for_user(
        self,
        user_id: str,
        *,
        keep_token: str | None = None,
        token: str | None = None,
        also: Iterable[str] = (),
    ) -> int:
        """:param also: more tokens to delete (those the database knew)."""
        if token is not None:
            return int(self.secondary.delete_session(token, owner=user_id) is not None)
        return self.secondary.delete_user_sessions(
            user_id, tokens=also, keep=keep_token, revoke_all=keep_token is None
        )

    def list_active(self, user_id: str) -> list[Session]:
        sessions = [Session.from_json(data) for data in self.secondary.list_sessions(user_id)]
        return sorted(sessions, key=lambda s: (s.created_at, s.id))

    def refresh_user(self, user: User) -> None:
        self.secondary.rewrite_user(user.to_json())

    def refresh_user_later(self, user: User) -> None:
        """:meth:`refresh_user` once Redis answers again (in this process)."""
        self.secondary.rewrite_user_later(user.to_json())

    def forget_later(self, tokens: Iterable[str]) -> None:
        """Delete these sessions' entries once Redis answers again (in this process)."""
        self.secondary.forget_later(self.secondary.session_keys(tokens))

    def count_expired(self, now: datetime) -> int:
        """Nothing to count: Redis expires its keys itself."""
        return 0

    def purge_expired(self, now: datetime, limit: int) -> tuple[int, int]:
        """Nothing to delete: Redis expires its keys itself."""
        return 0, 0


def _verification_json(row: Verification) -> dict[str, Any]:
    return {
        "id": row.id,
        "identifier": row.identifier,
        "value": row.value,
        "expiresAt": iso(row.expires_at),
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
    }


def _unexpired(data: Any) -> Verification | None:
    """A verification row read from Redis, or ``None`` when absent, unreadable or expired."""
    if not isinstance(data, dict):
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


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis ``MATCH`` pattern."""
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def _seconds(ttl: timedelta) -> int:
    return max(int(ttl.total_seconds()), 1)


class RedisVerifications:
    """:class:`~flask_better_auth.storage.VerificationStore` on Redis alone: one key
    ``verification:<identifier>`` holding the JSON row, expiring with it."""

    def __init__(self, secondary: SecondaryStorage) -> None:
        self.secondary = secondary

    def key(self, identifier: str) -> str:
        """The full key of a verification value."""
        return self.secondary.key(f"verification:{identifier}")

    def add(self, row: Verification) -> None:
        """Store a row made by :func:`~.database.new_verification` until it expires."""
        ttl = ttl_seconds(epoch_ms(row.expires_at))
        if ttl > 0:
            key, value = self.key(row.identifier), dump_json(_verification_json(row))
            self.secondary.call(lambda client: client.set(key, value, ex=ttl))

    def create(self, identifier: str, value: str, expires_at: datetime) -> Verification:
        row = new_verification(identifier, value, expires_at)
        self.add(row)
        return row

    def find(self, identifier: str) -> Verification | None:
        key = self.key(identifier)
        return _unexpired(load_json(self.secondary.call(lambda c: c.get(key), read=True)))

    def consume(self, identifier: str) -> str | None:
        key = self.key(identifier)  # GETDEL: one taker wins
        row = _unexpired(load_json(self.secondary.call(lambda c: c.getdel(key))))
        return None if row is None else row.value

    def delete(self, identifier: str) -> None:
        """Delete the value of ``identifier``."""
        key = self.key(identifier)
        self.secondary.call(lambda client: client.delete(key))

    def delete_matching(self, prefix: str, value: str) -> None:
        # A SCAN of the prefix: for rare events (a password change drops the user's reset
        # tokens), never a request's common path.
        pattern = _glob_escape(self.key(prefix)) + "*"

        def operation(client: redis_py.Redis) -> None:
            for key in client.scan_iter(match=pattern, count=500):
                row = load_json(client.get(key))
                if isinstance(row, dict) and row.get("value") == value:
                    client.delete(key)

        self.secondary.call(operation)

    def forget_later(self, identifier: str) -> None:
        """Delete the value once Redis answers again (in this process)."""
        self.secondary.forget_later([self.key(identifier)])

    def count_expired(self, now: datetime) -> int:
        """Nothing to count: Redis expires its keys itself."""
        return 0

    def purge_expired(self, now: datetime, limit: int) -> tuple[int, int]:
        """Nothing to delete: Redis expires its keys itself."""
        return 0, 0


class RedisKeyValue:
    """:class:`~flask_better_auth.storage.KeyValueStore` on Redis: the key after the prefix,
    a string value with Redis's own TTL."""

    def __init__(self, secondary: SecondaryStorage) -> None:
        self.secondary = secondary

    def get(self, key: str) -> str | None:
        full = self.secondary.key(key)
        value = self.secondary.call(lambda client: client.get(full), read=True)
        return None if value is None else str(value)

    def set(self, key: str, value: str, ttl: timedelta) -> None:
        full = self.secondary.key(key)
        self.secondary.call(lambda client: client.set(full, value, ex=_seconds(ttl)))

    def take(self, key: str) -> str | None:
        full = self.secondary.key(key)
        value = self.secondary.call(lambda client: client.getdel(full))
        return None if value is None else str(value)

    def delete(self, key: str) -> None:
        full = self.secondary.key(key)
        self.secondary.call(lambda client: client.delete(full))

    def increment(self, key: str, ttl: timedelta) -> int:
        full = self.secondary.key(key)

        def operation(client: redis_py.Redis) -> int:
            pipe = client.pipeline(transaction=True)
            pipe.set(full, 0, ex=_seconds(ttl), nx=True)  # a new key: the window opens
            pipe.incr(full)
            return int(pipe.execute()[1])

        return self.secondary.call(operation)


__all__ = ["RedisKeyValue", "RedisSessions", "RedisVerifications"]

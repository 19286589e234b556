"""Secondary storage: Redis (redis-py) in Better Auth's ``secondaryStorage`` key layout.

Keys, each after ``BETTER_AUTH_SECONDARY_STORAGE_PREFIX``:

* ``<token>``: JSON ``{"session", "user"}``, expiring with the session;
* ``active-sessions-<userId>``: JSON ``[{"token", "expiresAt"(ms)}]`` sorted by expiry, expiring
  with the furthest one;
* ``revoked-sessions-before-<userId>``: epoch milliseconds; a session created earlier is revoked
  ("revoke all" reaches sessions missing from the list too);
* ``verification:<identifier>``: the JSON verification row, expiring with it
  (:class:`~flask_better_auth.storage.redis.RedisVerifications`).

A Redis failure raises :class:`StorageUnavailable` (a ``503 SERVICE_UNAVAILABLE``);
:mod:`~flask_better_auth.storage.layered` decides whether the database answers instead. It is
logged once per outage, and reads skip Redis for :data:`READ_PAUSE` seconds after a failure.

The client (:func:`redis_client`) is the app's only one on this URL: the rate limiter counts
through it when its Redis URL is the same.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .config import ConfigError
from .errors import AuthError
from .models import parse_datetime
from .settings.secondary_storage import SecondaryStorageSettings

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("flask_better_auth")

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Ref = dict[str, Any]

#: Seconds during which reads go straight to the fallback after a Redis failure (writes are
#: always attempted: a revocation must reach Redis as soon as it answers again).
READ_PAUSE = 2.0
#: The most keys remembered for deletion while Redis is unreachable (see ``forget_later``).
MAX_STALE_KEYS = 10_000


def redis_client(url: str, *, timeout: float, name: str) -> redis.Redis:
    """A Redis client (its own connection pool, opened lazily) as flask-better-auth uses one.

    Strings in and out (``decode_responses``); every command gives up after ``timeout`` seconds
    and is retried once on a fresh connection (a pooled one may predate a Redis restart).

    :param name: what the URL is, for the error message.
    :raises ConfigError: redis-py cannot use the URL.
    """
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
    except ValueError as exc:
        raise ConfigError(f"{name} {url!r} is unusable: {exc}") from None


class StorageUnavailable(AuthError):
    """Redis did not answer: ``503 SERVICE_UNAVAILABLE`` unless the database can answer."""

    def __init__(self) -> None:
        super().__init__(503, "SERVICE_UNAVAILABLE", headers={"Retry-After": "1"})


def now_ms() -> int:
    """The current time in epoch milliseconds, as JavaScript's ``Date.now()``."""
    return time.time_ns() // 1_000_000


def epoch_ms(value: datetime) -> int:
    """An aware datetime in epoch milliseconds (exact: no float rounding)."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


def ttl_seconds(expires_ms: int, now: int | None = None) -> int:
    """Better Auth's ``getTTLSeconds``: whole seconds left, never negative."""
    return max((expires_ms - (now_ms() if now is None else now)) // 1000, 0)


def dump_json(value: Any) -> str:
    """Compact JSON, as Better Auth's ``JSON.stringify`` writes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json(raw: Any) -> Any:
    """Parsed JSON, or ``None`` when absent or unreadable."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def _entry(raw: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(session, user)`` of a stored session entry, or ``None`` when absent or unreadable."""
    data = load_json(raw)
    if not isinstance(data, dict):
        return None
    session, user = data.get("session"), data.get("user")
    if not isinstance(session, dict) or not isinstance(user, dict):
        return None
    return session, user


def _ms(raw: Any) -> int:
    """A stored epoch-milliseconds value (a marker); 0 when absent or unreadable."""
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


def _created_ms(session: dict[str, Any]) -> int:
    try:
        return epoch_ms(parse_datetime(session["createdAt"]))
    except (KeyError, TypeError, ValueError):
        return 0


class SecondaryStorage:
    """One app's Redis client and Better Auth's operations on its keys.

    :param settings: the secondary storage settings (``url`` must be set).
    :param revoked_ttl: seconds a "revoke all" marker lives (Better Auth: the longer of the
        session lifetime and one day).
    """

    def __init__(self, settings: SecondaryStorageSettings, *, revoked_ttl: int) -> None:
        import redis

        assert settings.url is not None
        self.settings = settings
        self.prefix = settings.prefix
        self.revoked_ttl = revoked_ttl
        #: The app's Redis client; the rate limiter counts through it too on the same URL.
        self.client: redis.Redis = redis_client(
            settings.url,
            timeout=settings.timeout.total_seconds(),
            name="BETTER_AUTH_SECONDARY_STORAGE_URL",
        )
        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._reads_paused_until = 0.0
        self._stale: set[str] = set()
        self._users: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ plumbing

    def key(self, name: str) -> str:
        """The Redis key of ``name`` (the prefix in front)."""
        return self.prefix + name

    @property
    def available(self) -> bool:
        """``False`` from a failure until Redis answers again (in this process)."""
        return self._down_since is None

    def call(self, operation: Callable[[redis.Redis], T], *, read: bool = False) -> T:
        """Run ``operation`` on the client; a Redis error becomes :class:`StorageUnavailable`.

        The first failure is logged (once per outage); :data:`READ_PAUSE` seconds of ``read``
        calls then fail at once. The first success after an outage deletes the keys left stale.
        """
        if read and time.monotonic() < self._reads_paused_until:
            raise StorageUnavailable()
        try:
            result = operation(self.client)
        except self._errors as exc:
            self._failed(exc)
            raise StorageUnavailable() from exc
        if self._down_since is not None or self._stale:
            self._recovered()
        return result

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
            self._reads_paused_until = time.monotonic() + READ_PAUSE
        if first:
            logger.warning(
                "secondary storage (Redis) unreachable: %s: %s (logged once until it answers)",
                exc.__class__.__name__,
                exc,
            )

    def _recovered(self) -> None:
        with self._lock:
            down_since, self._down_since = self._down_since, None
            self._reads_paused_until = 0.0
            stale, self._stale = self._stale, set()
            users, self._users = self._users, {}
        if down_since is not None:
            logger.warning(
                "secondary storage (Redis) answers again after %.1f s",
                time.monotonic() - down_since,
            )
        if stale:
            try:
                keys = sorted(stale)
                for start in range(0, len(keys), 500):
                    self.client.delete(*keys[start : start + 500])
            except self._errors:
                self.forget_later(stale)
            else:
                logger.info("deleted %d secondary storage keys left stale by the outage", len(keys))
        for user in users.values():
            try:
                self._rewrite_user(self.client, user)
            except self._errors:
                self.rewrite_user_later(user)

    def forget_later(self, keys: Iterable[str]) -> None:
        """Delete these (full) keys as soon as Redis answers again in this process.

        For the keys a failed write may have left stale while the database kept the truth:
        deleted, they send reads to the database.
        """
        with self._lock:
            for key in keys:
                if len(self._stale) >= MAX_STALE_KEYS:
                    logger.error(
                        "secondary storage: over %d keys to delete after the outage; flush the"
                        " session keys once Redis is back",
                        MAX_STALE_KEYS,
                    )
                    break
                self._stale.add(key)

    def rewrite_user_later(self, user: dict[str, Any]) -> None:
        """Run :meth:`rewrite_user` as soon as Redis answers again in this process."""
        with self._lock:
            self._users[str(user["id"])] = user

    def close(self) -> None:
        """Close the connection pool (call when the app shuts down; tests do)."""
        self.client.close()

    def ping(self) -> bool:
        """Whether Redis answers now."""
        try:
            return bool(self.client.ping())
        except self._errors:
            return False

    # ------------------------------------------------------------------ sessions

    def session_keys(self, tokens: Iterable[str]) -> list[str]:
        """The keys of these session tokens."""
        return [self.key(token) for token in tokens]

    def _revoked_key(self, user_id: str) -> str:
        return self.key(f"revoked-sessions-before-{user_id}")

    def _references_key(self, user_id: str) -> str:
        return self.key(f"active-sessions-{user_id}")

    def _references(self, client: redis.Redis, user_id: str) -> list[Ref]:
        now = now_ms()
        raw = load_json(client.get(self._references_key(user_id)))
        return [
            ref
            for ref in (raw if isinstance(raw, list) else [])
            if isinstance(ref, dict)
            and isinstance(ref.get("token"), str)
            and isinstance(ref.get("expiresAt"), int)
            and ref["expiresAt"] > now
        ]

    def _update_references(
        self, client: redis.Redis, user_id: str, change: Callable[[list[Ref]], list[Ref]]
    ) -> None:
        """Rewrite ``active-sessions-<userId>`` atomically (WATCH/MULTI, retried on a race)."""
        key = self._references_key(user_id)

        def transaction(pipe: Any) -> None:
            references = sorted(change(self._references(pipe, user_id)), key=_expiry)
            pipe.multi()
            ttl = ttl_seconds(references[-1]["expiresAt"]) if references else 0
            if ttl > 0:
                pipe.set(key, dump_json(references), ex=ttl)
            else:
                pipe.delete(key)

        client.transaction(transaction, key)

    def get_session(self, token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The stored ``(session, user)`` JSON of ``token``; ``None`` if missing or revoked."""

        def operation(client: redis.Redis) -> tuple[dict[str, Any], dict[str, Any]] | None:
            entry = _entry(client.get(self.key(token)))
            if entry is None:
                return None
            marker = _ms(client.get(self._revoked_key(str(entry[0].get("userId")))))
            if _created_ms(entry[0]) < marker:
                return None
            return entry

        return self.call(operation, read=True)

    def set_session(self, session: dict[str, Any], user: dict[str, Any], expires: int) -> None:
        """Store a new session entry and list its token in the user's active sessions.

        :param expires: the session's expiry in epoch milliseconds.
        """
        ttl = ttl_seconds(expires)
        if ttl <= 0:
            return
        token, user_id = session["token"], session["userId"]

        def operation(client: redis.Redis) -> None:
            client.set(self.key(token), dump_json({"session": session, "user": user}), ex=ttl)
            self._update_references(
                client,
                user_id,
                lambda refs: [
                    *(r for r in refs if r["token"] != token),
                    {"token": token, "expiresAt": expires},
                ],
            )

        self.call(operation)

    def update_session(self, session: dict[str, Any], user: dict[str, Any], expires: int) -> bool:
        """Rewrite an existing entry (a refresh); ``False`` when it is gone (revoked meanwhile).

        ``SET … XX``: a concurrent deletion is never undone.
        """
        ttl = ttl_seconds(expires)
        token, user_id = session["token"], session["userId"]

        def operation(client: redis.Redis) -> bool:
            if ttl <= 0:
                client.delete(self.key(token))
                return False
            entry = dump_json({"session": session, "user": user})
            if not client.set(self.key(token), entry, ex=ttl, xx=True):
                return False
            self._update_references(
                client,
                user_id,
                lambda refs: [
                    *(r for r in refs if r["token"] != token),
                    {"token": token, "expiresAt": expires},
                ],
            )
            return True

        return self.call(operation)

    def delete_session(self, token: str, *, owner: str | None = None) -> str | None:
        """Delete one session entry; the user id it belonged to, or ``None`` if there was none.

        :param owner: delete only if the session is this user's.
        """

        def operation(client: redis.Redis) -> str | None:
            entry = _entry(client.get(self.key(token)))
            user_id = None if entry is None else str(entry[0].get("userId"))
            if owner is not None and user_id != owner:
                return None
            client.delete(self.key(token))
            if user_id is not None:
                self._update_references(
                    client, user_id, lambda refs: [r for r in refs if r["token"] != token]
                )
            return user_id

        return self.call(operation)

    def delete_user_sessions(
        self,
        user_id: str,
        *,
        tokens: Iterable[str] = (),
        keep: str | None = None,
        revoke_all: bool = False,
    ) -> int:
        """Delete every listed session entry of the user (and ``tokens``) but ``keep``.

        :param tokens: more tokens to delete (those the database knew).
        :param revoke_all: also set the ``revoked-sessions-before`` marker to now, so entries
            missing from the list are refused too.
        :returns: the number of entries deleted.
        """

        def operation(client: redis.Redis) -> int:
            if revoke_all:
                marker = self._revoked_key(user_id)
                stamp = max(now_ms(), _ms(client.get(marker)))
                client.set(marker, str(stamp), ex=self.revoked_ttl)
            listed = [r["token"] for r in self._references(client, user_id)]
            doomed = {t for t in (*listed, *tokens) if t != keep}
            deleted = int(client.delete(*self.session_keys(doomed))) if doomed else 0
            self._update_references(
                client, user_id, lambda refs: [r for r in refs if r["token"] not in doomed]
            )
            return deleted

        return self.call(operation)

    def list_sessions(self, user_id: str) -> list[dict[str, Any]]:
        """The session JSON of every listed, unexpired, unrevoked session of the user."""

        def operation(client: redis.Redis) -> list[dict[str, Any]]:
            tokens = list(dict.fromkeys(r["token"] for r in self._references(client, user_id)))
            if not tokens:
                return []
            raws = client.mget(self.session_keys(tokens))
            marker = _ms(client.get(self._revoked_key(user_id)))
            now = now_ms()
            sessions = []
            for raw in raws:
                entry = _entry(raw)
                if entry is None or str(entry[0].get("userId")) != user_id:
                    continue
                session = entry[0]
                if _created_ms(session) < marker:
                    continue
                try:
                    if epoch_ms(parse_datetime(session["expiresAt"])) <= now:
                        continue
                except (KeyError, TypeError, ValueError):
                    continue
                sessions.append(session)
            return sessions

        return self.call(operation, read=True)

    def rewrite_user(self, user: dict[str, Any]) -> None:
        """Put the updated user into every active session entry of theirs (TTL kept)."""
        self.call(lambda client: self._rewrite_user(client, user))

    def _rewrite_user(self, client: redis.Redis, user: dict[str, Any]) -> None:
        user_id = str(user["id"])
        tokens = list(dict.fromkeys(r["token"] for r in self._references(client, user_id)))
        if not tokens:
            return
        raws = client.mget(self.session_keys(tokens))
        pipe = client.pipeline(transaction=False)
        for token, raw in zip(tokens, raws, strict=True):
            entry = _entry(raw)
            if entry is not None:
                value = dump_json({"session": entry[0], "user": user})
                pipe.set(self.key(token), value, xx=True, keepttl=True)
        pipe.execute()


def _expiry(ref: Ref) -> int:
    return cast(int, ref["expiresAt"])


__all__ = [
    "READ_PAUSE",
    "SecondaryStorage",
    "SecondaryStorageSettings",
    "StorageUnavailable",
    "epoch_ms",
    "now_ms",
    "redis_client",
    "ttl_seconds",
]

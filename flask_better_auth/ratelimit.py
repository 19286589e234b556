"""Better Auth's rate limiter: rules per path, memory / database / Redis storage, the 429 answer.

It runs before routing for every request under the base path (unknown paths count too), keyed on
``"<client ip>|<path below the base path>"`` (:func:`rate_limit_key`: a path that is long or not
printable ASCII is replaced by its SHA-256, so no request can make a key a storage refuses). The
client IP is the socket peer's, or a forwarded header's when the peer is a trusted proxy
(:func:`client_key_ip`). It fails closed: when the storage fails, the request is refused with
``503 SERVICE_UNAVAILABLE`` and the outage logged once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from flask import Request, Response, request
from sqlalchemy import case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .crypto import generate_id
from .errors import AuthError
from .ip import address_from_headers, bucket_ip, is_trusted_proxy, parse_address
from .models import RateLimit
from .ratelimit_rules import (
    SPECIAL_RULES,
    PathRule,
    RateLimitSettings,
    Rule,
    rate_limit_settings,
    rule_for,
    sub_path,
)

if TYPE_CHECKING:
    import redis
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import Connection

    from .secondary_storage import SecondaryStorage
    from .settings import AuthSettings

logger = logging.getLogger("flask_better_auth.ratelimit")

#: The body of Better Auth's 429 answer.
RATE_LIMIT_MESSAGE = "Too many requests. Please try again later."
#: The IP part of the key when no client address can be found: one bucket for everyone.
NO_TRUSTED_IP = "no-trusted-ip"
#: How many keys the memory storage keeps at most (Better Auth's cap).
MEMORY_MAX_ENTRIES = 100_000
#: Connect and read timeout of a Redis client of the limiter's own, in seconds (a client shared
#: with the secondary storage has ``BETTER_AUTH_SECONDARY_STORAGE_TIMEOUT``).
REDIS_TIMEOUT = 1.0
#: The longest path kept as is in a key. Better Auth's own paths are far shorter; a longer one
#: (or one with a character outside printable ASCII) is keyed on its SHA-256 instead.
MAX_PLAIN_PATH = 200
#: What stands for the path in the key of a hashed one: ``"<ip>|sha256:<64 hex digits>"``.
HASHED_PATH_PREFIX = "sha256:"


_warned: set[str] = set()


def _warn_once(kind: str, message: str, *args: Any) -> None:
    if kind not in _warned:
        _warned.add(kind)
        logger.warning(message, *args)


def client_key_ip(conf: AuthSettings, req: Request) -> str | None:
    """The IP part of the request's rate-limit key; ``None`` when IP tracking is disabled.

    The socket peer's address (``request.remote_addr``), unless the peer is one of
    ``BETTER_AUTH_TRUSTED_PROXIES``: only then are the ``BETTER_AUTH_IP_ADDRESS_HEADERS`` read,
    the chain walked from the right past the trusted hops. A header the client wrote itself
    therefore never picks its bucket. (The ``ipAddress`` stored with a session is read as
    Better Auth reads it: :func:`~flask_better_auth.context.client_ip`.) IPv6 is masked to
    ``BETTER_AUTH_IPV6_SUBNET`` bits.
    """
    if conf.disable_ip_tracking:
        return None
    peer = parse_address(req.remote_addr or "")
    if peer is None:
        _warn_once(
            "no-ip",
            "Rate limiting could not determine a client IP (the server gives no peer address,"
            " e.g. a Unix socket): every client shares one bucket per path. Behind a proxy on a"
            " Unix socket, let werkzeug's ProxyFix set the client address from the proxy's"
            " X-Forwarded-For.",
        )
        return NO_TRUSTED_IP
    forwarded = [name for name in conf.ip_address_headers if req.headers.get(name)]
    if not is_trusted_proxy(peer, conf.trusted_proxies):
        # Behind ProxyFix the peer is already the client it read from these headers.
        if forwarded and "werkzeug.proxy_fix.orig" not in req.environ:
            _warn_once(
                "untrusted-peer",
                "Rate limiting ignores %s from %s, which is not in BETTER_AUTH_TRUSTED_PROXIES:"
                " requests are keyed on the peer address. If the app runs behind a proxy, that"
                " is the proxy's address and every client shares one bucket: list your proxies"
                " in BETTER_AUTH_TRUSTED_PROXIES (IPs or CIDR ranges).",
                ", ".join(forwarded),
                peer,
            )
        return bucket_ip(peer, conf.ipv6_subnet)
    address = address_from_headers(req.headers, conf.ip_address_headers, conf.trusted_proxies)
    if address is None:
        _warn_once(
            "proxy-without-client",
            "Rate limiting: the trusted proxy %s sent no usable client address in %s, so the"
            " request is keyed on the proxy's address, shared by every client behind it. Make"
            " the proxy set (or append to) that header, or point BETTER_AUTH_IP_ADDRESS_HEADERS"
            " at the one it sets.",
            peer,
            ", ".join(conf.ip_address_headers) or "no header",
        )
        address = peer
    return bucket_ip(address, conf.ipv6_subnet)


def _plain(path: str) -> bool:
    # Printable ASCII without space: what Better Auth's own paths are made of, and safe in
    # every storage (no NUL for PostgreSQL, nothing to encode, short enough for any index).
    return len(path) <= MAX_PLAIN_PATH and all("!" <= char <= "~" for char in path)


def rate_limit_key(ip: str, path: str) -> str:
    """The storage key of requests from ``ip`` to ``path`` (below the base path).

    Better Auth's ``"<ip>|<path>"`` when the path is at most :data:`MAX_PLAIN_PATH` printable
    ASCII characters, so a JavaScript deployment sharing the storage counts the same requests
    under the same key. Any other path (a NUL byte, unicode, 3,000 characters) is replaced by
    ``sha256:`` and its hex digest: every key stays short and plain, and cannot collide with a
    plain one (those paths start with ``/``). ``ip`` is already normalised (:func:`client_key_ip`).
    """
    if _plain(path):
        return f"{ip}|{path}"
    digest = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{ip}|{HASHED_PATH_PREFIX}{digest}"


def too_many_requests(retry_after: int) -> Response:
    """Better Auth's 429 answer, ``X-Retry-After`` readable by cross-origin clients."""
    body = json.dumps({"message": RATE_LIMIT_MESSAGE}, separators=(",", ":"))
    response = Response(body, status=429, mimetype="application/json")
    response.headers["X-Retry-After"] = str(retry_after)
    response.headers["Access-Control-Expose-Headers"] = "X-Retry-After"
    return response


def storage_unavailable() -> Response:
    """The answer when the storage cannot count the request: ``503 SERVICE_UNAVAILABLE``.

    Refused rather than let through: a limiter any outage switches off is one an attacker can
    switch off (by overloading Redis, say) right before guessing passwords.
    """
    return AuthError(503, "SERVICE_UNAVAILABLE", headers={"Retry-After": "1"}).to_response()


def _retry_after(last_request: int, rule: Rule, now: int) -> int:
    return math.ceil((last_request + rule.window_ms - now) / 1000)


class Storage(Protocol):
    """Where counts live. ``consume`` counts a request: ``None`` if allowed, else retry-after."""

    def consume(self, key: str, rule: Rule, now: int) -> int | None: ...

    def close(self) -> None: ...


class MemoryStorage:
    """Counts in this process's memory (one process only; lost on restart)."""

    def __init__(self, max_entries: int = MEMORY_MAX_ENTRIES) -> None:
        self._entries: dict[str, tuple[int, int, int]] = {}  # key → count, last, expires
        self._lock = threading.Lock()
        self._max_entries = max_entries
        self._next_prune = 0

    def consume(self, key: str, rule: Rule, now: int) -> int | None:
        with self._lock:
            self._prune(now)
            entry = self._entries.get(key)
            if entry is None or now >= entry[2] or now - entry[1] >= rule.window_ms:
                count = 1
            elif entry[0] >= rule.max:
                return _retry_after(entry[1], rule, now)
            else:
                count = entry[0] + 1
            self._entries[key] = (count, now, now + rule.window_ms)
            return None

    def _prune(self, now: int) -> None:
        if now < self._next_prune and len(self._entries) <= self._max_entries:
            return
        self._next_prune = now + 1000
        for key in [k for k, entry in self._entries.items() if now >= entry[2]]:
            del self._entries[key]
        overflow = len(self._entries) - self._max_entries
        for key in list(self._entries)[: max(overflow, 0)]:  # the oldest keys first
            del self._entries[key]

    def close(self) -> None:
        with self._lock:
            self._entries.clear()


class DatabaseStorage:
    """Counts in the ``rateLimit`` table, one atomic statement per request.

    PostgreSQL and SQLite: an ``INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING`` that
    counts the request only when it is allowed; other databases: ``SELECT … FOR UPDATE``.
    It uses a connection of its own and commits at once, never touching the app's session.
    """

    def __init__(self, db: SQLAlchemy, longest_window: float) -> None:
        self._db = db
        self._longest_ms = round(longest_window * 1000)
        self._next_prune = 0
        self.upsert = True  # False forces the portable path (tests)

    def consume(self, key: str, rule: Rule, now: int) -> int | None:
        self._longest_ms = max(self._longest_ms, rule.window_ms)
        engine = self._db.engine
        with engine.begin() as conn:
            if self.upsert and engine.dialect.name in ("postgresql", "sqlite"):
                retry_after = self._upsert(conn, key, rule, now)
            else:
                retry_after = self._locked(conn, key, rule, now)
            if retry_after is None and now >= self._next_prune:
                # Bound the table: drop rows no rule can still count.
                self._next_prune = now + self._longest_ms
                cutoff = now - self._longest_ms
                conn.execute(delete(RateLimit).where(RateLimit.last_request < cutoff))
        return retry_after

    @staticmethod
    def _upsert(conn: Connection, key: str, rule: Rule, now: int) -> int | None:
        from sqlalchemy.dialects import postgresql, sqlite

        upsert: postgresql.Insert | sqlite.Insert
        if conn.dialect.name == "postgresql":
            upsert = postgresql.insert(RateLimit)
        else:
            upsert = sqlite.insert(RateLimit)
        expired = RateLimit.last_request <= now - rule.window_ms
        statement = (
            upsert.values(id=generate_id(), key=key, count=1, last_request=now)
            .on_conflict_do_update(
                index_elements=[RateLimit.key],
                set_={
                    "count": case((expired, 1), else_=RateLimit.count + 1),
                    "lastRequest": now,
                },
                where=or_(expired, RateLimit.count < rule.max),
            )
            .returning(RateLimit.count)
        )
        if conn.execute(statement).first() is not None:
            return None
        last = conn.execute(select(RateLimit.last_request).where(RateLimit.key == key)).scalar()
        return _retry_after(int(last if last is not None else now), rule, now)

    @staticmethod
    def _locked(conn: Connection, key: str, rule: Rule, now: int) -> int | None:
        query = select(RateLimit.count, RateLimit.last_request).where(RateLimit.key == key)
        row = conn.execute(query.with_for_update()).first()
        if row is None:
            try:
                with conn.begin_nested():
                    row_id = generate_id()
                    conn.execute(
                        insert(RateLimit).values(id=row_id, key=key, count=1, last_request=now)
                    )
                return None
            except IntegrityError:  # a concurrent request created it: count against that row
                row = conn.execute(query.with_for_update()).one()
        count, last = int(row[0]), int(row[1])
        if now - last >= rule.window_ms:
            count = 1
        elif count >= rule.max:
            return _retry_after(last, rule, now)
        else:
            count += 1
        conn.execute(
            update(RateLimit).where(RateLimit.key == key).values(count=count, last_request=now)
        )
        return None

    def close(self) -> None:
        pass


# INCR, and on the first request of a window the expiry: atomic, so exact across processes.
# A key left without expiry (written by something else) gets one too rather than block forever.
_REDIS_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


class RedisStorage:
    """Counts in Redis (``INCR`` + ``PEXPIRE`` in one Lua script): exact across processes.

    The window opens with the first request and closes ``window`` seconds later (Better Auth's
    ``secondaryStorage.increment``); a request is refused once the count passes ``max``.

    :param client: the Redis client; shared with the secondary storage when both use one URL.
    :param owned: whether :meth:`close` closes the client (not when another owner shares it).
    """

    def __init__(self, client: redis.Redis, prefix: str = "", *, owned: bool = True) -> None:
        self.client = client
        self.prefix = prefix
        self._owned = owned
        self._script = client.register_script(_REDIS_SCRIPT)

    def consume(self, key: str, rule: Rule, now: int) -> int | None:
        count, ttl = self._script(keys=[self.prefix + key], args=[rule.window_ms])
        if int(count) <= rule.max:
            return None
        return max(1, math.ceil(int(ttl) / 1000))

    def close(self) -> None:
        if self._owned:
            self.client.close()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _describe(exc: Exception) -> str:
    # The driver's own error, not SQLAlchemy's wrapper: that one quotes the statement and its
    # parameters (the client's IP) into the log.
    orig = getattr(exc, "orig", None)
    shown = orig if isinstance(orig, Exception) else exc
    return f"{type(shown).__name__}: {str(shown).strip()}"


class RateLimiter:
    """One app's limiter: :meth:`check` runs before every request under the base path.

    :param secondary: the app's secondary storage; with the ``"redis"`` storage on the same URL,
        the limiter counts through its Redis client (one connection pool per app).
    :param rules: the app's endpoint and plugin rules (after Better Auth's special rules).
    :ivar clock: the current time in epoch milliseconds (replaceable in tests).
    """

    def __init__(
        self,
        conf: AuthSettings,
        db: SQLAlchemy,
        secondary: SecondaryStorage | None = None,
        rules: Sequence[PathRule] = (),
    ) -> None:
        self.settings = conf
        self.rules = tuple(rules)
        self.clock: Callable[[], int] = _now_ms
        limits = conf.rate_limit
        self.storage: Storage
        if limits.storage == "redis":
            assert limits.redis_url is not None  # checked by rate_limit_settings
            if secondary is not None and secondary.settings.url == limits.redis_url:
                self.storage = RedisStorage(secondary.client, limits.redis_prefix, owned=False)
            else:
                from .secondary_storage import redis_client

                client = redis_client(
                    limits.redis_url, timeout=REDIS_TIMEOUT, name="The rate limiter's Redis URL"
                )
                self.storage = RedisStorage(client, limits.redis_prefix)
        elif limits.storage == "database":
            windows = [limits.rule.window, *(r.rule.window for r in (*SPECIAL_RULES, *rules))]
            windows += [r.window for _, r in limits.custom_rules if isinstance(r, Rule)]
            self.storage = DatabaseStorage(db, max(windows))
        else:
            self.storage = MemoryStorage()
        self._lock = threading.Lock()
        self._failing = False

    def check(self) -> Response | None:
        """``before_request``: count the request; the 429 answer when it is over its limit.

        When the storage fails, the ``503`` of :func:`storage_unavailable`.
        """
        if request.method == "OPTIONS":  # CORS preflights are answered, never counted
            return None
        path = sub_path(request.path, self.settings.base_path)
        if path is None:
            return None
        rule = rule_for(path, self.settings.rate_limit, request, self.rules)
        if rule is None:
            return None
        ip = client_key_ip(self.settings, request)
        if ip is None:
            return None
        try:
            retry_after = self.storage.consume(rate_limit_key(ip, path), rule, self.clock())
        except Exception as exc:  # any failure: refuse, never let the request through unchecked
            self._failed(exc)
            return storage_unavailable()
        if self._failing:
            self._recovered()
        return None if retry_after is None else too_many_requests(retry_after)

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            first, self._failing = not self._failing, True
        if not first:
            return  # once per outage, not once per request
        storage = self.settings.rate_limit.storage
        hint = ""
        if storage == "database":
            hint = " If the rateLimit table is missing, run `flask better-auth migrate`."
        logger.error(
            "Rate limiting cannot count requests: the %s storage failed (%s). Requests to the"
            " auth routes are refused with 503 until it answers again (logged once).%s",
            storage,
            _describe(exc),
            hint,
        )

    def _recovered(self) -> None:
        with self._lock:
            was_failing, self._failing = self._failing, False
        if was_failing:
            logger.warning(
                "Rate limiting works again: the %s storage answers.",
                self.settings.rate_limit.storage,
            )

    def close(self) -> None:
        """Release the storage (the Redis connection pool, unless the secondary storage's)."""
        self.storage.close()


__all__ = [
    "NO_TRUSTED_IP",
    "RATE_LIMIT_MESSAGE",
    "SPECIAL_RULES",
    "DatabaseStorage",
    "MemoryStorage",
    "PathRule",
    "RateLimitSettings",
    "RateLimiter",
    "RedisStorage",
    "Rule",
    "client_key_ip",
    "rate_limit_key",
    "rate_limit_settings",
    "rule_for",
    "storage_unavailable",
    "sub_path",
    "too_many_requests",
]

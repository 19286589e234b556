"""The auth context on ``g``: credentials read before the view, the session resolved lazily.

``before_request`` only reads and verifies credentials (no database work); the first touch of
``current_user`` / ``current_session`` (or an auth route) resolves the session: from the cookie
cache when enabled and valid, else from secondary storage (Redis) when configured, else with one
database query; ``after_request`` writes the cookies the request decided on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from flask import Response, g, request
from werkzeug.local import LocalProxy

from . import cookie_cache
from .cookies import clear_session_cookies, read_signed_cookie, serialize, set_session_cookies
from .crypto import generate_id, unsign_value
from .ip import address_from_headers
from .models import Session, User, utcnow
from .state import settings, storage

if TYPE_CHECKING:
    from .settings import AuthSettings


class AnonymousUser:
    """What :data:`current_user` is when nobody is signed in: falsy, not authenticated.

    It answers Flask-Login's ``AnonymousUserMixin`` interface (``is_authenticated``,
    ``is_active``, ``is_anonymous``, ``get_id()``), so ``{% if current_user.is_authenticated %}``
    works in templates, as does ``{% if current_user %}``.
    """

    is_authenticated = False
    is_active = False
    is_anonymous = True
    id = None

    def get_id(self) -> None:
        """``None``: nobody is signed in."""
        return None

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<AnonymousUser>"


ANONYMOUS = AnonymousUser()


@dataclass
class AuthContext:
    """Per-request auth state, kept on ``g``.

    :ivar token: the session token from a verified cookie or Bearer header, or ``None``.
    :ivar via_bearer: the token came from ``Authorization: Bearer``.
    :ivar dont_remember: a valid "don't remember" cookie came with the request.
    :ivar source: where the session was read: ``"cookie"`` (the cookie cache),
        ``"secondary"`` (Redis) or ``"database"``.
    :ivar issue_cache: write the cookie cache from :attr:`session` in the response.
    :ivar new_session: the session this request created (what a second factor's hook undoes).
    """

    token: str | None = None
    via_bearer: bool = False
    dont_remember: bool = False
    had_dont_remember_cookie: bool = False
    resolved: bool = False
    session: Session | None = None
    user: User | None = None
    source: Literal["cookie", "secondary", "database"] | None = None
    cookie_action: Literal["set", "clear"] | None = None
    issue_cache: bool = False
    new_session: Session | None = None

    def mark_set(self) -> None:
        """Re-issue the session cookie from :attr:`session` in the response."""
        self.cookie_action = "set"

    def mark_clear(self) -> None:
        """Expire the session cookies in the response."""
        self.cookie_action = "clear"


def auth_context() -> AuthContext:
    """The current request's :class:`AuthContext` (created on first use)."""
    ctx: AuthContext | None = g.get("_better_auth")
    if ctx is None:
        ctx = read_credentials()
        g._better_auth = ctx
    return ctx


def bearer_token(conf: AuthSettings) -> str | None:
    """The verified session token of an ``Authorization: Bearer`` header, if any."""
    if not conf.bearer_enabled:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    if "." in credentials:
        if "%" in credentials:
            credentials = unquote(credentials)
        return unsign_value(credentials, conf.secrets)
    if conf.bearer_require_signature:
        return None
    return credentials


def read_credentials() -> AuthContext:
    """Read the credentials of the request: Bearer first, else the session cookie. No DB work."""
    conf = settings()
    token = bearer_token(conf)
    via_bearer = token is not None
    if token is None:
        token = read_signed_cookie(request, conf.cookies.session_token, conf)
    dont_remember = read_signed_cookie(request, conf.cookies.dont_remember, conf)
    return AuthContext(
        token=token,
        via_bearer=via_bearer,
        dont_remember=dont_remember == "true",
        had_dont_remember_cookie=conf.cookies.dont_remember in request.cookies,
    )


def _authoritative_source() -> Literal["secondary", "database"]:
    return storage().sessions.source


def resolve_session(
    *, refresh: bool = True, sensitive: bool = False, disable_cookie_cache: bool = False
) -> tuple[Session, User] | None:
    """Resolve the request's session, lazily, at most once per request.

    The cookie cache answers when enabled and valid (no storage read); else Redis when
    configured; else the database (one indexed query). Expired or unknown ⇒ anonymous and the
    cookies are marked for removal. A session last extended ``update_age`` ago or more is
    extended by ``expires_in`` and its cookie re-issued.

    :param refresh: ``False`` never extends the session (``disableRefresh``).
    :param sensitive: read the session's source of truth, never a cache: the database, or
        Redis when sessions live only there (Better Auth's ``sensitiveSessionMiddleware``). A
        session already resolved from a cache in this request is read again.
    :param disable_cookie_cache: skip the cookie cache (``disableCookieCache``).
    :raises ~flask_better_auth.secondary_storage.StorageUnavailable: Redis failed and sessions
        live only there (``503``).
    """
    ctx = auth_context()
    if ctx.resolved and not (
        sensitive and ctx.source is not None and ctx.source != _authoritative_source()
    ):
        return (ctx.session, ctx.user) if ctx.session and ctx.user else None
    ctx.resolved = True
    ctx.session = ctx.user = ctx.source = None
    if not ctx.token:
        return None
    conf = settings()
    cache = conf.cookie_cache
    if cache.enabled and not sensitive and not disable_cookie_cache:
        value = cookie_cache.read(request, conf.cookies.session_data)
        cached = None
        if value:
            cached = cookie_cache.cached_session(
                value, token=ctx.token, secrets=conf.secrets, strategy=cache.strategy
            )
        if cached is not None:
            ctx.session, ctx.user = cached
            ctx.source = "cookie"
            return cached
    sessions = storage().sessions
    found = sessions.find(ctx.token, authoritative=sensitive)
    now = datetime.now(UTC)
    if found is None or found[0].expires_at <= now:
        if found is not None:
            sessions.discard(found[0])
        ctx.mark_clear()
        return None
    session, user, ctx.source = found
    ctx.session, ctx.user = session, user
    ctx.issue_cache = cache.enabled
    rules = conf.session
    if refresh and not ctx.dont_remember and not rules.disable_refresh:
        due = session.expires_at - rules.expires_in + rules.update_age
        if due <= now:
            stamp = utcnow()
            if not sessions.extend(session, user, stamp, stamp + rules.expires_in):
                ctx.session = ctx.user = None
                ctx.mark_clear()
                return None
            ctx.mark_set()
    return session, user


def client_ip(conf: AuthSettings) -> str:
    """The client IP from the configured headers, as Better Auth reads it ("" when unknown).

    Without ``BETTER_AUTH_TRUSTED_PROXIES`` a header is trusted only when it holds exactly one
    valid address; with them, the chain is walked from the right past the trusted hops.
    """
    if conf.disable_ip_tracking:
        return ""
    address = address_from_headers(request.headers, conf.ip_address_headers, conf.trusted_proxies)
    return "" if address is None else str(address)


def create_session(user: User, *, dont_remember: bool = False) -> Session:
    """Create a session row for ``user`` (the caller commits) and make it the request's session.

    The response will carry its cookie and ``set-auth-token``.

    :param dont_remember: ``rememberMe: false``: a one-day session and a browser-session cookie.
    """
    conf = settings()
    now = utcnow()
    lifetime = timedelta(days=1) if dont_remember else conf.session.expires_in
    session = Session(
        id=generate_id(),
        token=generate_id(),
        user_id=user.id,
        expires_at=now + lifetime,
        created_at=now,
        updated_at=now,
        ip_address=client_ip(conf),
        user_agent=request.headers.get("User-Agent", ""),
    )
    storage().sessions.create(session, user)
    ctx = auth_context()
    ctx.resolved = True
    ctx.session, ctx.user = session, user
    ctx.source = _authoritative_source()
    ctx.token = session.token
    ctx.dont_remember = dont_remember
    ctx.new_session = session
    ctx.mark_set()
    return session


def end_session() -> None:
    """Forget the request's session and expire its cookies (the row is deleted by the caller)."""
    ctx = auth_context()
    ctx.resolved = True
    ctx.session = ctx.user = None
    ctx.mark_clear()


def no_store(response: Response) -> None:
    """Forbid every cache to keep ``response`` (it carries a session token or session data)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


def apply_cookies(response: Response) -> Response:
    """``after_request``: write what the request decided about the session cookies."""
    ctx: AuthContext | None = g.get("_better_auth")
    if ctx is None or (ctx.cookie_action is None and not ctx.issue_cache):
        return response
    if ctx.via_bearer and request.blueprint != "better_auth":
        # A Bearer client keeps no cookies: the app's own routes do not send it any. (The auth
        # routes answer exactly as Better Auth does, cookies included.)
        return response
    conf = settings()
    # A session cookie (or the cache cookie holding the session) must never be stored by a
    # browser's or a proxy's cache: a replayed copy would hand the session to someone else.
    no_store(response)
    if ctx.cookie_action == "clear":
        name = conf.cookies.session_data
        chunks = [c for c in cookie_cache.present(request, name) if c != name]
        clear_session_cookies(response, conf, extra=chunks)
        return response
    if ctx.cookie_action == "set" and ctx.session is not None:
        set_session_cookies(
            response,
            conf,
            ctx.session.token,
            ctx.session.expires_at,
            dont_remember=ctx.dont_remember,
            clear_dont_remember=ctx.had_dont_remember_cookie and not ctx.dont_remember,
        )
    if conf.cookie_cache.enabled and ctx.session is not None and ctx.user is not None:
        _write_cookie_cache(response, conf, ctx.session, ctx.user, ctx.dont_remember)
    return response


def _write_cookie_cache(
    response: Response, conf: AuthSettings, session: Session, user: User, dont_remember: bool
) -> None:
    """Write the signed ``session_data`` cookie (Better Auth's ``setCookieCache``)."""
    cache = conf.cookie_cache
    # A "don't remember" session gets a browser-session cache cookie, as in Better Auth.
    max_age = None if dont_remember else int(cache.max_age.total_seconds())

    def cookie(name: str, value: str, *, max_age: int | None) -> str:
        return serialize(name, value, conf.cookies, max_age=max_age)

    value = cookie_cache.encode(
        session.to_json(),
        user.to_json(),
        secret=conf.secret,
        strategy=cache.strategy,
        max_age=max_age,
    )
    cookie_cache.write(
        response, request, cookie, name=conf.cookies.session_data, value=value, max_age=max_age
    )


def _current_user() -> Any:
    resolved = resolve_session()
    return resolved[1] if resolved else ANONYMOUS


def _current_session() -> Session | None:
    resolved = resolve_session()
    return resolved[0] if resolved else None


#: The signed-in :class:`~flask_better_auth.models.User`, or a falsy :class:`AnonymousUser`.
current_user: Any = LocalProxy(_current_user)
#: The request's :class:`~flask_better_auth.models.Session`, or ``None``.
current_session: Any = LocalProxy(_current_session)

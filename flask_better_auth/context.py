"""The auth context on ``g``: credentials read before the view, the session resolved lazily.

``before_request`` only reads and verifies credentials (no database work); the first touch of
``current_user`` / ``current_session`` (or an auth route) resolves the session with one query;
``after_request`` writes the cookies the request decided on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from flask import Response, g, request
from sqlalchemy import delete, select, update
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.local import LocalProxy

from . import store
from .cookies import clear_session_cookies, read_signed_cookie, set_session_cookies
from .crypto import generate_id, unsign_value
from .models import Session, User, utcnow
from .state import settings

if TYPE_CHECKING:
    from .settings import AuthSettings


class AnonymousUser:
    """What :data:`current_user` is when nobody is signed in: falsy, not authenticated."""

    is_authenticated = False
    id = None

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
    """

    token: str | None = None
    via_bearer: bool = False
    dont_remember: bool = False
    had_dont_remember_cookie: bool = False
    resolved: bool = False
    session: Session | None = None
    user: User | None = None
    cookie_action: Literal["set", "clear"] | None = None

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


def resolve_session(*, refresh: bool = True) -> tuple[Session, User] | None:
    """Resolve the request's session: one indexed query, lazily, at most once per request.

    Expired or unknown ⇒ anonymous and the cookies are marked for removal. A session last
    extended ``update_age`` ago or more is extended by ``expires_in`` and its cookie re-issued.

    :param refresh: ``False`` never extends the session (``disableRefresh``).
    """
    ctx = auth_context()
    if ctx.resolved:
        return (ctx.session, ctx.user) if ctx.session and ctx.user else None
    ctx.resolved = True
    if not ctx.token:
        return None
    conf = settings()
    db_session = store.db_session()
    with db_session.no_autoflush:  # the app's pending changes stay the app's
        row = db_session.execute(
            select(Session, User)
            .join(User, User.id == Session.user_id)
            .where(Session.token == ctx.token)
        ).first()
    now = datetime.now(UTC)
    if row is None or row[0].expires_at <= now:
        if row is not None:
            store.write_aside(delete(Session).where(Session.id == row[0].id))
        ctx.mark_clear()
        return None
    session, user = row
    ctx.session, ctx.user = session, user
    rules = conf.session
    if refresh and not ctx.dont_remember and not rules.disable_refresh:
        due = session.expires_at - rules.expires_in + rules.update_age
        if due <= now:
            stamp = utcnow()
            result = store.write_aside(
                update(Session)
                .where(Session.id == session.id)
                .values(expires_at=stamp + rules.expires_in, updated_at=stamp)
            )
            if getattr(result, "rowcount", 1) == 0:
                ctx.session = ctx.user = None
                ctx.mark_clear()
                return None
            set_committed_value(session, "expires_at", stamp + rules.expires_in)
            set_committed_value(session, "updated_at", stamp)
            ctx.mark_set()
    return session, user


def client_ip(conf: AuthSettings) -> str:
    """The client IP from the configured headers, as Better Auth reads it ("" when unknown).

    A header is trusted only when it holds exactly one valid address.
    """
    if conf.disable_ip_tracking:
        return ""
    for header in conf.ip_address_headers:
        value = request.headers.get(header)
        if not value:
            continue
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if len(parts) != 1:
            continue
        try:
            address = ipaddress.ip_address(parts[0])
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return str(address)
    return ""


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
    store.db_session().add(session)
    ctx = auth_context()
    ctx.resolved = True
    ctx.session, ctx.user = session, user
    ctx.token = session.token
    ctx.dont_remember = dont_remember
    ctx.mark_set()
    return session


def end_session() -> None:
    """Forget the request's session and expire its cookies (the row is deleted by the caller)."""
    ctx = auth_context()
    ctx.resolved = True
    ctx.session = ctx.user = None
    ctx.mark_clear()


def apply_cookies(response: Response) -> Response:
    """``after_request``: write what the request decided about the session cookies."""
    ctx: AuthContext | None = g.get("_better_auth")
    if ctx is None or ctx.cookie_action is None:
        return response
    if ctx.via_bearer and request.blueprint != "better_auth":
        # A Bearer client keeps no cookies: the app's own routes do not send it any. (The auth
        # routes answer exactly as Better Auth does, cookies included.)
        return response
    conf = settings()
    if ctx.cookie_action == "clear":
        clear_session_cookies(response, conf)
    elif ctx.session is not None:
        set_session_cookies(
            response,
            conf,
            ctx.session.token,
            ctx.session.expires_at,
            dont_remember=ctx.dont_remember,
            clear_dont_remember=ctx.had_dont_remember_cookie and not ctx.dont_remember,
        )
    return response


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

"""The endpoint contract: what a route declares, the hooks around it, and the view that runs it.

A route module (or a plugin) declares its endpoints into an :class:`Endpoints` list it owns;
nothing is registered at import. ``init_app`` builds each app's own blueprint from the lists of
the core and of the app's plugins (:mod:`flask_better_auth.blueprint`).

Every view runs Better Auth's steps in its order: parse the body (415/400), the origin and CSRF
checks (403), the redirect targets, schema validation (400), the before-hooks, the session
requirement (401/403), the handler, then the after-hooks.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from flask import Response, request
from werkzeug.urls import iri_to_uri

from .context import AuthContext, auth_context, resolve_session
from .decorators import require_fresh
from .errors import AuthError
from .models import Session, User
from .origin import check_origin, check_redirect_targets
from .ratelimit_rules import PathRule, Rule, path_glob
from .schemas import Field, parse_body, validate
from .state import settings

#: The session an endpoint needs: any (``"session"``), read from its source of truth bypassing
#: the caches (``"sensitive"``), or signed in recently (``"fresh"``); ``None``: none needed.
AuthLevel = Literal["session", "sensitive", "fresh"] | None

#: Headers of an answer no cache may keep: one carrying a session token, session list or a
#: one-time token (Better Auth sends them on get-session; we send them on every such answer).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

#: The arguments a handler may declare; the view passes each one the handler names.
HANDLER_ARGUMENTS = frozenset({"body", "session", "user"})


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response as JavaScript writes it: compact, key order kept, ``null`` allowed."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    response = Response(body, status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def empty_response(status: int) -> Response:
    """A response with no body and no content type (Better Auth's router 404)."""
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    return response


def redirect_response(location: str, status: int = 302) -> Response:
    """A redirect as Better Auth's router answers one: ``Location``, an empty body and
    ``content-type: application/json`` (not Flask's HTML "Redirecting…" page).

    The target is written as a URI (non-ASCII and control characters percent-encoded), so no
    value can break the header. Never cached: the target may carry a token.
    """
    response = Response(b"", status=status, mimetype="application/json", headers=NO_STORE)
    response.headers["Location"] = iri_to_uri(location)
    return response


def require_session(level: AuthLevel = "session") -> tuple[Session, User]:
    """The signed-in session and user, or ``401 UNAUTHORIZED`` (``403`` when not fresh).

    ``"sensitive"`` reads the session's source of truth, bypassing the caches.
    """
    resolved = resolve_session(sensitive=level == "sensitive")
    if resolved is None:
        raise AuthError(401, "UNAUTHORIZED")
    if level == "fresh":
        require_fresh(resolved[0].created_at)
    return resolved


@dataclass(frozen=True)
class Endpoint:
    """One declared endpoint: its route, what the view checks first, and its documentation.

    The handler takes the URL's variables and, when it names them, ``body`` (the validated
    body), ``session`` and ``user`` (the resolved ones; only with ``auth``). It returns a
    :class:`~flask.Response` or JSON data.
    """

    path: str
    handler: Callable[..., Any]
    methods: tuple[str, ...] = ("POST",)
    #: The body schema (validated, unknown keys dropped); ``None`` passes it unvalidated.
    fields: tuple[Field, ...] | None = None
    #: Also accept ``application/x-www-form-urlencoded`` bodies.
    allow_form: bool = False
    #: Apply sign-in's Fetch-Metadata CSRF rules to cookie-less requests.
    form_csrf: bool = False
    auth: AuthLevel = None
    #: ``False`` ignores any request body (Better Auth's ``disableBody``).
    body: bool = True
    #: ``False`` skips the origin check: for an endpoint a third party posts to by design
    #: (an OAuth ``form_post`` callback) and that changes nothing itself.
    origin_check: bool = True
    #: This endpoint's rate-limit rule, instead of the default one (a plugin's ``rateLimit``).
    rate_limit: Rule | None = None
    #: OpenAPI metadata: a one-line summary (default: the handler's docstring's first line).
    summary: str = ""
    tags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The Flask endpoint name (``better_auth.<name>``): the handler's name."""
        return self.handler.__name__

    def rate_limit_rule(self) -> PathRule | None:
        """The rule as the limiter matches it: this path, any value in its ``<variables>``."""
        if self.rate_limit is None:
            return None
        pattern = "".join(
            "*" if part.startswith("<") else part.replace("*", "\\*").replace("?", "\\?")
            for part in _split_variables(self.path)
        )
        matcher = path_glob(pattern)
        return PathRule(lambda path: matcher.fullmatch(path) is not None, self.rate_limit)


def _split_variables(path: str) -> list[str]:
    parts: list[str] = []
    rest = path
    while "<" in rest and ">" in rest:
        before, _, tail = rest.partition("<")
        variable, _, rest = tail.partition(">")
        parts += [before, f"<{variable}>"]
    return [*parts, rest]


class Endpoints(Sequence[Endpoint]):
    """The endpoints a route module or plugin owns, in declaration order.

    ``routes = Endpoints()`` then ``@routes.endpoint("/sign-in/email", fields=…)`` on each
    handler; the handler itself is left as it is (callable, testable).
    """

    def __init__(self) -> None:
        self._items: list[Endpoint] = []

    def __getitem__(self, index: Any) -> Any:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._items)

    def endpoint(
        self,
        path: str,
        *,
        methods: tuple[str, ...] = ("POST",),
        fields: tuple[Field, ...] | None = None,
        allow_form: bool = False,
        form_csrf: bool = False,
        auth: AuthLevel = None,
        body: bool = True,
        origin_check: bool = True,
        rate_limit: Rule | None = None,
        summary: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare the decorated handler as an endpoint (see :class:`Endpoint`)."""

        def decorator(handler: Callable[..., Any]) -> Callable[..., Any]:
            wanted = HANDLER_ARGUMENTS & set(inspect.signature(handler).parameters)
            if auth is None and wanted & {"session", "user"}:
                raise TypeError(f"{handler.__name__} takes the session but declares no auth level")
            doc = (handler.__doc__ or "").strip().splitlines()
            self._items.append(
                Endpoint(
                    path,
                    handler,
                    methods=methods,
                    fields=fields,
                    allow_form=allow_form,
                    form_csrf=form_csrf,
                    auth=auth,
                    body=body,
                    origin_check=origin_check,
                    rate_limit=rate_limit,
                    summary=summary if summary is not None else (doc[0] if doc else ""),
                    tags=tags,
                )
            )
            return handler

        return decorator


@dataclass
class HookContext:
    """What a hook sees of the request being answered.

    :ivar path: the request's path below the base path (``"/sign-in/email"``).
    :ivar endpoint: the endpoint answering it.
    :ivar body: the validated body; a before-hook may change it.
    :ivar response: the handler's response (after-hooks only); an after-hook may change its
        headers and cookies in place, or return a new response.
    """

    path: str
    endpoint: Endpoint
    body: Any
    response: Response | None = None

    @property
    def auth(self) -> AuthContext:
        """The request's auth context (token, resolved session, cookie marks)."""
        return auth_context()

    @property
    def new_session(self) -> Session | None:
        """The session this request created (sign-in, sign-up…), else ``None``.

        A second factor's after-hook on ``/sign-in/*`` reads it, deletes it and answers
        ``{"twoFactorRedirect": true}`` instead (Better Auth's ``ctx.context.newSession``).
        """
        return auth_context().new_session


#: A hook: ``fn(ctx)`` returning ``None`` (go on) or a response (JSON data or a Response).
HookFunction = Callable[[HookContext], Any]


@dataclass(frozen=True)
class Hook:
    """Run ``fn`` before or after the endpoints whose path matches ``path``.

    ``path`` is matched against the request's path below the base path: exactly, or as a glob
    when it holds ``*`` (``"/sign-in/*"``), like the rate limiter's custom rules. A before-hook
    returning a response answers instead of the handler; an after-hook's replaces the answer.
    """

    path: str
    fn: HookFunction
    when: Literal["before", "after"] = "after"
    _matcher: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matcher", path_glob(self.path) if "*" in self.path else None)

    def matches(self, path: str) -> bool:
        """Whether the hook applies to a request for ``path``."""
        if self._matcher is None:
            return path == self.path
        return self._matcher.fullmatch(path) is not None


def _as_response(result: Any) -> Response:
    return result if isinstance(result, Response) else json_response(result)


def make_view(endpoint: Endpoint, hooks: Sequence[Hook], base_path: str) -> Callable[..., Response]:
    """The Flask view of ``endpoint`` for one app, with that app's hooks."""
    wanted = HANDLER_ARGUMENTS & set(inspect.signature(endpoint.handler).parameters)

    def view(**url_values: Any) -> Response:
        conf = settings()
        raw: Any = {}
        reads_body = request.method not in ("GET", "HEAD")
        if endpoint.body and reads_body:
            raw = parse_body(request, allow_form=endpoint.allow_form, max_size=conf.max_body_size)
        if endpoint.origin_check:
            check_origin(
                conf, request, form_csrf=endpoint.form_csrf, bearer=auth_context().via_bearer
            )
        if reads_body:
            check_redirect_targets(raw if isinstance(raw, dict) else {}, conf, request)
        data = validate(raw, endpoint.fields) if endpoint.fields is not None else raw
        path = request.path[len(base_path) :] or "/"
        applying = [hook for hook in hooks if hook.matches(path)]
        ctx = HookContext(path, endpoint, data)
        for hook in applying:
            if hook.when == "before" and (answer := hook.fn(ctx)) is not None:
                return _as_response(answer)
        arguments = dict(url_values)
        if endpoint.auth is not None:
            session, user = require_session(endpoint.auth)
            arguments.update({"session": session, "user": user})
        arguments["body"] = ctx.body
        passed = {k: v for k, v in arguments.items() if k in wanted or k in url_values}
        response = _as_response(endpoint.handler(**passed))
        for hook in applying:
            if hook.when == "after":
                ctx.response = response
                if (answer := hook.fn(ctx)) is not None:
                    response = _as_response(answer)
        return response

    view.__name__ = endpoint.name
    view.__doc__ = endpoint.handler.__doc__
    view.__module__ = endpoint.handler.__module__  # the route module (or plugin) it belongs to
    return view


__all__ = [
    "NO_STORE",
    "AuthLevel",
    "Endpoint",
    "Endpoints",
    "Hook",
    "HookContext",
    "empty_response",
    "json_response",
    "make_view",
    "redirect_response",
    "require_session",
]

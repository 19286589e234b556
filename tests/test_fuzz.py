"""Property-based fuzzing of every route: no 5xx, no HTML or traceback, well-formed errors.

The routes are read from the app's ``url_map`` (so a new route is fuzzed without touching this
file; ``test_every_route_is_fuzzed`` checks them against docs/routes.rst and Better Auth's core
routes) and grouped by the module of their view. Hypothesis sends each group arbitrary methods,
paths, query strings, headers (``Content-Type`` variants, ``Origin``, random or tampered
cookies, junk Bearer tokens) and bodies (arbitrary JSON, objects with the route's own field
names mapped to arbitrary JSON, raw bytes), anonymously or signed in by cookie or Bearer.

Every answer must be below 500 and never an HTML page or a traceback; every error body is
``{"message": str[, "code": str]}`` or empty (the router's 404). Exceptions: ``GET /error`` is
Better Auth's HTML error page (it must escape what it shows), and Flask's ``/static`` route is
not ours and is not fuzzed.

Then every POST route gets every class of bad body (wrong content type, invalid JSON, non-object
JSON, too large, oversized or deeply nested values, wrong field types, NUL characters and lone
surrogates, odd form bodies), anonymously and signed in: each route x class is pinned by an
explicit example, Hypothesis draws more. A refused body gets Better Auth's error (the exact
status and code where it does not depend on the route's logic) and leaves every table as it was.

Deterministic (``derandomize=True``, no example database) and bounded: 100 examples per group
and per bad-body test (``FBA_FUZZ_EXAMPLES=1000`` for a deeper run), SQLite in memory, and
PostgreSQL for the bad bodies whose values reach the database.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from conftest import BASE, PASSWORD, SECRET, make_app, set_cookies
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.routing import Rule

from flask_better_auth.crypto import hmac_signature
from flask_better_auth.models import Session, User, metadata

AUTH = "/api/auth"
MAX_EXAMPLES = int(os.environ.get("FBA_FUZZ_EXAMPLES", "100"))
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _rules(app: Flask) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]


def _group(app: Flask, rule: Rule) -> str:
    view = app.view_functions[rule.endpoint]
    module: str = view.__module__
    return module.rsplit(".", 1)[-1] if module.startswith("flask_better_auth") else "app"


def _route_fields(app: Flask, rule: Rule) -> tuple[str, ...]:
    """The body field names the route validates (read from its declared ``Endpoint``)."""
    view = app.view_functions[rule.endpoint]
    declared = inspect.getclosurevars(view).nonlocals.get("endpoint")
    return tuple(field.name for field in getattr(declared, "fields", None) or ())


def _discover() -> dict[str, list[str]]:
    app = make_app("sqlite://", create_tables=False)
    groups: dict[str, list[str]] = defaultdict(list)
    for rule in _rules(app):
        groups[_group(app, rule)].append(rule.rule)
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()
    return dict(groups)


GROUPS = _discover()


@dataclass
class Target:
    app: Flask
    rules: dict[str, list[Rule]]
    fields: dict[str, tuple[str, ...]]
    all_fields: tuple[str, ...]
    emails: Iterator[int]
    cookies: tuple[str, str]  # the session-token and "don't remember" cookie names

    def __post_init__(self) -> None:
        self.rule_strategies = {
            group: st.sampled_from(rules) for group, rules in self.rules.items()
        }
        self.cookie_names = st.sampled_from([*self.cookies, "x"])


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    app = make_app(
        "sqlite://",  # in memory (one shared connection): no fsync per commit
        EMAIL_BACKEND="outbox",  # the email flows run too, into a file
        EMAIL_OUTBOX=str(tmp / "outbox.jsonl"),
    )
    rules: dict[str, list[Rule]] = defaultdict(list)
    fields: dict[str, tuple[str, ...]] = {}
    for rule in _rules(app):
        rules[_group(app, rule)].append(rule)
        fields[rule.rule] = _route_fields(app, rule)
    all_fields = tuple(sorted({name for names in fields.values() for name in names}))
    names = app.extensions["better_auth"].settings.cookies
    cookies = (names.session_token, names.dont_remember)
    yield Target(app, dict(rules), fields, all_fields, count(), cookies)
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


# --- strategies ----------------------------------------------------------------------------------

ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
any_text = st.text(max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text
    | st.sampled_from(["", "a@b.co", "ann@example.com", PASSWORD, BASE, "/cb", "x" * 300]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=8,
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "application/xml",
    "",
]
QUERY_NAMES = [
    "token",
    "callbackURL",
    "error",
    "error_description",
    "disableCookieCache",
    "disableRefresh",
    "currentURL",
]
origins = st.sampled_from([None, BASE, "null", "http://evil.example", "http://localhost:1"])
# Strategies are built once, here or per route (cached): building one per draw made Hypothesis
# re-validate it every time, a third of the fuzzer's run time.
body_kinds = st.sampled_from(["none", "json", "fields", "raw"])
content_types = (
    st.just("application/json") | st.sampled_from(CONTENT_TYPES) | ascii_text | st.none()
)
raw_bodies = st.binary(max_size=200)
queries = st.dictionaries(st.sampled_from(QUERY_NAMES) | ascii_text, any_text, max_size=3)
header_names = st.sets(st.sampled_from(["Referer", "Sec-Fetch-Site", "User-Agent"]))
header_values = st.sampled_from(["same-origin", "cross-site", BASE + "/x"])
auths = st.sampled_from(
    ["none", "cookie", "bearer", "signed-bearer", "tampered", "junk-cookie", "junk-bearer"]
)
cookie_values = ascii_text.filter(lambda v: ";" not in v)
path_values = any_text.filter(bool)


@functools.cache
def _field_objects(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(names), json_values, max_size=len(names))


@functools.cache
def _methods(allowed: tuple[str, ...], any_method: bool) -> st.SearchStrategy[str]:
    methods = st.sampled_from(allowed)
    return methods | st.sampled_from(METHODS) if any_method else methods


@st.composite
def bodies(draw: st.DrawFn, names: tuple[str, ...]) -> tuple[bytes | None, str | None]:
    """A raw body and the Content-Type it is sent with."""
    kind = draw(body_kinds)
    content_type = draw(content_types)
    if kind == "none":
        return None, content_type
    if kind == "raw":
        return draw(raw_bodies), content_type
    value = draw(json_values) if kind == "json" else draw(_field_objects(names))
    if content_type == "application/x-www-form-urlencoded" and isinstance(value, dict):
        flat = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return urlencode(flat).encode(), content_type
    return json.dumps(value).encode(), content_type


@functools.cache
def _bodies(names: tuple[str, ...]) -> st.SearchStrategy[tuple[bytes | None, str | None]]:
    return bodies(names)


def _path(draw: st.DrawFn, rule: Rule) -> str:
    def fill(match: re.Match[str]) -> str:
        converter = match.group(1) or ""
        value = draw(path_values)
        slashes = converter not in ("", "default", "string")  # path-like: slashes allowed
        return quote(value, safe="/" if slashes else "")

    return re.sub(r"<(?:(\w+(?:\([^)]*\))?):)?\w+>", fill, rule.rule)


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    body: bytes | None
    headers: dict[str, str]
    auth: str


@st.composite
def requests(draw: st.DrawFn, target: Target, group: str) -> Req:
    rule = draw(target.rule_strategies[group])
    allowed = tuple(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
    # Any method on the auth routes (a wrong one is the router's 404); only the allowed ones
    # on the app's own routes (a wrong one there is Flask's 405 page, not ours).
    method = draw(_methods(allowed, group != "app"))
    names = target.fields.get(rule.rule) or target.all_fields
    body, content_type = draw(_bodies(names))
    query = draw(queries)
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    origin = draw(origins)
    if origin is not None:
        headers["Origin"] = origin
    for name in draw(header_names):
        headers[name] = draw(header_values)
    auth = draw(auths)
    if auth == "junk-cookie":
        name = draw(target.cookie_names)
        headers["Cookie"] = f"{name}={draw(cookie_values)}"
    elif auth == "junk-bearer":
        headers["Authorization"] = "Bearer " + draw(ascii_text)
    return Req(method, _path(draw, rule), query, body, headers, auth)


# --- the property ----------------------------------------------------------------------------


def _sign_in_headers(target: Target, auth: str, flip: int) -> dict[str, str]:
    """A fresh user and session for one example (the example may delete or sign it out)."""
    client = target.app.test_client(use_cookies=False)
    email = f"fuzz{next(target.emails)}@example.com"
    response = client.post(
        "/api/auth/sign-up/email",
        json={"name": "Fuzz", "email": email, "password": PASSWORD},
        headers={"Origin": BASE},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    cookie = target.cookies[0]
    signed = set_cookies(response)[cookie]["value"]
    if auth == "cookie":
        return {"Cookie": f"{cookie}={signed}"}
    if auth == "bearer":
        return {"Authorization": f"Bearer {response.get_json()['token']}"}
    if auth == "signed-bearer":
        return {"Authorization": f"Bearer {response.headers['set-auth-token']}"}
    index = flip % len(signed)  # "tampered": one character of the signed cookie changed
    swapped = "A" if signed[index] != "A" else "B"
    return {"Cookie": f"{cookie}={signed[:index]}{swapped}{signed[index + 1 :]}"}


def _check(req: Req, response: Any) -> None:
    where = f"{req.method} {req.path}?{urlencode(req.query)} ({req.auth})"
    status = response.status_code
    data: bytes = response.get_data()
    content_type = response.headers.get("Content-Type", "")
    assert status < 500, (where, status, data[:500])
    assert b"Traceback" not in data, (where, data[:500])
    is_error_page = req.path == "/api/auth/error" and req.method == "GET"
    if is_error_page and status == 200:
        assert content_type.startswith("text/html"), where
        for value in req.query.values():
            if "<" in value:
                assert value.encode() not in data, (where, "unescaped", value)
        return
    assert "html" not in content_type.lower(), (where, status, content_type, data[:300])
    lowered = data[:200].lower()
    assert b"<html" not in lowered and b"<!doctype" not in lowered, (where, data[:300])
    if status >= 400:
        if not data:
            assert status == 404 or not content_type, (where, status, content_type)
            return
        assert content_type.startswith("application/json"), (where, status, content_type)
        body = json.loads(data)
        assert isinstance(body, dict) and set(body) <= {"message", "code"}, (where, body)
        assert isinstance(body.get("message"), str), (where, body)
        assert isinstance(body.get("code", ""), str), (where, body)
    elif content_type.startswith("application/json") and data:
        json.loads(data)


@pytest.mark.parametrize("group", sorted(GROUPS))
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_fuzz_routes(target: Target, group: str, data: st.DataObject) -> None:
    req = data.draw(requests(target, group), label="request")
    headers = dict(req.headers)
    if req.auth in ("cookie", "bearer", "signed-bearer", "tampered"):
        flip = data.draw(st.integers(min_value=0, max_value=200), label="flip")
        headers.update(_sign_in_headers(target, req.auth, flip))
    client = target.app.test_client(use_cookies=False)
    response = client.open(
        req.path,
        method=req.method,
        query_string=req.query,
        data=req.body,
        headers=headers,
    )
    _check(req, response)


DOCS = Path(__file__).resolve().parent.parent / "docs" / "routes.rst"

#: Better Auth 1.7's core email-and-password routes (better-auth-1.7.md section 2), which we
#: must serve: a route dropped from the code and the docs alike still fails the test below.
CORE_ROUTES = {
    "/sign-up/email",
    "/sign-in/email",
    "/sign-out",
    "/get-session",
    "/list-sessions",
    "/revoke-session",
    "/revoke-sessions",
    "/revoke-other-sessions",
    "/update-user",
    "/change-password",
    "/verify-password",
    "/change-email",
    "/send-verification-email",
    "/verify-email",
    "/request-password-reset",
    "/reset-password/<token>",
    "/reset-password",
    "/delete-user",
    "/delete-user/callback",
    "/ok",
    "/error",
}


def _documented_routes() -> dict[str, str]:
    """``{path: method}`` from the table of docs/routes.rst."""
    rows = re.findall(r"^\s*\* - ([A-Z]+)\n\s*- ``(/[^`]*)``", DOCS.read_text("utf-8"), re.M)
    return {path: method for method, path in rows}


def test_every_route_is_fuzzed() -> None:
    """The fuzzed routes are exactly the documented ones (checked against a list that is not
    read from the app), the base path's catch-all 404s and the test app's own two routes: an
    undocumented, unfuzzed or missing route fails here."""
    documented = _documented_routes()
    assert set(CORE_ROUTES) <= set(documented), sorted(set(CORE_ROUTES) - set(documented))
    expected = {f"{AUTH}{path}" for path in documented} | {
        AUTH,  # the catch-all 404s
        f"{AUTH}/",
        f"{AUTH}/<better_auth_rest:unknown>",
        "/api/me",  # make_app's own routes
        "/api/open",
    }
    fuzzed = {rule for rules in GROUPS.values() for rule in rules}
    assert sorted(fuzzed - expected) == [], "fuzzed but not documented"
    assert sorted(expected - fuzzed) == [], "documented but not fuzzed (or not served)"
    # The documented method is one the route answers (not the router's 404).
    app = make_app("sqlite://", create_tables=False)
    methods = {rule.rule: rule.methods or set() for rule in _rules(app)}
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()
    for path, method in documented.items():
        assert method in methods[f"{AUTH}{path}"], (method, path)


def test_groups_know_their_fields(target: Target) -> None:
    assert {"name", "email", "password"} <= set(target.fields["/api/auth/sign-up/email"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/auth",
        "/api/auth/",
        "/api/auth//x",
        "/api/auth/0%0A",
        "/api/auth/a/b%0Ac",
        "/api/auth/ok/",
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_found_by_fuzzing_unknown_auth_paths_are_empty_404s(
    target: Target, path: str, method: str
) -> None:
    """Paths Werkzeug's ``path`` converter misses (a newline, a leading slash, nothing at all)."""
    response = target.app.test_client().open(path, method=method)
    assert response.status_code == 404
    assert response.get_data() == b"" and "Content-Type" not in response.headers


# --- bad bodies: every POST route x every class of bad body ---------------------------------
#
# Each class of bad body is pinned on every POST route, anonymously and signed in, by explicit
# examples (which member of the class rotates with the route); Hypothesis then draws more
# route x class x member combinations. The classes that only exercise parsing and validation
# (content type, JSON syntax, non-object JSON, body size) run on SQLite only: they never reach
# the database. The classes whose values are stored run on PostgreSQL too, which refuses what
# SQLite takes (NUL characters, lone surrogates).

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 1024 * 1024  # BETTER_AUTH_MAX_BODY_SIZE (the default) of the bad-body app

#: Every body field of the core routes: each bad value goes into one of them.
FIELDS = (
    "name",
    "email",
    "password",
    "image",
    "callbackURL",
    "rememberMe",
    "newPassword",
    "currentPassword",
    "revokeOtherSessions",
    "token",
    "redirectTo",
    "newEmail",
)

#: A body every route would accept, so one corrupted field reaches the deepest checks.
BASE_BODY: dict[str, Any] = {
    "name": "Robot",
    "email": "robot@example.com",
    "password": PASSWORD,
    "image": None,
    "callbackURL": "/cb",
    "rememberMe": True,
    "newPassword": PASSWORD,
    "currentPassword": PASSWORD,
    "revokeOtherSessions": False,
    "token": "not-a-token",
    "redirectTo": "/r",
    "newEmail": "robot2@example.com",
}


@dataclass(frozen=True)
class BadBody:
    kind: str
    label: str
    raw: bytes
    content_type: str | None


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@dataclass(frozen=True)
class BadValue:
    """A bad value for some body field (chosen when the body is made), sent alone or in an
    otherwise valid body."""

    kind: str
    value: Any
    whole: bool

    def body(self, field: str) -> BadBody:
        where = "in a valid body" if self.whole else "alone"
        label = f"{field}={repr(self.value)[:30]} {where}"
        raw = json.dumps({**BASE_BODY, field: self.value} if self.whole else {field: self.value})
        return BadBody(self.kind, label, raw.encode(), JSON)


def _field_cases(kind: str, values: list[Any]) -> list[BadValue]:
    return [BadValue(kind, value, whole) for value in values for whole in (False, True)]


def _raw_cases(kind: str, bodies: list[tuple[bytes, str | None]]) -> list[BadBody]:
    return [BadBody(kind, repr(raw[:50]), raw, content_type) for raw, content_type in bodies]


_ROBOT = b'{"email":"robot@example.com","password":"correct-horse-1"}'

BAD_BODIES: dict[str, list[BadBody | BadValue]] = {
    "content-type": _raw_cases(
        "content-type",
        [
            (_ROBOT, None),
            (_ROBOT, "text/plain"),
            (_ROBOT, "application/xml"),
            (_ROBOT, "text/json"),
            (
                b"--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--",
                "multipart/form-data; boundary=b",
            ),
        ],
    ),
    "invalid-json": _raw_cases(
        "invalid-json",
        [
            (b"{bad", JSON),
            (b"[1,", JSON),
            (b'{"a":1,}', JSON),
            (b"\xff\xfe", JSON),
            (b'{"name": "\xff"}', JSON),
            (b"NaN", JSON),
            (b'{"password": NaN}', JSON),
            (b'{"name": Infinity, "email": -Infinity}', JSON),
            (b"{'email': 'robot@example.com'}", JSON),
        ],
    ),
    "non-object": _raw_cases(
        "non-object",
        [
            (b"null", JSON),
            (b"[]", JSON),
            (b'[{"email":"robot@example.com"}]', JSON),
            (b'"a string"', JSON),
            (b"42", JSON),
            (b"true", JSON),
        ],
    ),
    "too-large": _raw_cases(
        "too-large",
        [
            (b'{"name":"' + b"x" * MAX_BODY + b'"}', JSON),
            (b"[" * (MAX_BODY + 1), JSON),
            (b"name=" + b"x" * MAX_BODY, FORM),
        ],
    ),
    "oversize": _raw_cases(
        "oversize",
        [
            (b"[" * 50_000 + b"]" * 50_000, JSON),  # deeper than Python's recursion limit
            (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, JSON),
            (b'{"name": ' + b"9" * 5000 + b"}", JSON),  # past Python's int-digits limit
            (b'{"name": 1e400}', JSON),
        ],
    )
    + _field_cases("oversize", [_nested(200), "a" * 100_000]),
    "wrong-type": _field_cases(
        "wrong-type", [1.5, True, None, ["robot@example.com"], {"$ne": None}, ""]
    ),
    "odd-text": _field_cases(
        "odd-text", ["nul\u0000in@example.com", "lone\udfff@example.com", "é😀\u202e\ufeff"]
    )
    + _raw_cases(
        "odd-text",
        [
            (
                b'{"name": "\\ud800", "email": "\\udc00@example.com", "password": "\\ud83d",'
                b' "token": "\\udfff", "newPassword": "\\ud800\\ud800\\ud800\\ud800\\ud800"}',
                JSON,
            ),
            (b'{"name": "\\u0000", "email": "robot@example.com", "password": "\\u0000"}', JSON),
            (b'{"email":"robot@example.com","email":5}', JSON),
        ],
    ),
    "form": _raw_cases(
        "form",
        [
            (b"email=robot%40example.com&password=correct-horse-1&name=R", FORM),
            (b"email=%FF%FE&password=%00&name[]=1&name[]=2", FORM),
            (b"rememberMe=true&email=robot%40example.com&password=x", FORM),
            (b"token=%00&newPassword=" + b"%C0" * 40, FORM),
        ],
    ),
}
#: The classes whose values can reach the database (also run on PostgreSQL).
STORED = ("oversize", "wrong-type", "odd-text", "form")


def _post_routes(app: Flask) -> list[str]:
    """Every POST route under the base path, the catch-all 404s included."""
    return sorted(
        re.sub(r"<[^>]+>", "x", rule.rule)
        for rule in _rules(app)
        if rule.rule.startswith(AUTH) and "POST" in (rule.methods or ())
    )


def _discover_post_routes() -> list[str]:
    app = make_app("sqlite://", create_tables=False)
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()
    return _post_routes(app)


POST_ROUTES = _discover_post_routes()


class Actor:
    """A signed-in device; when a request ended its session (sign-out, revoke, delete-user…)
    the next request gets a fresh session row (or, if the user is gone, a new user)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client(use_cookies=False)
        self.users = 0
        self.user_id = ""
        self.token = ""
        self.stale = True  # the last request may have ended the session

    def ensure(self) -> bool:
        """Make sure the session is alive; whether rows were written for that."""
        if not self.stale:
            return False
        self.stale = False
        with self.app.app_context():
            db = self.app.extensions["better_auth"].db
            if db.session.execute(select(Session).filter_by(token=self.token)).first():
                return False
            if self.user_id and db.session.get(User, self.user_id) is not None:
                now = datetime.now(UTC).replace(microsecond=0)
                self.token = secrets.token_hex(16)
                db.session.add(
                    Session(
                        id=secrets.token_hex(16),
                        token=self.token,
                        user_id=self.user_id,
                        expires_at=now + timedelta(days=7),
                        created_at=now,
                        updated_at=now,
                        ip_address="",
                        user_agent="",
                    )
                )
                db.session.commit()
                return True
        self.users += 1
        body = {"name": "Actor", "email": f"actor{self.users}@example.com", "password": PASSWORD}
        response = self.client.post(f"{AUTH}/sign-up/email", json=body, headers={"Origin": BASE})
        assert response.status_code == 200, response.get_data(as_text=True)
        self.user_id, self.token = response.get_json()["user"]["id"], response.get_json()["token"]
        return True

    def cookie(self) -> dict[str, str]:
        value = quote(f"{self.token}.{hmac_signature(SECRET, self.token)}", safe="")
        return {"Cookie": f"better-auth.session-token={value}"}


class BadBodyTarget:
    """The app, its signed-in actor, and the rows of every table as last seen (a refused
    request must leave them all as they were)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.actor = Actor(app)
        self.tables: list[list[tuple[Any, ...]]] | None = None  # None: changed since

    def snapshot(self) -> list[list[tuple[Any, ...]]]:
        with self.app.app_context():
            db = self.app.extensions["better_auth"].db
            tables = [
                sorted(map(tuple, db.session.execute(table.select()).all()), key=repr)
                for table in metadata.sorted_tables
            ]
            db.session.remove()
        return tables


#: The code-less error bodies Better Auth documents (``APIError.fromStatus(status, {message})``).
CODELESS = {"No fields to update", "Email is the same", "Verification email isn't enabled"}

#: Routes that never read a body: Better Auth's 404 for anything unknown, and get-session
#: (``disableBody``), which refuses POST before looking at it.
BODYLESS = {
    f"{AUTH}": (404, None),
    f"{AUTH}/": (404, None),
    f"{AUTH}/x": (404, None),
    f"{AUTH}/get-session": (405, "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED"),
}
#: Routes whose 401 (no session) has an empty body, as Better Auth's (oauth-wire.md §9).
EMPTY_401 = {f"{AUTH}/get-access-token"}
#: What every other route answers to these classes, whatever the route: the body is parsed
#: (size, content type, JSON) before anything else, as Better Auth's router does.
PARSE_ERRORS = {
    "too-large": (413, "PAYLOAD_TOO_LARGE"),
    "content-type": (415, "UNSUPPORTED_MEDIA_TYPE"),
    "invalid-json": (400, "BAD_REQUEST"),
}
MESSAGES = {  # the fixed ones (415's names the content type)
    "PAYLOAD_TOO_LARGE": "Request body is too large",
    "BAD_REQUEST": "Invalid JSON in request body",
    "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED": (
        "POST method requires deferSessionRefresh to be enabled in session config"
    ),
}
#: Routes without a body schema (better-auth-1.7.md §2.7-2.9): a non-object body is not a
#: validation error there.
UNVALIDATED = {f"{AUTH}/revoke-sessions", f"{AUTH}/revoke-other-sessions", f"{AUTH}/update-user"}


def _expected(route: str, kind: str, signed_in: bool) -> tuple[int, str | None] | None:
    """The exact (status, code) a bad body of this class gets, where it does not depend on the
    body's details."""
    if route in BODYLESS:
        return BODYLESS[route]
    if kind in PARSE_ERRORS:
        return PARSE_ERRORS[kind]
    if kind != "non-object":
        return None
    if route not in UNVALIDATED:
        return 400, "VALIDATION_ERROR"  # zod: "[body] Invalid input: expected object, …"
    if not signed_in:
        return 401, "UNAUTHORIZED"
    if route == f"{AUTH}/update-user":
        return 400, "BODY_MUST_BE_AN_OBJECT"
    return 200, None  # the revoke routes ignore the body


def _send_bad_body(target: BadBodyTarget, signed_in: bool, route: str, case: BadBody) -> None:
    headers = {"Origin": BASE}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    if signed_in:
        if target.actor.ensure():
            target.tables = None
        headers.update(target.actor.cookie())
    if target.tables is None:
        target.tables = target.snapshot()
    response = target.app.test_client(use_cookies=False).post(route, data=case.raw, headers=headers)
    where = f"POST {route} {case.kind}: {case.label} ({'signed in' if signed_in else 'anonymous'})"
    status, data = response.status_code, response.get_data()
    if signed_in:  # only a success (or a 401: the session is gone) can have ended the session
        target.actor.stale = status < 300 or status == 401
    assert status < 500, (where, status, data[:300])
    expected = _expected(route, case.kind, signed_in)
    if expected is not None:
        assert status == expected[0], (where, status, data[:300])
    if status == 302 and route.startswith(f"{AUTH}/callback/"):
        # An OAuth form_post callback: any object body is sent on to the GET (nothing stored).
        assert target.snapshot() == target.tables, where
        return
    if 200 <= status < 300:
        target.tables = None
        assert response.mimetype == JSON, where
        json.loads(data)
        return
    assert 400 <= status < 500, (where, status)
    # A refused request leaves every row as it was: nothing half-written.
    before, target.tables = target.tables, target.snapshot()
    assert target.tables == before, where
    if not data:
        if status == 401 and route in EMPTY_401:
            assert response.mimetype == JSON, where
        else:
            assert status == 404 and "Content-Type" not in response.headers, where
        code = None
    else:
        assert response.mimetype == JSON, (where, response.mimetype)
        body = json.loads(data)
        assert isinstance(body, dict), (where, body)
        if list(body) == ["message"]:
            assert body["message"] in CODELESS, (where, body)
            code = None
        else:
            assert list(body) == ["message", "code"], (where, body)
            assert isinstance(body["message"], str) and body["message"], (where, body)
            assert re.fullmatch(r"[A-Z_]+", body["code"]), (where, body)
            code = body["code"]
            if code in MESSAGES:
                assert body["message"] == MESSAGES[code], (where, body)
            elif code == "UNSUPPORTED_MEDIA_TYPE":
                assert body["message"].endswith("Allowed types: application/json") or (
                    body["message"].endswith("application/x-www-form-urlencoded, application/json")
                ), (where, body)
    if expected is not None:
        assert code == expected[1], (where, status, data[:300])


BAD_BODY_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


_MEMBERS = {kind: st.sampled_from(members) for kind, members in BAD_BODIES.items()}
_FIELD_NAMES = st.sampled_from(FIELDS)


@st.composite
def bad_bodies(draw: st.DrawFn, kinds: tuple[str, ...]) -> BadBody:
    """A class (each as likely), a member of it, and a field for a bad value."""
    member = draw(_MEMBERS[draw(st.sampled_from(kinds))])
    return member.body(draw(_FIELD_NAMES)) if isinstance(member, BadValue) else member


def pin_every_route_and_kind(kinds: tuple[str, ...]) -> Callable[[Any], Any]:
    """Explicit examples: every route x class x (anonymous, signed in) and every member of
    every class on a route that reads bodies (the members and fields rotate)."""
    reading = [route for route in POST_ROUTES if route not in BODYLESS]
    bodyless = [route for route in POST_ROUTES if route in BODYLESS]
    pairs = [
        (route, signed_in)
        for routes in (reading, bodyless)
        for signed_in in (False, True)
        for route in routes
    ]

    def decorate(test: Any) -> Any:
        for kind in kinds:
            members = BAD_BODIES[kind]
            assert len(members) <= 2 * len(reading), f"pin {kind}'s members on more routes"
            for i, (route, signed_in) in enumerate(pairs):
                member = members[i % len(members)]
                case = (
                    member.body(FIELDS[i % len(FIELDS)]) if isinstance(member, BadValue) else member
                )
                test = example(route=route, case=case, signed_in=signed_in)(test)
        return test

    return decorate


@pytest.fixture
def bad_body_app(request: pytest.FixtureRequest) -> Iterator[BadBodyTarget]:
    """The app and its signed-in actor, shared by the examples of one test."""
    url = "sqlite://" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    app = make_app(url, MAX_BODY_SIZE=MAX_BODY)
    yield BadBodyTarget(app)
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


@pytest.mark.parametrize("bad_body_app", ["sqlite"], indirect=True)
@BAD_BODY_SETTINGS
@pin_every_route_and_kind(tuple(BAD_BODIES))
@given(
    route=st.sampled_from(POST_ROUTES), case=bad_bodies(tuple(BAD_BODIES)), signed_in=st.booleans()
)
def test_bad_bodies(
    bad_body_app: BadBodyTarget, route: str, case: BadBody, signed_in: bool
) -> None:
    """Every class of bad body on every POST route: a 4xx in Better Auth's shape (or a 2xx
    where the body is acceptable after all), never a 5xx, and nothing written on refusal."""
    _send_bad_body(bad_body_app, signed_in, route, case)


@pytest.mark.parametrize("bad_body_app", ["postgres"], indirect=True)
@BAD_BODY_SETTINGS
@pin_every_route_and_kind(STORED)
@given(route=st.sampled_from(POST_ROUTES), case=bad_bodies(STORED), signed_in=st.booleans())
def test_bad_bodies_stored(
    bad_body_app: BadBodyTarget, route: str, case: BadBody, signed_in: bool
) -> None:
    """The classes whose values reach the database, on PostgreSQL (which refuses NUL
    characters that SQLite stores)."""
    _send_bad_body(bad_body_app, signed_in, route, case)

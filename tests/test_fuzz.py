"""Property-based fuzzing of every route: no 5xx, no HTML or traceback, well-formed errors.

The routes are read from the app's ``url_map`` (so a new route is fuzzed without touching this
file) and grouped by the module of their view. Hypothesis sends each group arbitrary methods,
paths, query strings, headers (``Content-Type`` variants, ``Origin``, random or tampered
cookies, junk Bearer tokens) and bodies (arbitrary JSON, objects with the route's own field
names mapped to arbitrary JSON, raw bytes), anonymously or signed in by cookie or Bearer.

Every answer must be below 500 and never an HTML page or a traceback; every error body is
``{"message": str[, "code": str]}`` or empty (the router's 404). Exceptions: ``GET /error`` is
Better Auth's HTML error page (it must escape what it shows), and Flask's ``/static`` route is
not ours and is not fuzzed.

Deterministic (``derandomize=True``, no example database) and bounded: 100 examples per group
(``FBA_FUZZ_EXAMPLES=1000`` for a deeper run), SQLite in memory.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from conftest import BASE, PASSWORD, make_app, set_cookies
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.routing import Rule

MAX_EXAMPLES = int(os.environ.get("FBA_FUZZ_EXAMPLES", "100"))
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _rules(app: Flask) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]


def _group(app: Flask, rule: Rule) -> str:
    view = app.view_functions[rule.endpoint]
    module: str = view.__module__
    return module.rsplit(".", 1)[-1] if module.startswith("flask_better_auth") else "app"


def _route_fields(app: Flask, rule: Rule) -> tuple[str, ...]:
    """The body field names the route validates (read from its ``endpoint`` closure)."""
    view = app.view_functions[rule.endpoint]
    with_fields = inspect.getclosurevars(view).nonlocals.get("fields")
    return tuple(field.name for field in with_fields or ())


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


@st.composite
def bodies(draw: st.DrawFn, names: tuple[str, ...]) -> tuple[bytes | None, str | None]:
    """A raw body and the Content-Type it is sent with."""
    kind = draw(st.sampled_from(["none", "json", "fields", "raw"]))
    content_type = draw(
        st.just("application/json") | st.sampled_from(CONTENT_TYPES) | ascii_text | st.none()
    )
    if kind == "none":
        return None, content_type
    if kind == "raw":
        return draw(st.binary(max_size=200)), content_type
    if kind == "json":
        value = draw(json_values)
    else:
        value = draw(st.dictionaries(st.sampled_from(names), json_values, max_size=len(names)))
    if content_type == "application/x-www-form-urlencoded" and isinstance(value, dict):
        flat = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
        return urlencode(flat).encode(), content_type
    return json.dumps(value).encode(), content_type


def _path(draw: st.DrawFn, rule: Rule) -> str:
    def fill(match: re.Match[str]) -> str:
        converter = match.group(1) or ""
        value = draw(any_text.filter(bool))
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
    rule = draw(st.sampled_from(target.rules[group]))
    allowed = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
    # Any method on the auth routes (a wrong one is the router's 404); only the allowed ones
    # on the app's own routes (a wrong one there is Flask's 405 page, not ours).
    methods = st.sampled_from(allowed)
    method = draw(methods if group == "app" else methods | st.sampled_from(METHODS))
    names = target.fields.get(rule.rule) or target.all_fields
    body, content_type = draw(bodies(names))
    query = draw(st.dictionaries(st.sampled_from(QUERY_NAMES) | ascii_text, any_text, max_size=3))
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    origin = draw(origins)
    if origin is not None:
        headers["Origin"] = origin
    for name in draw(st.sets(st.sampled_from(["Referer", "Sec-Fetch-Site", "User-Agent"]))):
        headers[name] = draw(st.sampled_from(["same-origin", "cross-site", BASE + "/x"]))
    auth = draw(
        st.sampled_from(
            ["none", "cookie", "bearer", "signed-bearer", "tampered", "junk-cookie", "junk-bearer"]
        )
    )
    if auth == "junk-cookie":
        name = draw(st.sampled_from([*target.cookies, "x"]))
        headers["Cookie"] = f"{name}={draw(ascii_text.filter(lambda v: ';' not in v))}"
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


def test_every_route_is_fuzzed() -> None:
    """The groups cover every rule but ``/static`` (a guard against a discovery that breaks)."""
    fuzzed = {rule for rules in GROUPS.values() for rule in rules}
    assert "/api/auth/sign-up/email" in fuzzed and "/api/me" in fuzzed
    assert len(fuzzed) >= 20, sorted(fuzzed)


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

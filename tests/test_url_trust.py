"""URLs and origins are trusted only as a browser reads them (issue #7, points 1, 2, 5, 8, 9).

A differential test first: a generated corpus of tricky URLs is checked against exact and
wildcard trusted origins, and every URL the checker accepts is parsed again, without our
filters, by a WHATWG parser (ada-url, and Node's ``new URL`` when Node is installed): its origin
must be one the configuration trusts, by an independent oracle written here. Then the same
rules at the HTTP level (callbackURL, redirectTo, Origin, Referer, CORS), on SQLite and
PostgreSQL where a session could be created.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ada_url import URL
from conftest import BASE, ORIGIN, PASSWORD, SECRET, make_app, sign_up
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from flask_better_auth import BetterAuth, ConfigError
from flask_better_auth.models import Session
from flask_better_auth.origin import cors_origin_regexes, is_safe_relative, is_trusted
from flask_better_auth.settings import DEFAULTS, AuthSettings

AUTH = "/api/auth"
SITE = "https://app.example.com"
TRUSTED = ["http://localhost:5173", "https://*.example.com", "*.example.org", "myapp://"]


def auth_settings(**overrides: Any) -> AuthSettings:
    config = {
        **DEFAULTS,
        "BETTER_AUTH_SECRET": SECRET,
        "BETTER_AUTH_BASE_URL": SITE,
        "BETTER_AUTH_TRUSTED_ORIGINS": TRUSTED,
        "BETTER_AUTH_SCRYPT_N": 1024,
    }
    config.update({f"BETTER_AUTH_{k}": v for k, v in overrides.items()})
    return AuthSettings.from_config(config, testing=True)


CONF = auth_settings()


LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def oracle_trusts(origin_scheme: str, host: str, port: str) -> bool:
    """The trusted list above, written out by hand over an already-parsed URL."""
    if origin_scheme == "myapp:":
        return True
    if origin_scheme not in ("http:", "https:"):
        return False
    labels = host.split(".")
    under = all(label and set(label) <= set(LABEL_CHARS) for label in labels)
    if origin_scheme == "http:" and host == "localhost" and port == "5173":
        return True
    if port:
        return False
    if origin_scheme == "https:" and host.endswith(".example.com") and len(labels) >= 3 and under:
        return True  # also covers the base URL, https://app.example.com
    return host.endswith(".example.org") and len(labels) >= 3 and under


def whatwg(value: str, base: str | None = None) -> URL | None:
    """A plain WHATWG parse, none of the checker's own filters."""
    try:
        return URL(value, base)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# the corpus

SCHEMES = [
    "https://",
    "http://",
    "HTTPS://",
    "https:",
    "https:/",
    "https:\\\\",
    "//",
    "/\\",
    "\\\\",
    "javascript://",
    "myapp://",
    "ws://",
    " https://",
    "h\tttps://",
    "blob:https://",
    "https:\n//",
]
USERINFO = ["", "user@", "user:pw@", "evil.com@", "a.example.com@", "x%40evil.com@", "@"]
HOSTS = [
    "app.example.com",
    "a.b.example.com",
    "example.com",
    "evil.com",
    "evil.com\\.example.com",
    "aexample.com.evil.com",
    "example.com.evil.com",
    "a.example.com.",
    "A.EXAMPLE.COM",
    "%61.example.com",
    "a%2eexample.com",
    "a.example.com%2e.evil.com",
    "xn--80ak6aa92e.example.com",
    "\u0435\u0445\u0430mple.com",
    "a.ex\u0430mple.com",
    "\u0430.example.com",
    "a.example.com\u3002evil.com",
    "a.example\uff0ecom",
    "127.0.0.1",
    "0x7f.1",
    "[::1]",
    "a.example.com\tevil",
    "x.example.org",
    "x.example.org.evil.net",
    "localhost",
    "evil.com#.example.com",
    "evil.com?.example.com",
    "a.example.com%00",
    "a..example.com",
    "*.example.com",
]
PORTS = [
    "",
    ":443",
    ":80",
    ":5173",
    ":8443",
    ":0",
    ":99999",
    ":-1",
    ":0x50",
    ":",
    ":443@evil.com",
    ":\t443",
]
PATHS = [
    "",
    "/",
    "/cb?x=1",
    "\\evil.com",
    "/\\evil.com",
    "@evil.com",
    "#@evil.com",
    "?@evil.com",
    "/%2F%2Fevil.com",
    "\r\nSet-Cookie: x=1",
    "/a b",
]

RELATIVE_HEADS = [
    "/",
    "//",
    "/\\",
    "\\/",
    "\\\\",
    "/./",
    "/.//",
    "/..//",
    "/%2F",
    "/%2f..",
    "/%5C",
    "/\t/",
    "/\n/",
    "%2F",
    "./",
    "?",
    "#",
    "/@",
    "/:",
    "///",
    "/%09/",
    "/..\\",
    " /",
    "/\x00",
    "/\x7f",
    "/\u0085",
    "/.%2e/",
    "/%2e%2e//",
]
RELATIVE_TAILS = [
    "evil.com",
    "evil.com/x",
    "x",
    "",
    "/x",
    "\\evil.com",
    "..//evil.com",
    "a?b#c",
    "%2F%2Fevil.com",
    "@evil.com",
    "é",
]


def absolute_corpus() -> list[str]:
    """Every combination of the fragments (about 230,000 URLs, checked in a few seconds)."""
    return ["".join(parts) for parts in itertools.product(SCHEMES, USERINFO, HOSTS, PORTS, PATHS)]


def relative_corpus() -> list[str]:
    return [head + tail for head, tail in itertools.product(RELATIVE_HEADS, RELATIVE_TAILS)]


ABSOLUTE = absolute_corpus()
RELATIVE = relative_corpus()


@pytest.fixture(scope="module")
def accepted() -> list[str]:
    """The corpus URLs the checker accepts (worked out once for the tests that read them)."""
    return [value for value in ABSOLUTE if is_trusted(value, CONF)]


def test_every_accepted_absolute_url_has_a_trusted_origin(accepted: list[str]) -> None:
    for value in accepted:
        url = whatwg(value)
        assert url is not None, value
        assert oracle_trusts(url.protocol, url.hostname, url.port), (value, url.href)
    # The corpus is not all refusals: the checker still accepts what it should.
    assert len(accepted) > 1000
    for good in (
        f"{SITE}/cb",
        "https://a.b.example.com/cb?x=1",
        "https://user:pw@a.example.com:443/",
        "https://%61.example.com/",
        "https:app.example.com",
        "http://x.example.org",
        "http://localhost:5173/",
        "myapp://anything/at/all",
        "https://xn--80ak6aa92e.example.com",
        "https://APP.example.com",
    ):
        assert is_trusted(good, CONF), good


@pytest.mark.parametrize(
    "value",
    [
        "https://example.com",
        "https://evil.com\\.example.com",
        "https://aexample.com.evil.com",
        "https://example.com.evil.com",
        "https://a.example.com@evil.com",
        "https://a.example.com\\@evil.com",
        "https://evil.com#.example.com",
        "https://evil.com?.example.com",
        "https://a.example.com.",
        "https://a.example.com:8443",
        "http://a.example.com",
        "https://a.example\uff0ecom.evil.com",
        "https://a.example.com\u3002evil.com",
        "https://a.exa\tmple.com",
        "https://a.example.com\n",
        " https://a.example.com",
        "https://a.example.com:99999",
        "https://a.example.com:-1",
        "https://a.example.com:0x50",
        "https://x.example.org.evil.net",
        "http://localhost:5174",
        "https://localhost:5173",
        "blob:https://a.example.com/x",
        "javascript://a.example.com/%0aalert(1)",
        "ws://a.example.com",
        "//a.example.com",
    ],
)
def test_look_alikes_are_refused(value: str) -> None:
    assert not is_trusted(value, CONF)
    assert not is_safe_relative(value, CONF)


@pytest.mark.parametrize(
    ("entry", "url", "trusted"),
    [
        ("https://*.example.com", "https://a.example.com:443/x", True),
        ("https://*.example.com", "https://a.example.com:444", False),
        ("https://*.example.com:*", "https://a.example.com:444", True),
        ("https://*.example.com:8443", "https://a.example.com:8443", True),
        ("*.example.org", "http://x.example.org", True),
        ("*.example.org", "myapp://x.example.org", False),
        ("*.example.org:443", "http://x.example.org", False),
        ("http://192.168.*.*:*", "http://192.168.1.5:8080", True),
        ("http://192.168.*.*", "http://192.168.evil.com", False),
        ("http://192.168.*.*", "http://192.168.1.5.evil.com", False),
        ("https://pr-*.example.com", "https://pr-12.example.com", True),
        ("https://pr-*.example.com", "https://pr-12.evil.example.com", False),
        ("https://pr-?.example.com", "https://pr-1.example.com", True),
        ("https://pr-?.example.com", "https://pr-12.example.com", False),
        ("https://*.b\u00fccher.de", "https://a.xn--bcher-kva.de", True),
        ("https://*.b\u00fccher.de", "https://a.b\u00fccher.de", True),
        ("https://*.b\u00fccher.de", "https://a.bucher.de", False),
        ("myapp://", "myapp://anything/x", True),
        ("myapp://", "myapp:x", True),
        ("myapp://", "otherapp://x", False),
        ("myapp://host", "myapp://HOST/x", True),
        ("myapp://host", "myapp://host2/x", False),
        ("myapp://host/cb", "myapp://host/cb/x", True),
        ("myapp://host/cb", "myapp://host/cb/../x", False),
        ("myapp://host/cb", "myapp://host/cb/%2e%2e/x", False),
        ("myapp://host/cb", "myapp://host/cbx", False),
        ("exp://192.168.*.*:*/**", "exp://192.168.1.2:8081/--/x", True),
        ("exp://192.168.*.*:*/**", "exp://192.168.evil.com:8081/", False),
        ("https://example.com", "https://user@example.com/x", True),
        ("https://example.com", "https://EXAMPLE.com:443", True),
        ("https://example.com", "https://%65xample.com", True),
        ("https://example.com/", "https://example.com", True),
    ],
)
def test_entry_forms(entry: str, url: str, trusted: bool) -> None:
    conf = auth_settings(TRUSTED_ORIGINS=[entry])
    assert is_trusted(url, conf) is trusted


def test_every_accepted_relative_url_stays_on_the_site() -> None:
    accepted = [value for value in RELATIVE if is_safe_relative(value, CONF)]
    for value in accepted:
        for page in (SITE, f"{SITE}/deep/page/?q=1#top", f"{SITE}/api/auth/verify-email"):
            url = whatwg(value, page)
            assert url is not None, value
            assert url.origin == SITE, (value, page)
            assert not url.pathname.startswith("//"), (value, url.href)
    assert "/x" in accepted and "/a?b#c" in accepted and "/evil.com" in accepted
    for refused in (
        "//evil.com",
        "/\\evil.com",
        "/.//evil.com",
        "/%2F%2Fevil.com",
        "/\t/evil.com",
        "\\/evil.com",
        "/%2e%2e//evil.com",
        "/..//evil.com",
        "x",
        "?x",
        " /x",
    ):
        assert not is_safe_relative(refused, CONF), refused
        assert not is_trusted(refused, CONF), refused


def test_node_new_url_agrees_on_every_accepted_url(tmp_path: Path, accepted: list[str]) -> None:
    """Node's ``new URL`` (browsers' reading, and Better Auth's) finds the same trusted origin."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    relative = [v for v in RELATIVE if is_safe_relative(v, CONF)]
    script = tmp_path / "origins.mjs"
    script.write_text(
        "import { readFileSync } from 'node:fs';\n"
        "const [abs, rel] = JSON.parse(readFileSync(0, 'utf8'));\n"
        "const read = (v, base) => { const u = new URL(v, base);"
        " return [u.protocol, u.hostname, u.port, u.origin, u.pathname]; };\n"
        f"const out = [abs.map((v) => read(v)), rel.map((v) => read(v, {json.dumps(SITE)}))];\n"
        "process.stdout.write(JSON.stringify(out));\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [node, str(script)],
        input=json.dumps([accepted, relative]),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    absolute_read, relative_read = json.loads(result.stdout)
    for value, (scheme, host, port, _origin, _path) in zip(accepted, absolute_read, strict=True):
        assert oracle_trusts(scheme, host, port), value
    for value, (_s, _h, _p, origin, path) in zip(relative, relative_read, strict=True):
        assert origin == SITE and not path.startswith("//"), value


ALPHABET = st.sampled_from(
    [*"aAzZ09.-_@:/\\?#%[]*~ \t\n\r\x00\x7f\u3002\uff0e\u0430\u00e9", "%2e", "%2f", "%5c", "%40"]
)
PREFIXES = st.sampled_from(
    [
        SITE,
        "https://a.example.com",
        "https://",
        "http://",
        "/",
        "//",
        "myapp://",
        "https:",
        "http://localhost:5173",
        "https://x.example.org",
        "https://example.com",
        "",
    ]
)


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(prefix=PREFIXES, middle=st.lists(ALPHABET, max_size=12).map("".join), suffix=PREFIXES)
def test_generated_urls_accepted_only_on_trusted_origins(prefix: str, middle: str, suffix: str):
    value = prefix + middle + suffix.split("//", 1)[-1]
    if is_trusted(value, CONF):
        url = whatwg(value)
        assert url is not None and oracle_trusts(url.protocol, url.hostname, url.port), value
    if is_safe_relative(value, CONF):
        url = whatwg(value, SITE)
        assert url is not None and url.origin == SITE and not url.pathname.startswith("//")


def test_cors_regexes_match_exactly_what_the_checker_trusts() -> None:
    """Browsers send serialized origins; on every one in the corpus the CORS regexes and the
    trust check agree."""
    conf = auth_settings(TRUSTED_ORIGINS=[], CORS_ORIGINS=TRUSTED)
    regexes = cors_origin_regexes(TRUSTED)
    origins = set()
    for parts in itertools.product(SCHEMES, HOSTS, PORTS):
        url = whatwg("".join(parts))
        if url is not None and url.protocol in ("http:", "https:"):
            origins.add(url.origin)
    assert len(origins) > 50
    for origin in sorted(origins):
        by_cors = any(not isinstance(r, str) and r.match(origin) for r in regexes)
        assert by_cors == is_trusted(origin, conf), origin


# --------------------------------------------------------------------------------------------
# over HTTP


def session_rows(app: Flask) -> int:
    with app.app_context():
        db = app.extensions["better_auth"].db
        return int(db.session.scalar(select(func.count()).select_from(Session)) or 0)


@pytest.fixture
def site(database_url: str) -> Iterator[Flask]:
    app = make_app(database_url, TRUSTED_ORIGINS=["https://*.example.com"])
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


ODD = [
    "https://evil.com\\.example.com/cb",
    "https://aexample.com.evil.com/cb",
    "https://example.com/cb",
    "https://a.example.com@evil.com/",
    "//evil.com",
    "/\\evil.com",
    "/.//evil.com",
    "/%2F%2Fevil.com",
    "/cb\r\nSet-Cookie: x=1",
    "/cb\n",
    "/c\tb",
    "/\x00",
    "https://a.example.com\r\n/cb",
    "https://a.example.com:99999/cb",
    "https://a.example.com:-1/cb",
    "https://a.example.com:0x50/cb",
    "http://localhost:99999/cb",
    "http://localhost:-1/",
    "https://[::1/",
    "https://a.example.com:443:443/",
]
FIELDS = [
    ("callbackURL", "INVALID_CALLBACK_URL", "Invalid callbackURL"),
    ("newUserCallbackURL", "INVALID_NEW_USER_CALLBACK_URL", "Invalid newUserCallbackURL"),
    ("errorCallbackURL", "INVALID_ERROR_CALLBACK_URL", "Invalid errorCallbackURL"),
]


@pytest.mark.parametrize("value", ODD)
def test_sign_in_refuses_odd_callbacks_before_any_session(site: Flask, value: str) -> None:
    client = site.test_client()
    sign_up(client)
    before = session_rows(site)
    anonymous = site.test_client()
    for field, code, _message in FIELDS:
        r = anonymous.post(
            f"{AUTH}/sign-in/email",
            json={"email": "ann@example.com", "password": PASSWORD, field: value},
            headers=ORIGIN,
        )
        assert r.status_code == 403, (field, r.status_code, r.get_data(as_text=True))
        assert r.get_json()["code"] == code
        assert "Set-Cookie" not in r.headers
    r = anonymous.post(
        f"{AUTH}/sign-in/email",
        query_string={"callbackURL": value},
        json={"email": "ann@example.com", "password": PASSWORD},
        headers=ORIGIN,
    )
    assert r.status_code == 403 and r.get_json()["code"] == "INVALID_CALLBACK_URL"
    assert session_rows(site) == before


@pytest.mark.parametrize("value", ODD)
def test_password_reset_and_verify_refuse_odd_urls(site: Flask, value: str) -> None:
    client = site.test_client()
    sign_up(client)
    r = client.post(
        f"{AUTH}/request-password-reset",
        json={"email": "ann@example.com", "redirectTo": value},
        headers=ORIGIN,
    )
    assert r.status_code == 403
    assert r.get_json() == {"code": "INVALID_REDIRECT_URL", "message": "Invalid redirectURL"}
    for path, query in ((f"{AUTH}/verify-email", {"token": "x"}), (f"{AUTH}/reset-password/x", {})):
        r = client.get(path, query_string={**query, "callbackURL": value})
        assert r.status_code == 403, (path, r.status_code)
        assert r.get_json()["code"] == "INVALID_CALLBACK_URL"
        assert "Location" not in r.headers


def test_sign_in_accepts_trusted_callbacks(site: Flask) -> None:
    client = site.test_client()
    sign_up(client)
    for value in (
        "https://a.b.example.com/cb",
        "/dashboard?tab=1",
        f"{BASE}/x",
        "https:a.example.com",
    ):
        r = client.post(
            f"{AUTH}/sign-in/email",
            json={"email": "ann@example.com", "password": PASSWORD, "callbackURL": value},
            headers=ORIGIN,
        )
        assert r.status_code == 200, value
        assert r.get_json()["url"] == value


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Origin": "https://aexample.com.evil.com"}, "INVALID_ORIGIN"),
        ({"Origin": "https://example.com"}, "INVALID_ORIGIN"),
        ({"Origin": "https://a.example.com.evil.com"}, "INVALID_ORIGIN"),
        ({"Origin": "https://evil.com\\.example.com"}, "INVALID_ORIGIN"),
        ({"Origin": "https://a.example.com:8443"}, "INVALID_ORIGIN"),
        ({"Origin": "http://localhost:99999"}, "INVALID_ORIGIN"),
        ({"Origin": "http://localhost, https://evil.com"}, "INVALID_ORIGIN"),
        ({"Referer": "https://evil.com\\.example.com/page"}, "INVALID_ORIGIN"),
        ({"Referer": "https://a.example.com@evil.com/page"}, "INVALID_ORIGIN"),
        ({"Referer": "https://evil.com/https://a.example.com"}, "INVALID_ORIGIN"),
    ],
)
def test_look_alike_origins_refused(site: Flask, headers: dict[str, str], code: str) -> None:
    client = site.test_client()
    account = sign_up(client)
    token = client.get_cookie("better-auth.session-token")
    assert token is not None
    cookie = {"Cookie": f"better-auth.session-token={token.value}"}
    fetch = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
    before = session_rows(site)
    bare = site.test_client(use_cookies=False)
    r = bare.post(
        f"{AUTH}/sign-in/email",
        json={"email": account.email, "password": PASSWORD},
        headers={**headers, **fetch},
    )
    assert r.status_code == 403 and r.get_json()["code"] == code
    r = bare.post(f"{AUTH}/update-user", json={"name": "Eve"}, headers={**headers, **cookie})
    assert r.status_code == 403 and r.get_json()["code"] == code
    assert session_rows(site) == before
    r = bare.post(
        f"{AUTH}/update-user",
        json={"name": "Ann B"},
        headers={"Origin": "https://a.b.example.com", **cookie},
    )
    assert r.status_code == 200


# --------------------------------------------------------------------------------------------
# Origin: null (point 8)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "null", "Referer": f"{BASE}/settings"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"},
        {"Origin": "null", "Sec-Fetch-Site": "same-origin", "Referer": f"{BASE}/settings"},
    ],
)
def test_null_origin_refused_with_cookies(site: Flask, headers: dict[str, str]) -> None:
    client = site.test_client()
    sign_up(client)
    r = client.post(f"{AUTH}/update-user", json={"name": "Eve"}, headers=headers)
    assert r.status_code == 403
    assert r.get_json() == {"code": "MISSING_OR_NULL_ORIGIN", "message": "Missing or null Origin"}
    r = client.get(f"{AUTH}/get-session")
    assert r.get_json()["user"]["name"] == "Ann"


def test_null_origin_same_origin_sign_in_without_cookies(site: Flask) -> None:
    """Better Auth 1.7.25's special case stays for cookie-less sign-in (a ``no-referrer`` form
    on the site itself): ``Sec-Fetch-Site`` is set by the browser, no page can forge it."""
    sign_up(site.test_client())
    bare = site.test_client(use_cookies=False)
    body = {"email": "ann@example.com", "password": PASSWORD}
    same = {"Origin": "null", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    assert bare.post(f"{AUTH}/sign-in/email", json=body, headers=same).status_code == 200
    null_referer = {"Origin": "null", "Referer": f"{BASE}/login", "Sec-Fetch-Mode": "cors"}
    r = bare.post(f"{AUTH}/sign-in/email", json=body, headers=null_referer)
    assert r.status_code == 403 and r.get_json()["code"] == "MISSING_OR_NULL_ORIGIN"


# --------------------------------------------------------------------------------------------
# links from the base URL only (point 2)


def test_links_come_from_the_base_url_not_the_host(database_url: str, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    app = make_app(
        database_url,
        BASE_URL="https://app.example.com/",
        TRUSTED_ORIGINS=[BASE],
        EMAIL_BACKEND="outbox",
        EMAIL_OUTBOX=str(outbox),
        REQUIRE_EMAIL_VERIFICATION=True,
    )
    try:
        client = app.test_client()
        forged = {
            **ORIGIN,
            "Host": "evil.example",
            "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "http",
            "Forwarded": "host=evil.example;proto=http",
        }
        r = client.post(
            f"{AUTH}/sign-up/email",
            json={"name": "Ann", "email": "ann@example.com", "password": PASSWORD},
            headers=forged,
        )
        assert r.status_code == 200
        r = client.post(
            f"{AUTH}/request-password-reset",
            json={"email": "ann@example.com", "redirectTo": "/reset"},
            headers=forged,
        )
        assert r.status_code == 200
        mails = [json.loads(line) for line in outbox.read_text().splitlines()]
        assert [m["kind"] for m in mails] == ["verification", "reset-password"]
        for mail in mails:
            assert mail["url"].startswith("https://app.example.com/api/auth/"), mail["url"]
            assert "evil" not in json.dumps(mail)
        # The forged Host is not trusted as an origin either.
        r = client.post(
            f"{AUTH}/sign-in/email",
            json={"email": "ann@example.com", "password": PASSWORD},
            headers={"Host": "evil.example", "Origin": "http://evil.example"},
        )
        assert r.status_code == 403 and r.get_json()["code"] == "INVALID_ORIGIN"
    finally:
        with app.app_context():
            app.extensions["better_auth"].db.engine.dispose()


def test_base_url_required_outside_tests(tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'x.sqlite'}", BETTER_AUTH_SECRET=SECRET
    )
    with pytest.raises(ConfigError) as raised:
        BetterAuth(app)
    assert str(raised.value).startswith("BETTER_AUTH_BASE_URL is not set")
    assert 'BETTER_AUTH_BASE_URL = "https://example.com"' in str(raised.value)
    app.testing = True
    BetterAuth(app)
    assert app.extensions["better_auth"].settings.base_url == "http://localhost"


# --------------------------------------------------------------------------------------------
# CORS wildcards (point 5)


@pytest.mark.settings(CORS_ORIGINS=["https://*.example.com", "http://localhost:5173"])
@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://a.example.com", True),
        ("https://a.b.example.com", True),
        ("http://localhost:5173", True),
        ("https://example.com", False),
        ("https://aexample.com.evil.com", False),
        ("https://a.example.com.evil.com", False),
        ("https://evilexample.com", False),
        ("https://a.example.com:8443", False),
        ("http://a.example.com", False),
        ("https://a-example.com", False),
        ("https://a.example.comx", False),
        ("http://localhost:51730", False),
        ("https://evil.com/.example.com", False),
    ],
)
def test_cors_wildcards_are_label_exact(client: FlaskClient, origin: str, allowed: bool) -> None:
    preflight = client.options(
        f"{AUTH}/sign-in/email",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    plain = client.get(f"{AUTH}/ok", headers={"Origin": origin})
    assert plain.status_code == 200
    for response in (preflight, plain):
        if allowed:
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
        else:
            assert "Access-Control-Allow-Origin" not in response.headers
            assert "Access-Control-Allow-Credentials" not in response.headers

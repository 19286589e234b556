"""The cookie cache (``session_data``): Better Auth's format, zero-query reads, invalidation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ORIGIN, PASSWORD, SECRET, make_app, queries, set_cookies, sign_in, sign_up
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws
from joserfc.jwk import OctKey
from nodejs import NodeEnv

from flask_better_auth.cookie_cache import encode

COOKIE = "better-auth.session-token"
CACHE = "better-auth.session-data"
CACHED = pytest.mark.settings(COOKIE_CACHE_ENABLED=True)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def js_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def cache_value(client: FlaskClient) -> str:
    cookie = client.get_cookie(CACHE)
    assert cookie is not None
    return cookie.value


def envelope(value: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(unb64url(value))
    return data


def forge(client: FlaskClient, data: dict[str, Any], *, secret: str = SECRET) -> None:
    """Put a compact cache with ``data`` = {session, expiresAt} signed by ``secret``."""
    signature = b64url(
        hmac.new(
            secret.encode(),
            js_json({**data["session"], "expiresAt": data["expiresAt"]}).encode(),
            hashlib.sha256,
        ).digest()
    )
    value = b64url(js_json({**data, "signature": signature}).encode())
    client.set_cookie(CACHE, value)


# ---------------------------------------------------------------- format


@CACHED
def test_sign_up_writes_a_compact_cache_signed_as_better_auth_signs_it(client: FlaskClient):
    before = int(time.time() * 1000)
    response = client.post(
        "/api/auth/sign-up/email",
        json={"name": "Ann", "email": "ann@example.com", "password": PASSWORD},
        headers=ORIGIN,
    )
    assert response.status_code == 200
    cookies = set_cookies(response)
    assert list(cookies) == [COOKIE, CACHE]
    cache = cookies[CACHE]
    assert cache["max-age"] == "300"
    assert cache["path"] == "/" and cache["httponly"] is True and cache["samesite"] == "Lax"

    data = envelope(cache["value"])
    assert list(data) == ["session", "expiresAt", "signature"]
    payload = data["session"]
    assert list(payload) == ["session", "user", "updatedAt", "version"]
    assert payload["version"] == "1"
    assert before <= payload["updatedAt"] <= int(time.time() * 1000)
    assert data["expiresAt"] == payload["updatedAt"] + 300_000
    token = response.get_json()["token"]
    assert payload["session"]["token"] == token
    assert payload["user"] == response.get_json()["user"]
    # signature = base64url(HMAC-SHA256(secret, JSON.stringify({...sessionData, expiresAt})))
    message = js_json({**payload, "expiresAt": data["expiresAt"]})
    expected = b64url(hmac.new(SECRET.encode(), message.encode(), hashlib.sha256).digest())
    assert data["signature"] == expected


def test_no_cache_cookie_unless_enabled(app: Flask, client: FlaskClient):
    sign_up(client)
    response = client.get("/api/auth/get-session")
    assert CACHE not in set_cookies(response)
    assert client.get_cookie(CACHE) is None


@pytest.mark.settings(COOKIE_CACHE_ENABLED=True, COOKIE_CACHE_STRATEGY="jwt")
def test_jwt_strategy_is_an_hs256_jwt_of_the_session_data(app: Flask, client: FlaskClient):
    account = sign_up(client)
    token = cache_value(client)
    header = json.loads(unb64url(token.split(".")[0]))
    assert header == {"alg": "HS256"}
    claims = json.loads(
        jws.deserialize_compact(
            token, OctKey.import_key(SECRET.encode()), algorithms=["HS256"]
        ).payload
    )
    assert list(claims) == ["session", "user", "updatedAt", "version", "iat", "exp"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["session"]["token"] == account.token
    with queries(app) as statements:
        body = client.get("/api/auth/get-session").get_json()
    assert statements == []
    assert body["user"]["email"] == "ann@example.com"


@CACHED
def test_dont_remember_gets_a_browser_session_cache_cookie(client: FlaskClient):
    sign_up(client)
    response = sign_in(client, "ann@example.com", rememberMe=False)
    cache = set_cookies(response)[CACHE]
    assert "max-age" not in cache and "expires" not in cache
    data = envelope(cache["value"])
    assert data["expiresAt"] == data["session"]["updatedAt"] + 60_000  # Better Auth's fallback


# ---------------------------------------------------------------- reads


@CACHED
def test_a_valid_cache_answers_with_zero_queries(app: Flask, client: FlaskClient):
    account = sign_up(client)
    with queries(app) as statements:
        session = client.get("/api/auth/get-session")
        me = client.get("/api/me")
        open_route = client.get("/api/open")
    assert statements == []
    assert session.status_code == me.status_code == 200
    assert session.get_json()["session"]["token"] == account.token
    assert session.get_json()["user"] == account.user
    assert me.get_json()["user"] == account.user
    assert open_route.get_json() == {"signed_in": True}
    assert session.headers.getlist("Set-Cookie") == []  # nothing to re-issue


@CACHED
def test_disable_cookie_cache_reads_the_database_and_reissues_the_cache(
    app: Flask, client: FlaskClient
):
    sign_up(client)
    old = cache_value(client)
    time.sleep(0.01)
    with queries(app) as statements:
        response = client.get("/api/auth/get-session?disableCookieCache=true")
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT")
    assert response.get_json()["user"]["email"] == "ann@example.com"
    assert list(set_cookies(response)) == [CACHE]
    assert cache_value(client) != old


@CACHED
def test_an_expired_cache_reads_the_database_and_is_reissued(app: Flask, client: FlaskClient):
    sign_up(client)
    data = envelope(cache_value(client))
    data.pop("signature")
    data["expiresAt"] = int(time.time() * 1000) - 1000  # a correctly signed, expired cache
    forge(client, data)
    with queries(app) as statements:
        response = client.get("/api/auth/get-session")
    assert len(statements) == 1
    assert response.status_code == 200
    fresh = envelope(set_cookies(response)[CACHE]["value"])
    assert fresh["expiresAt"] > time.time() * 1000
    with queries(app) as statements:
        client.get("/api/auth/get-session")
    assert statements == []


@pytest.mark.settings(COOKIE_CACHE_ENABLED=True, COOKIE_CACHE_MAX_AGE=1)
def test_max_age_bounds_the_cache(app: Flask, client: FlaskClient):
    response = client.post(
        "/api/auth/sign-up/email",
        json={"name": "Ann", "email": "ann@example.com", "password": PASSWORD},
        headers=ORIGIN,
    )
    assert set_cookies(response)[CACHE]["max-age"] == "1"
    value = set_cookies(response)[CACHE]["value"]
    time.sleep(1.1)
    client.set_cookie(CACHE, value)  # a client that kept the cookie past its Max-Age
    with queries(app) as statements:
        assert client.get("/api/auth/get-session").status_code == 200
    assert len(statements) == 1


@CACHED
def test_a_tampered_cache_is_ignored(app: Flask, client: FlaskClient):
    sign_up(client)
    data = envelope(cache_value(client))
    data["session"]["user"]["name"] = "Mallory"  # signature no longer matches
    client.set_cookie(CACHE, b64url(js_json(data).encode()))
    with queries(app) as statements:
        response = client.get("/api/auth/get-session")
    assert len(statements) == 1
    assert response.get_json()["user"]["name"] == "Ann"
    reissued = envelope(set_cookies(response)[CACHE]["value"])
    assert reissued["session"]["user"]["name"] == "Ann"

    # Signed with another secret, or garbage: the same.
    data.pop("signature")
    forge(client, data, secret="another-secret-0123456789-abcdefghijklmnopq")
    assert client.get("/api/auth/get-session").get_json()["user"]["name"] == "Ann"
    client.set_cookie(CACHE, "not base64 json!")
    assert client.get("/api/auth/get-session").get_json()["user"]["name"] == "Ann"


@CACHED
def test_a_cache_made_for_another_token_is_ignored(app: Flask, client: FlaskClient):
    sign_up(client)
    other = app.test_client()
    sign_up(other, "bob@example.com")
    client.set_cookie(CACHE, cache_value(other))  # Bob's valid cache next to Ann's token
    with queries(app) as statements:
        body = client.get("/api/auth/get-session").get_json()
    assert len(statements) == 1
    assert body["user"]["email"] == "ann@example.com"


@CACHED
def test_a_cache_whose_session_expired_is_ignored(app: Flask, client: FlaskClient):
    account = sign_up(client)
    data = envelope(cache_value(client))["session"]
    data["session"]["expiresAt"] = "2000-01-01T00:00:00.000Z"
    value = encode(data["session"], data["user"], secret=SECRET, strategy="compact", max_age=300)
    client.set_cookie(CACHE, value)
    with queries(app) as statements:
        body = client.get("/api/auth/get-session").get_json()
    assert len(statements) == 1
    assert body["session"]["token"] == account.token


@CACHED
def test_a_large_cache_is_chunked_and_read_back(app: Flask, client: FlaskClient):
    account = sign_up(client, name="A" * 6000)
    response = client.get("/api/auth/get-session?disableCookieCache=1")
    names = list(set_cookies(response))
    assert names == [f"{CACHE}.0", f"{CACHE}.1", f"{CACHE}.2"]  # ~9 kB of base64
    assert client.get_cookie(CACHE) is None
    with queries(app) as statements:
        body = client.get("/api/auth/get-session").get_json()
    assert statements == []
    assert body["session"]["token"] == account.token
    assert len(body["user"]["name"]) == 6000
    for header in client.get("/api/auth/get-session?disableCookieCache=1").headers.getlist(
        "Set-Cookie"
    ):
        assert len(header) <= 4050

    # A smaller cache replaces the chunks, which are expired.
    response = client.post("/api/auth/update-user", json={"name": "Ann"}, headers=ORIGIN)
    cookies = set_cookies(response)
    assert cookies[f"{CACHE}.0"]["max-age"] == "0" and cookies[f"{CACHE}.1"]["max-age"] == "0"
    assert envelope(cookies[CACHE]["value"])["session"]["user"]["name"] == "Ann"

    # Sign-out expires the cache and any chunk the browser still sends.
    client.set_cookie(f"{CACHE}.3", "stale")
    cookies = set_cookies(client.post("/api/auth/sign-out", headers=ORIGIN))
    assert list(cookies) == [COOKIE, CACHE, f"{CACHE}.3", "better-auth.dont-remember"]
    assert all(c["max-age"] == "0" for c in cookies.values())


# ---------------------------------------------------------------- invalidation


@CACHED
def test_update_user_reissues_the_cache(app: Flask, client: FlaskClient):
    sign_up(client)
    response = client.post("/api/auth/update-user", json={"name": "Annie"}, headers=ORIGIN)
    assert response.status_code == 200
    cookies = set_cookies(response)
    assert COOKIE in cookies  # Better Auth's setSessionCookie: token and cache
    assert envelope(cookies[CACHE]["value"])["session"]["user"]["name"] == "Annie"
    with queries(app) as statements:
        body = client.get("/api/auth/get-session").get_json()
    assert statements == []
    assert body["user"]["name"] == "Annie"


@CACHED
def test_revocation_reaches_sensitive_routes_at_once_and_others_within_max_age(
    app: Flask, client: FlaskClient
):
    phone = sign_up(client)
    laptop = app.test_client()
    assert sign_in(laptop, phone.email).status_code == 200
    revoked = laptop.post("/api/auth/revoke-session", json={"token": phone.token}, headers=ORIGIN)
    assert revoked.get_json() == {"status": True}

    # Non-sensitive reads keep answering from the phone's cache until it expires (max_age),
    # exactly as in Better Auth...
    assert client.get("/api/me").status_code == 200
    assert client.get("/api/auth/get-session").get_json()["session"]["token"] == phone.token
    # ...but a sensitive route reads storage: refused, and the cookies are expired.
    response = client.post("/api/auth/verify-password", json={"password": PASSWORD}, headers=ORIGIN)
    assert response.status_code == 401
    assert all(c["max-age"] == "0" for c in set_cookies(response).values())
    assert client.get("/api/auth/get-session").get_data() == b"null"


@CACHED
def test_disable_cookie_cache_sees_a_revocation(app: Flask, client: FlaskClient):
    phone = sign_up(client)
    laptop = app.test_client()
    sign_in(laptop, phone.email)
    laptop.post("/api/auth/revoke-other-sessions", headers=ORIGIN)
    response = client.get("/api/auth/get-session?disableCookieCache=1")
    assert response.get_data() == b"null"
    assert set_cookies(response)[CACHE]["max-age"] == "0"


@CACHED
def test_sensitive_routes_read_storage_and_reissue_the_cache(app: Flask, client: FlaskClient):
    sign_up(client)
    with queries(app) as statements:
        response = client.post(
            "/api/auth/verify-password", json={"password": PASSWORD}, headers=ORIGIN
        )
    assert response.get_json() == {"status": True}
    assert statements[0].lstrip().upper().startswith("SELECT")
    assert "session" in statements[0].lower()
    assert CACHE in set_cookies(response)


@CACHED
def test_sign_out_and_revoke_sessions_expire_the_cache(app: Flask, client: FlaskClient):
    sign_up(client)
    cookies = set_cookies(client.post("/api/auth/revoke-sessions", headers=ORIGIN))
    assert cookies[CACHE]["max-age"] == "0"
    sign_in(client, "ann@example.com")
    assert client.get_cookie(CACHE) is not None
    cookies = set_cookies(client.post("/api/auth/sign-out", headers=ORIGIN))
    assert cookies[CACHE]["max-age"] == "0"
    assert client.get_cookie(CACHE) is None


@CACHED
def test_a_refresh_reissues_token_and_cache(app: Flask, client: FlaskClient):
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from flask_better_auth.models import Session

    account = sign_up(client)
    with app.app_context():
        db = app.extensions["better_auth"].db
        db.session.execute(
            update(Session)
            .where(Session.token == account.token)
            .values(expires_at=datetime.now(UTC) + timedelta(days=5))
        )
        db.session.commit()
    # The cache still says 7 days: it answers; the database is read (and the session
    # extended) once the cache is bypassed or gone.
    response = client.get("/api/auth/get-session?disableCookieCache=1")
    cookies = set_cookies(response)
    assert list(cookies) == [COOKIE, CACHE]
    expires = envelope(cookies[CACHE]["value"])["session"]["session"]["expiresAt"]
    assert expires == response.get_json()["session"]["expiresAt"]
    assert expires > (datetime.now(UTC) + timedelta(days=6)).isoformat()


@CACHED
def test_get_session_sensitive_in_a_view_bypasses_the_cache(app: Flask, client: FlaskClient):
    auth = app.extensions["better_auth"].extension

    @app.get("/api/strict")
    def strict() -> Any:
        return {"signed_in": auth.get_session(sensitive=True) is not None}

    phone = sign_up(client)
    laptop = app.test_client()
    sign_in(laptop, phone.email)
    laptop.post("/api/auth/revoke-other-sessions", headers=ORIGIN)
    assert client.get("/api/open").get_json() == {"signed_in": True}  # the cache
    assert client.get("/api/strict").get_json() == {"signed_in": False}


E2E = Path(__file__).parent / "e2e"
READ_WITH_BETTER_AUTH = """
import { getCookieCache } from "better-auth/cookies";
const [cookie, secret, strategy] = process.argv.slice(1);
const headers = new Headers({ cookie });
const config = { secret, strategy, isSecure: false, cookieName: "session-data" };
console.log(JSON.stringify(await getCookieCache(headers, config)));
"""


@pytest.mark.parametrize("strategy", ["compact", "jwt"])
def test_better_auths_own_reader_accepts_our_cache(
    tmp_path: Path, strategy: str, node_env: NodeEnv
):
    """better-auth 1.7.25's ``getCookieCache`` (tests/e2e/node_modules) verifies our cookie."""
    app = make_app(
        f"sqlite:///{tmp_path / 'auth.sqlite'}",
        COOKIE_CACHE_ENABLED=True,
        COOKIE_CACHE_STRATEGY=strategy,
    )
    client = app.test_client()
    account = sign_up(client, name="Ännchen ✓")  # non-ASCII: JSON.stringify keeps it as is
    cookie = f"{CACHE}={cache_value(client)}"
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()
    result = subprocess.run(
        [
            node_env.node,
            "--input-type=module",
            "-e",
            READ_WITH_BETTER_AUTH,
            cookie,
            SECRET,
            strategy,
        ],
        cwd=E2E,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    payload = json.loads(result.stdout)
    assert payload is not None, result.stderr
    assert payload["session"]["token"] == account.token
    assert payload["user"] == account.user
    assert payload["version"] == "1"

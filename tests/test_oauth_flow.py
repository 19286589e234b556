"""Social sign-in against a real OpenID provider (tests/oidc/provider.mjs, panva's
oidc-provider): the flow of shared/spec/oauth-wire.md over real HTTP, our side through the
Flask test client, the provider's side through httpx like a browser."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest
from conftest import ORIGIN, SECRET, make_app, set_cookies, sign_in, sign_up
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nodejs import E2E_DIR
from oidc_provider import CLIENT_ID, CLIENT_SECRET, oidc_issuer, oidc_issuer_strict, provider_login
from werkzeug.serving import make_server

from flask_better_auth import account_linked, account_unlinked, user_signed_up
from flask_better_auth.models import Account, User, Verification
from flask_better_auth.oauth.encryption import open_sealed, purpose_key
from flask_better_auth.oauth.linking import LINK_PURPOSE

__all__ = ["oidc_issuer", "oidc_issuer_strict"]  # the fixtures, used by name

REDIS_URL = os.environ.get("FBA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def providers(issuer: str) -> list[dict[str, Any]]:
    discovery = f"{issuer}/.well-known/openid-configuration"
    common = {"discovery_url": discovery, "client_secret": CLIENT_SECRET}
    common["scopes"] = ["openid", "email", "profile"]
    return [
        {"provider_id": "local-oidc", "client_id": CLIENT_ID, **common},
        {
            "provider_id": "local-oidc-basic",
            "client_id": f"{CLIENT_ID}-basic",
            "authentication": "basic",
            **common,
        },
        {"provider_id": "local-oidc-short", "client_id": f"{CLIENT_ID}-short", **common},
    ]


@pytest.fixture
def oauth_app(
    database_url: str, oidc_issuer: str, request: pytest.FixtureRequest
) -> Iterator[Flask]:
    marker = request.node.get_closest_marker("settings")
    overrides = dict(marker.kwargs) if marker else {}
    app = make_app(
        database_url,
        PLUGINS=["generic-oauth"],
        GENERIC_OAUTH_PROVIDERS=providers(oidc_issuer),
        ACCOUNT_LINKING_TRUSTED_PROVIDERS=["local-oidc-basic"],
        **overrides,
    )
    yield app
    dispose(app)


def dispose(app: Flask) -> None:
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()
    secondary = app.extensions["better_auth"].secondary
    if secondary is not None:
        secondary.close()


def start(
    client: FlaskClient, provider: str = "local-oidc", path: str = "/sign-in/social", **body: Any
) -> Any:
    payload = {
        "provider": provider,
        "callbackURL": "/dashboard",
        "newUserCallbackURL": "/welcome",
        "errorCallbackURL": "/auth-error",
        **body,
    }
    response = client.post(f"/api/auth{path}", json=payload, headers=ORIGIN)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def callback(client: FlaskClient, url: str) -> Any:
    """Follow the provider's redirect back to us (the path and query of ``url``)."""
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def sign_in_with(client: FlaskClient, email: str, provider: str = "local-oidc", **body: Any) -> Any:
    url = start(client, provider, loginHint=email, **body).get_json()["url"]
    return callback(client, provider_login(url))


def rows(app: Flask, model: Any) -> list[Any]:
    with app.app_context():
        db = app.extensions["better_auth"].db
        return list(db.session.execute(db.select(model)).scalars())


def test_start_answers_the_authorization_url_state_row_and_cookie(
    oauth_app: Flask, oidc_issuer: str
) -> None:
    client = oauth_app.test_client()
    response = start(client, loginHint="ann@example.com")
    data = response.get_json()
    assert list(data) == ["url", "redirect"] and data["redirect"] is True
    assert response.headers["Location"] == data["url"]
    url = urlsplit(data["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{oidc_issuer}/auth"
    params = [pair.split("=")[0] for pair in url.query.split("&")]
    assert params == [
        "response_type",
        "client_id",
        "state",
        "scope",
        "redirect_uri",
        "login_hint",
        "nonce",
        "code_challenge_method",
        "code_challenge",
    ]
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["scope"] == "openid email profile"
    assert query["redirect_uri"] == "http://localhost/api/auth/callback/local-oidc"
    assert len(query["state"]) == 32 and len(query["nonce"]) == 32
    cookie = set_cookies(response)["better-auth.state"]
    assert cookie["value"].startswith(query["state"] + ".")
    assert cookie["max-age"] == "300" and cookie["samesite"] == "Lax" and cookie["httponly"]
    (row,) = rows(oauth_app, Verification)
    assert row.identifier == f"auth-state:{query['state']}"
    value = json.loads(row.value)
    assert list(value) == [
        "callbackURL",
        "codeVerifier",
        "errorURL",
        "newUserURL",
        "expiresAt",
        "idTokenNonce",
        "oauthState",
    ]
    assert len(value["codeVerifier"]) == 128 and value["idTokenNonce"] == query["nonce"]
    from flask_better_auth.oauth.flow import code_challenge

    assert code_challenge(value["codeVerifier"]) == query["code_challenge"]


def test_disable_redirect_and_unknown_provider(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    response = start(client, disableRedirect=True)
    assert response.get_json()["redirect"] is False and "Location" not in response.headers
    missing = client.post("/api/auth/sign-in/social", json={"provider": "nope"}, headers=ORIGIN)
    assert missing.status_code == 404 and missing.get_json()["code"] == "PROVIDER_NOT_FOUND"
    assert client.post("/api/auth/sign-in/oauth2", json={}, headers=ORIGIN).status_code == 404


def test_new_user_then_returning_user(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    response = sign_in_with(client, "new-user@example.com")
    assert response.status_code == 302 and response.get_data() == b""
    assert response.headers["Location"] == "/welcome"
    cookies = list(set_cookies(response))
    assert cookies[0] == "better-auth.state" and set_cookies(response)[cookies[0]]["max-age"] == "0"
    assert "better-auth.session-token" in cookies
    me = client.get("/api/auth/get-session").get_json()
    assert me["user"]["email"] == "new-user@example.com" and me["user"]["emailVerified"] is True
    (account,) = [a for a in rows(oauth_app, Account) if a.provider_id == "local-oidc"]
    assert account.scope == "openid,email,profile" and account.access_token
    assert account.access_token_expires_at is not None and account.id_token

    other = oauth_app.test_client()
    again = sign_in_with(other, "new-user@example.com")
    assert again.status_code == 302 and again.headers["Location"] == "/dashboard"
    assert len(rows(oauth_app, User)) == 1 and len(rows(oauth_app, Account)) == 1


# --------------------------------------------------------------------------- errors


def test_access_denied_is_a_redirect_with_the_providers_error(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    url = start(client).get_json()["url"]
    response = callback(client, provider_login(url, abort=True))
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "/auth-error?error=access_denied&error_description=End-User+aborted+interaction"
    )
    assert set_cookies(response)["better-auth.state"]["max-age"] == "0"
    assert rows(oauth_app, User) == []


def test_unknown_or_missing_state_goes_to_the_error_page(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    response = client.get("/api/auth/callback/local-oidc?code=abc&state=not-a-real-state")
    assert response.status_code == 302
    assert response.headers["Location"] == "http://localhost/api/auth/error?error=state_mismatch"
    response = client.get("/api/auth/callback/local-oidc?code=abc")
    assert response.headers["Location"] == "http://localhost/api/auth/error?error=state_not_found"


def test_another_browsers_state_is_refused_without_consuming_it(oauth_app: Flask) -> None:
    owner, thief = oauth_app.test_client(), oauth_app.test_client()
    url = start(owner, loginHint="victim@example.com").get_json()["url"]
    back = provider_login(url)
    refused = callback(thief, back)
    assert refused.status_code == 302
    assert refused.headers["Location"] == "/auth-error?error=state_mismatch"
    assert "better-auth.session-token" not in set_cookies(refused)
    assert callback(owner, back).headers["Location"] == "/welcome"  # the row was still there


def test_a_state_is_single_use(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    url = start(client, loginHint="once@example.com").get_json()["url"]
    back = provider_login(url)
    first = callback(client, back)
    assert first.headers["Location"] == "/welcome"
    replay = oauth_app.test_client()
    state = parse_qs(urlsplit(back).query)["state"][0]
    cookie = set_cookies(start(replay))["better-auth.state"]["value"]
    del cookie  # a valid cookie of another state does not help
    replayed = callback(client, back)
    assert replayed.status_code == 302
    assert replayed.headers["Location"].endswith("error=state_mismatch")
    assert [r for r in rows(oauth_app, Verification) if state in r.identifier] == []


def test_wrong_issuer_no_code_and_bad_code(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    url = start(client, loginHint="iss@example.com").get_json()["url"]
    back = provider_login(url).replace("iss=", "iss=x")
    response = callback(client, back)
    assert response.headers["Location"] == "/auth-error?error=issuer_mismatch"
    state = parse_qs(urlsplit(start(client).get_json()["url"]).query)["state"][0]
    response = client.get(f"/api/auth/callback/local-oidc?state={state}")
    assert response.headers["Location"] == "/auth-error?error=no_code"
    state = parse_qs(urlsplit(start(client).get_json()["url"]).query)["state"][0]
    response = client.get(f"/api/auth/callback/local-oidc?state={state}&code=forged")
    assert response.headers["Location"] == "/auth-error?error=invalid_code"
    assert rows(oauth_app, User) == []


def test_provider_without_email_claim(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    url = start(client).get_json()["url"]
    response = callback(client, provider_login(url, "nomail", "nomail-password"))
    assert response.headers["Location"] == "/auth-error?error=email_not_found"


def test_form_post_callback_redirects_to_the_get(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    response = client.post(
        "/api/auth/callback/local-oidc",
        data={"code": "c1", "state": "s1"},
        headers={"Origin": "http://127.0.0.1:3015"},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == (
        "http://localhost/api/auth/callback/local-oidc?code=c1&state=s1"
    )
    url = start(client, loginHint="formpost@example.com").get_json()["url"]
    back = urlsplit(provider_login(url))
    posted = client.post(back.path, data=dict(parse_qs(back.query)))
    assert posted.status_code == 302
    assert callback(client, posted.headers["Location"]).headers["Location"] == "/welcome"


def test_discovery_down_is_provider_not_found(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Better Auth skips a provider whose discovery failed (and retries it per request): the
    start routes answer ``404 PROVIDER_NOT_FOUND``, not a 502 of our own."""
    configured = {
        "provider_id": "nodisco",
        "client_id": "c",
        "discovery_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
    app = make_app(database_url, PLUGINS=["generic-oauth"], GENERIC_OAUTH_PROVIDERS=[configured])
    client = app.test_client()
    sign_up(client, "nodisco@example.com")
    for path in ("/api/auth/sign-in/social", "/api/auth/link-social"):
        with caplog.at_level("ERROR", "flask_better_auth.oauth"):
            response = client.post(path, json={"provider": "nodisco"}, headers=ORIGIN)
        assert response.status_code == 404, path
        assert response.get_json() == {
            "message": "Provider not found",
            "code": "PROVIDER_NOT_FOUND",
        }
        assert "unreachable" in caplog.text
    dispose(app)


def test_provider_down_is_a_redirect_and_a_logged_error(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(
        database_url,
        PLUGINS=["generic-oauth"],
        GENERIC_OAUTH_PROVIDERS=[
            {
                "provider_id": "down",
                "client_id": "c",
                "authorization_url": "http://127.0.0.1:9/auth",
                "token_url": "http://127.0.0.1:9/token",
            }
        ],
    )
    client = app.test_client()
    state = parse_qs(urlsplit(start(client, "down").get_json()["url"]).query)["state"][0]
    with caplog.at_level("ERROR", "flask_better_auth.oauth"):
        response = client.get(f"/api/auth/callback/down?state={state}&code=c")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth-error?error=invalid_code"
    assert "unreachable" in caplog.text
    # An account of that provider: refreshing its token is a 400, not a 500.
    user_id = sign_up(client, "down@example.com").user["id"]
    with app.app_context():
        db = app.extensions["better_auth"].db
        row = Account(id="down-account", account_id="x", provider_id="down", user_id=user_id)
        row.refresh_token = "r"
        db.session.add(row)
        db.session.commit()
    for path in ("/api/auth/refresh-token", "/api/auth/get-access-token"):
        refused = client.post(path, json={"accountId": "down-account"}, headers=ORIGIN)
        assert refused.status_code == 400, path
        assert refused.get_json()["code"] == "FAILED_TO_REFRESH_ACCESS_TOKEN"
    dispose(app)


# --------------------------------------------------------------------------- linking


def verify_email(app: Flask, email: str) -> None:
    with app.app_context():
        db = app.extensions["better_auth"].db
        user = db.session.execute(db.select(User).filter_by(email=email)).scalar_one()
        user.email_verified = True
        db.session.commit()


def test_implicit_linking_needs_a_verified_local_user(oauth_app: Flask) -> None:
    local = oauth_app.test_client()
    sign_up(local, "linker@example.com")
    browser = oauth_app.test_client()
    # An unverified local user is never linked implicitly, not even via a trusted provider.
    for provider in ("local-oidc", "local-oidc-basic"):
        response = sign_in_with(browser, "linker@example.com", provider)
        assert response.headers["Location"] == "/auth-error?error=account_not_linked"
    verify_email(oauth_app, "linker@example.com")
    linked: list[Any] = []
    account_linked.connect(lambda app, **kw: linked.append(kw), oauth_app, weak=False)
    response = sign_in_with(browser, "linker@example.com")
    assert response.headers["Location"] == "/dashboard"  # an existing user: not the new-user URL
    assert linked[0]["provider_id"] == "local-oidc"
    # The provider does not vouch for this address (email_verified false) and is not trusted.
    response = sign_in_with(browser, "linker+unverified@example.com", "local-oidc-short")
    assert response.headers["Location"] == "/auth-error?error=account_not_linked"
    # A trusted provider links even an address it does not vouch for.
    response = sign_in_with(browser, "linker+unverified@example.com", "local-oidc-basic")
    assert response.headers["Location"] == "/dashboard"
    listed = browser.get("/api/auth/list-accounts").get_json()
    assert [a["providerId"] for a in listed] == ["credential", "local-oidc", "local-oidc-basic"]
    assert list(listed[1]) == [
        "accountId",
        "providerId",
        "userId",
        "createdAt",
        "updatedAt",
        "id",
        "scopes",
    ]
    assert listed[0]["scopes"] == [] and listed[1]["scopes"] == ["openid", "email", "profile"]


def test_link_social_refused_once_its_session_is_gone(oauth_app: Flask) -> None:
    """The state seals the starting session's token (Better Auth's ``derivePurposeKey`` +
    ``symmetricEncrypt``); the callback refuses the link when that session was revoked, even
    if another user has signed in meanwhile in the same browser (state cookie still there)."""
    browser = oauth_app.test_client()
    alice = sign_up(browser, "alice@example.com")
    body = {"callbackURL": "/settings", "errorCallbackURL": "/link-error"}
    url = start(browser, path="/link-social", loginHint="alice@example.com", **body)
    link = json.loads(rows(oauth_app, Verification)[0].value)["link"]
    keys = (purpose_key(SECRET, LINK_PURPOSE),)
    assert open_sealed(keys, link["encryptedSessionToken"]) == alice.token
    assert link["userId"] == alice.user["id"]
    assert browser.post("/api/auth/sign-out", headers=ORIGIN).status_code == 200
    sign_up(browser, "bob@example.com")  # another user now signed in in this browser
    response = callback(browser, provider_login(url.get_json()["url"]))
    assert response.status_code == 302
    assert response.headers["Location"] == "/link-error?error=unable_to_link_account"
    assert "better-auth.session-token" not in set_cookies(response)
    assert [a.provider_id for a in rows(oauth_app, Account)] == ["credential", "credential"]
    # A tampered seal is refused too; an untouched link from a live session goes through.
    assert sign_in(browser, "alice@example.com").status_code == 200
    url = start(browser, path="/link-social", loginHint="alice@example.com", **body)
    with oauth_app.app_context():
        db = oauth_app.extensions["better_auth"].db
        row = db.session.execute(db.select(Verification)).scalar_one()
        value = json.loads(row.value)
        sealed = value["link"]["encryptedSessionToken"]
        value["link"]["encryptedSessionToken"] = sealed[:-2] + (
            "11" if sealed[-2:] == "00" else "00"
        )
        row.value = json.dumps(value)
        db.session.commit()
    response = callback(browser, provider_login(url.get_json()["url"]))
    assert response.headers["Location"] == "/link-error?error=unable_to_link_account"
    url = start(browser, path="/link-social", loginHint="alice@example.com", **body)
    response = callback(browser, provider_login(url.get_json()["url"]))
    assert response.headers["Location"] == "/settings"


@pytest.mark.settings(ACCOUNT_LINKING_ENABLED=False)
def test_linking_disabled(oauth_app: Flask) -> None:
    sign_up(oauth_app.test_client(), "off@example.com")
    verify_email(oauth_app, "off@example.com")
    response = sign_in_with(oauth_app.test_client(), "off@example.com")
    assert response.headers["Location"] == "/auth-error?error=account_not_linked"


def test_link_social_and_unlink(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    sign_up(client, "owner@example.com")  # unverified: link-social does not need it
    anonymous = oauth_app.test_client().post(
        "/api/auth/link-social", json={"provider": "local-oidc"}, headers=ORIGIN
    )
    assert anonymous.status_code == 401
    body = {"callbackURL": "/settings", "errorCallbackURL": "/link-error"}
    url = start(client, path="/link-social", loginHint="owner@example.com", **body)
    value = json.loads(rows(oauth_app, Verification)[0].value)
    assert value["link"]["email"] == "owner@example.com"
    assert list(value["link"]) == ["userId", "email", "encryptedSessionToken"]  # the spec's
    assert list(value) == [
        "callbackURL",
        "codeVerifier",
        "errorURL",
        "newUserURL",  # start() sends newUserCallbackURL (the spec's call did not)
        "link",
        "expiresAt",
        "idTokenNonce",
        "oauthState",
    ]
    response = callback(client, provider_login(url.get_json()["url"]))
    assert response.headers["Location"] == "/settings"
    assert "better-auth.session-token" not in set_cookies(response)  # no new session
    # Another address: refused; an address the provider does not vouch for: refused.
    url = start(client, path="/link-social", loginHint="someone@example.com", **body)
    response = callback(client, provider_login(url.get_json()["url"]))
    assert response.headers["Location"] == "/link-error?error=email_does_not_match"
    hint = "owner+unverified@example.com"
    url = start(client, "local-oidc-short", path="/link-social", loginHint=hint, **body)
    response = callback(client, provider_login(url.get_json()["url"]))
    assert response.headers["Location"] == "/link-error?error=unable_to_link_account"

    accounts = client.get("/api/auth/list-accounts").get_json()
    assert [a["providerId"] for a in accounts] == ["credential", "local-oidc"]
    missing = client.post("/api/auth/unlink-account", json={"accountId": "nope"}, headers=ORIGIN)
    assert missing.status_code == 400 and missing.get_json()["code"] == "ACCOUNT_NOT_FOUND"
    invalid = client.post(
        "/api/auth/unlink-account", json={"providerId": "local-oidc"}, headers=ORIGIN
    )
    assert invalid.get_json() == {
        "message": "[body.accountId] Invalid input: expected string, received undefined",
        "code": "VALIDATION_ERROR",
    }
    unlinked: list[Any] = []
    account_unlinked.connect(lambda app, **kw: unlinked.append(kw), oauth_app, weak=False)
    response = client.post(
        "/api/auth/unlink-account", json={"accountId": accounts[1]["id"]}, headers=ORIGIN
    )
    assert response.status_code == 200 and response.get_json() == {"status": True}
    assert unlinked[0]["provider_id"] == "local-oidc"
    last = client.post(
        "/api/auth/unlink-account", json={"accountId": accounts[0]["id"]}, headers=ORIGIN
    )
    assert last.status_code == 400 and last.get_json()["code"] == "FAILED_TO_UNLINK_LAST_ACCOUNT"


# --------------------------------------------------------------------------- tokens


def test_get_access_token_refreshes_a_token_about_to_expire(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    sign_in_with(client, "short@example.com", "local-oidc-short")
    (account,) = client.get("/api/auth/list-accounts").get_json()
    first = rows(oauth_app, Account)[0].access_token
    # 4-second tokens: under 5 s left already, so get-access-token refreshes at once.
    response = client.post(
        "/api/auth/get-access-token", json={"accountId": account["id"]}, headers=ORIGIN
    )
    data = response.get_json()
    assert list(data) == ["accessToken", "accessTokenExpiresAt", "scopes", "idToken"]
    assert data["accessToken"] != first and data["scopes"] == ["openid", "email", "profile"]
    assert rows(oauth_app, Account)[0].access_token == data["accessToken"]
    invalid = client.post(
        "/api/auth/get-access-token", json={"providerId": "x"}, headers=ORIGIN
    ).get_json()
    assert invalid == {"message": "[body] Invalid input", "code": "VALIDATION_ERROR"}
    anonymous = oauth_app.test_client().post(
        "/api/auth/get-access-token", json={"accountId": account["id"]}, headers=ORIGIN
    )
    assert anonymous.status_code == 401 and anonymous.get_data() == b""


def test_refresh_token_and_account_info(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    sign_in_with(client, "refresh@example.com")
    (account,) = client.get("/api/auth/list-accounts").get_json()
    stored = client.post(
        "/api/auth/get-access-token", json={"accountId": account["id"]}, headers=ORIGIN
    ).get_json()
    assert stored["accessToken"] == rows(oauth_app, Account)[0].access_token  # not refreshed
    response = client.post(
        "/api/auth/refresh-token", json={"accountId": account["id"]}, headers=ORIGIN
    )
    data = response.get_json()
    assert list(data) == [
        "accessToken",
        "refreshToken",
        "accessTokenExpiresAt",
        "refreshTokenExpiresAt",
        "scope",
        "idToken",
        "providerId",
        "accountId",
    ]
    assert data["scope"] == "openid,email,profile" and data["accountId"] == account["id"]
    assert data["accessToken"] != stored["accessToken"]
    info = client.get(f"/api/auth/account-info?accountId={account['id']}").get_json()
    assert list(info) == ["user", "data", "account"]
    assert info["user"] == {
        "email": "refresh@example.com",
        "emailVerified": True,
        "name": "Refresh",
    }
    assert info["account"]["providerId"] == "local-oidc"
    assert list(info["data"])[:4] == ["id", "emailVerified", "sub", "email"]
    assert info["data"]["iss"] and info["data"]["aud"] == CLIENT_ID


# --------------------------------------------------------------------------- id token


def id_token_of(app: Flask, email: str, client: FlaskClient) -> tuple[str, str]:
    sign_in_with(client, email)
    value_nonce = rows(app, Account)[-1].id_token or ""
    from flask_better_auth.oauth.providers import decode_unverified

    return value_nonce, decode_unverified(value_nonce)["nonce"]


def test_id_token_sign_in(oauth_app: Flask) -> None:
    token, nonce = id_token_of(oauth_app, "idtoken@example.com", oauth_app.test_client())
    client = oauth_app.test_client()
    body = {"provider": "local-oidc", "idToken": {"token": token, "nonce": nonce}}
    response = client.post("/api/auth/sign-in/social", json=body, headers=ORIGIN)
    data = response.get_json()
    assert list(data) == ["redirect", "token", "user"] and data["redirect"] is False
    assert "better-auth.session-token" in set_cookies(response)
    no_nonce = {"provider": "local-oidc", "idToken": {"token": token}}
    assert client.post("/api/auth/sign-in/social", json=no_nonce, headers=ORIGIN).status_code == 200
    for bad in (
        {"token": token, "nonce": "wrong"},
        {"token": token[:-4] + "AAAA"},
        {"token": "not-a-jwt"},
    ):
        body = {"provider": "local-oidc", "idToken": bad}
        refused = client.post("/api/auth/sign-in/social", json=body, headers=ORIGIN)
        assert refused.status_code == 401 and refused.get_json()["code"] == "INVALID_TOKEN"
    # Another client's token: wrong audience.
    other = {"provider": "local-oidc-basic", "idToken": {"token": token}}
    refused = client.post("/api/auth/sign-in/social", json=other, headers=ORIGIN)
    assert refused.status_code == 401


@pytest.mark.settings(COOKIE_NAMING="better-auth")
def test_better_auth_cookie_names(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    response = start(client, loginHint="names@example.com")
    assert "better-auth.state" in set_cookies(response)
    back = callback(client, provider_login(response.get_json()["url"]))
    assert list(set_cookies(back))[:2] == ["better-auth.state", "better-auth.session_token"]
    stale = oauth_app.test_client()
    url = start(stale, loginHint="stale@example.com").get_json()["url"]
    assert callback(client, provider_login(url)).headers["Location"].endswith("state_mismatch")


# --------------------------------------------------------------------------- storage, fuzz


@pytest.mark.settings(
    SECONDARY_STORAGE_URL=REDIS_URL,
    SECONDARY_STORAGE_PREFIX=f"oauth-test-{uuid.uuid4().hex}:",
    VERIFICATION_STORE_IN_DATABASE=False,
    COOKIE_CACHE_ENABLED=True,
)
def test_flow_with_redis_state_and_the_cookie_cache(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    response = start(client, loginHint="redis-user@example.com")
    assert rows(oauth_app, Verification) == []  # the state lives in Redis
    back = provider_login(response.get_json()["url"])
    thief = callback(oauth_app.test_client(), back)
    assert thief.headers["Location"] == "/auth-error?error=state_mismatch"
    done = callback(client, back)
    assert done.headers["Location"] == "/welcome"
    assert "better-auth.session-data" in set_cookies(done)
    assert callback(client, back).headers["Location"].endswith("error=state_mismatch")
    session = client.get("/api/auth/get-session").get_json()
    assert session["user"]["email"] == "redis-user@example.com"


QUERY_KEYS = st.sampled_from(["code", "state", "iss", "error", "error_description", "x", ""])
QUERY_VALUES = st.one_of(st.text(max_size=40), st.sampled_from(["", "%", "\\x00", "a" * 3000]))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    query=st.lists(st.tuples(QUERY_KEYS, QUERY_VALUES), max_size=6),
    real_state=st.booleans(),
    with_cookie=st.booleans(),
)
def test_no_callback_query_is_a_5xx(
    oauth_app: Flask, query: list[tuple[str, str]], real_state: bool, with_cookie: bool
) -> None:
    """Whatever the query string, the callback answers a 302 with ``?error=`` (or success)."""
    client = oauth_app.test_client(use_cookies=with_cookie)
    pairs = list(query)
    if real_state:
        url = start(client, disableRedirect=True).get_json()["url"]
        pairs.append(("state", parse_qs(urlsplit(url).query)["state"][0]))
    response = client.get("/api/auth/callback/local-oidc", query_string=pairs)
    assert response.status_code == 302, response.get_data()[:300]
    assert response.headers["Location"]
    assert response.get_data() == b""


def test_disable_implicit_sign_up_unless_requested(database_url: str, oidc_issuer: str) -> None:
    configured = providers(oidc_issuer)[:1]
    configured[0]["disable_implicit_sign_up"] = True
    app = make_app(database_url, PLUGINS=["generic-oauth"], GENERIC_OAUTH_PROVIDERS=configured)
    client = app.test_client()
    refused = sign_in_with(client, "nosignup@example.com")
    assert refused.headers["Location"] == "/auth-error?error=signup_disabled"
    assert rows(app, User) == []
    response = start(client, loginHint="nosignup@example.com", requestSignUp=True)
    assert json.loads(rows(app, Verification)[0].value)["requestSignUp"] is True
    done = callback(client, provider_login(response.get_json()["url"]))
    assert done.headers["Location"] == "/welcome"
    dispose(app)


@pytest.mark.settings(ENCRYPT_OAUTH_TOKENS=True)
def test_encrypted_tokens_in_better_auths_format(oauth_app: Flask, node_env: Any) -> None:
    client = oauth_app.test_client()
    sign_in_with(client, "sealed@example.com")
    (row,) = rows(oauth_app, Account)
    assert row.access_token and re.fullmatch(r"[0-9a-f]+", row.access_token)
    (account,) = client.get("/api/auth/list-accounts").get_json()
    data = client.post(
        "/api/auth/get-access-token", json={"accountId": account["id"]}, headers=ORIGIN
    ).get_json()
    assert data["accessToken"] != row.access_token and data["idToken"].count(".") == 2
    # Better Auth's own code reads what we wrote, and we read what it writes.
    script = str(E2E_DIR / "token_crypto.mjs")
    read = subprocess.run(
        [node_env.node, script, "decrypt", SECRET, row.access_token],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=E2E_DIR,
    )
    assert read.stdout.strip() == data["accessToken"], read.stderr
    written = subprocess.run(
        [node_env.node, script, "encrypt", SECRET, "from-better-auth"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=E2E_DIR,
    ).stdout.strip()
    with oauth_app.app_context():
        from flask_better_auth.oauth.encryption import decrypt

        assert decrypt((SECRET,), written) == "from-better-auth"


def test_an_unexpected_failure_is_still_a_redirect(
    oauth_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(app: Flask, **kwargs: Any) -> None:
        raise RuntimeError("a receiver failed")

    user_signed_up.connect(broken, oauth_app, weak=False)
    try:
        with caplog.at_level("ERROR", "flask_better_auth.oauth"):
            response = sign_in_with(oauth_app.test_client(), "broken@example.com")
    finally:
        user_signed_up.disconnect(broken, oauth_app)
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth-error?error=internal_server_error"
    assert "a receiver failed" in caplog.text
    # Sent once the rows were committed: the receiver saw a user that exists.
    assert [user.email for user in rows(oauth_app, User)] == ["broken@example.com"]


def test_official_client_sign_in_social_and_link_social(
    tmp_path: Any, oidc_issuer: str, node_env: Any
) -> None:
    """``authClient.signIn.social`` and ``linkSocial`` (better-auth/client in Node) against our
    app served over real HTTP, the provider's pages driven by the same script."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    app = make_app(
        f"sqlite:///{tmp_path / 'e2e.sqlite'}",
        BASE_URL=origin,
        PLUGINS=["generic-oauth"],
        GENERIC_OAUTH_PROVIDERS=providers(oidc_issuer),
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [node_env.node, str(E2E_DIR / "oauth_client.mjs"), origin, "client-e2e@example.com"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=E2E_DIR,
        )
    finally:
        server.shutdown()
        thread.join()
        dispose(app)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["passed"] == 7


def test_an_id_token_with_another_nonce_is_refused(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    url = start(client, loginHint="nonce@example.com").get_json()["url"]
    with oauth_app.app_context():  # the state now expects another nonce than the provider's
        db = oauth_app.extensions["better_auth"].db
        row = db.session.execute(db.select(Verification)).scalar_one()
        row.value = json.dumps({**json.loads(row.value), "idTokenNonce": "another-nonce"})
        db.session.commit()
    response = callback(client, provider_login(url))
    assert response.headers["Location"] == "/auth-error?error=invalid_id_token"
    assert rows(oauth_app, User) == []


def test_an_account_linked_by_the_js_server_signs_in_here(tmp_path: Any, oidc_issuer: str) -> None:
    """The peer's database (made by Better Auth in Node) with an OAuth account row written as
    Better Auth writes it (ISO dates, comma-joined scope): its user signs in through that
    provider as a returning user and the account is listed."""
    db_file = tmp_path / "peer.sqlite"
    shutil.copy(Path(__file__).parent / "fixtures" / "peer-better-auth.sqlite", db_file)
    email = "peer.person@example.com"
    sub = "dyn." + base64.urlsafe_b64encode(email.encode()).decode().rstrip("=")
    with sqlite3.connect(db_file) as conn:
        (user_id,) = conn.execute("SELECT id FROM user WHERE email = ?", (email,)).fetchone()
        conn.execute(
            "INSERT INTO account (id, accountId, providerId, userId, accessToken, scope,"
            ' "createdAt", "updatedAt") VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
            (
                "jsLinkedAccount0000000000000000",
                sub,
                "local-oidc",
                user_id,
                "old-token",
                "openid,email,profile",
                "2026-12-01T21:26:54.315Z",
                "2026-12-01T21:26:54.315Z",
            ),
        )
    app = make_app(
        f"sqlite:///{db_file}",
        create_tables=False,
        PLUGINS=["generic-oauth"],
        GENERIC_OAUTH_PROVIDERS=providers(oidc_issuer),
    )
    client = app.test_client()
    response = sign_in_with(client, email)
    assert response.headers["Location"] == "/dashboard"  # a returning user
    listed = client.get("/api/auth/list-accounts").get_json()
    assert [(a["providerId"], a["accountId"]) for a in listed] == [
        ("credential", user_id),
        ("local-oidc", sub),
    ]
    assert listed[1]["createdAt"] == "2026-12-01T21:26:54.315Z"
    assert [a.access_token for a in rows(app, Account) if a.provider_id == "local-oidc"] != [
        "old-token"
    ]
    dispose(app)


def test_userinfo_is_asked_when_the_id_token_has_no_email(
    database_url: str, oidc_issuer_strict: str
) -> None:
    app = make_app(
        database_url,
        PLUGINS=["generic-oauth"],
        GENERIC_OAUTH_PROVIDERS=providers(oidc_issuer_strict),
    )
    client = app.test_client()
    response = sign_in_with(client, "strict@example.com")
    assert response.headers["Location"] == "/welcome"
    user = client.get("/api/auth/get-session").get_json()["user"]
    assert user["email"] == "strict@example.com" and user["name"] == "Strict"
    (account,) = rows(app, Account)
    from flask_better_auth.oauth.providers import decode_unverified

    assert "email" not in decode_unverified(account.id_token or "")  # it came from userinfo
    dispose(app)


class _Recorder(BaseHTTPRequestHandler):
    """Records the back channel's requests, then passes them on to the provider."""

    upstream: ClassVar[str] = ""
    seen: ClassVar[list[tuple[str, dict[str, str], str]]] = []

    def _relay(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).seen.append((self.path, headers, body))
        forwarded = {k: v for k, v in headers.items() if k in ("authorization", "content-type")}
        answer = httpx.request(
            self.command, self.upstream + self.path, content=body, headers=forwarded
        )
        self.send_response(answer.status_code)
        self.send_header("content-type", answer.headers.get("content-type", "application/json"))
        self.send_header("content-length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = _relay

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("authentication", ["post", "basic"])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_back_channel_requests_are_better_auths(
    database_url: str, oidc_issuer: str, authentication: str
) -> None:
    _Recorder.upstream, _Recorder.seen = oidc_issuer, []
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    proxy = f"http://127.0.0.1:{recorder.server_address[1]}"
    client_id = CLIENT_ID if authentication == "post" else f"{CLIENT_ID}-basic"
    configured = {
        "provider_id": "local-oidc",
        "client_id": client_id,
        "client_secret": CLIENT_SECRET,
        "authorization_url": f"{oidc_issuer}/auth",
        "token_url": f"{proxy}/token",
        "user_info_url": f"{proxy}/me",
        "scopes": ["openid", "email", "profile"],
        "authentication": authentication,
    }
    app = make_app(database_url, PLUGINS=["generic-oauth"], GENERIC_OAUTH_PROVIDERS=[configured])
    try:
        client = app.test_client()
        assert sign_in_with(client, "wire@example.com").headers["Location"] == "/welcome"
        (account,) = client.get("/api/auth/list-accounts").get_json()
        refreshed = client.post(
            "/api/auth/refresh-token", json={"accountId": account["id"]}, headers=ORIGIN
        )
        assert refreshed.status_code == 200
    finally:
        recorder.shutdown()
        thread.join()
        recorder.server_close()
        dispose(app)
    (token, _), (userinfo, _), (refresh, _) = [
        ((path, [k for k, _ in parse_qsl(body)]), headers) for path, headers, body in _Recorder.seen
    ]
    credentials = ["client_id", "client_secret"] if authentication == "post" else []
    grant = ["grant_type", "code", "code_verifier", "redirect_uri"]
    assert token == ("/token", grant + credentials)
    assert userinfo == ("/me", [])  # no email in the id_token's claims for a plain OAuth provider
    assert refresh == ("/token", ["grant_type", "refresh_token", *credentials])
    headers = _Recorder.seen[0][1]
    assert headers["accept"] == "application/json"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers.get("authorization", "").startswith("Basic ") == (authentication == "basic")
    assert _Recorder.seen[1][1]["authorization"].startswith("Bearer ")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_discovery_is_fetched_once(database_url: str, oidc_issuer: str) -> None:
    _Recorder.upstream, _Recorder.seen = oidc_issuer, []
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    proxy = f"http://127.0.0.1:{recorder.server_address[1]}"
    configured = providers(oidc_issuer)[:1]
    configured[0]["discovery_url"] = f"{proxy}/.well-known/openid-configuration"
    app = make_app(database_url, PLUGINS=["generic-oauth"], GENERIC_OAUTH_PROVIDERS=configured)
    try:
        for email in ("first@example.com", "second@example.com"):
            assert sign_in_with(app.test_client(), email).status_code == 302
    finally:
        recorder.shutdown()
        thread.join()
        recorder.server_close()
        dispose(app)
    assert [path for path, _, _ in _Recorder.seen] == ["/.well-known/openid-configuration"]


def test_rotated_provider_keys_are_fetched_again(oauth_app: Flask, oidc_issuer: str) -> None:
    """A cached JWKS that no longer holds the signing key is fetched again (at most once a
    minute, so forged tokens cannot make us hammer the provider)."""
    from joserfc.jwk import RSAKey

    from flask_better_auth.oauth import client as back_channel

    token, _ = id_token_of(oauth_app, "rotated@example.com", oauth_app.test_client())
    stale = {"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}
    jwks_uri = f"{oidc_issuer}/jwks"
    body = {"provider": "local-oidc", "idToken": {"token": token}}
    try:
        back_channel._cache[jwks_uri] = (time.monotonic(), stale)  # fresh: not fetched again
        refused = oauth_app.test_client().post(
            "/api/auth/sign-in/social", json=body, headers=ORIGIN
        )
        assert refused.status_code == 401
        back_channel._cache[jwks_uri] = (time.monotonic() - 120, stale)  # old: fetched again
        accepted = oauth_app.test_client().post(
            "/api/auth/sign-in/social", json=body, headers=ORIGIN
        )
        assert accepted.status_code == 200
    finally:
        back_channel._cache.pop(jwks_uri, None)


def test_extra_scopes_and_additional_params(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    response = start(
        client,
        scopes=["offline_access", "email"],
        additionalParams={"prompt": "login", "state": "ignored", "ui_locales": "fr"},
        disableRedirect=True,
    )
    query = parse_qsl(urlsplit(response.get_json()["url"]).query)
    params = dict(query)
    assert params["scope"] == "openid email profile offline_access"  # no duplicate
    assert params["prompt"] == "login" and params["ui_locales"] == "fr"
    assert [k for k, _ in query].count("state") == 1 and params["state"] != "ignored"
    bad = client.post(
        "/api/auth/sign-in/social",
        json={"provider": "local-oidc", "scopes": "openid"},
        headers=ORIGIN,
    )
    assert bad.status_code == 400 and bad.get_json()["code"] == "VALIDATION_ERROR"
    untrusted = client.post(
        "/api/auth/sign-in/social",
        json={"provider": "local-oidc", "callbackURL": "https://evil.example/"},
        headers=ORIGIN,
    )
    assert untrusted.status_code == 403 and untrusted.get_json()["code"] == "INVALID_CALLBACK_URL"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    token=st.one_of(
        st.text(max_size=80),
        st.lists(st.text(alphabet="AZaz09-_=.{}", max_size=30), min_size=2, max_size=5).map(
            ".".join
        ),
        st.sampled_from(["e30.e30.", "eyJhbGciOiJub25lIn0.e30.", "a.b.c", "...."]),
    ),
    nonce=st.one_of(st.none(), st.text(max_size=10), st.integers()),
)
def test_no_id_token_is_a_5xx(oauth_app: Flask, token: str, nonce: Any) -> None:
    body: dict[str, Any] = {"provider": "local-oidc", "idToken": {"token": token}}
    if nonce is not None:
        body["idToken"]["nonce"] = nonce
    response = oauth_app.test_client().post("/api/auth/sign-in/social", json=body, headers=ORIGIN)
    assert response.status_code == 401, response.get_data()[:300]
    assert response.get_json()["code"] == "INVALID_TOKEN"


def test_a_malformed_jwks_is_a_refusal_not_a_crash(
    oauth_app: Flask, oidc_issuer: str, caplog: pytest.LogCaptureFixture
) -> None:
    from flask_better_auth.oauth import client as back_channel

    token, _ = id_token_of(oauth_app, "jwks@example.com", oauth_app.test_client())
    jwks_uri = f"{oidc_issuer}/jwks"
    body = {"provider": "local-oidc", "idToken": {"token": token}}
    try:
        back_channel._cache[jwks_uri] = (time.monotonic(), {"keys": "not-a-list"})
        with caplog.at_level("ERROR", "flask_better_auth.oauth"):
            response = oauth_app.test_client().post(
                "/api/auth/sign-in/social", json=body, headers=ORIGIN
            )
    finally:
        back_channel._cache.pop(jwks_uri, None)
    assert response.status_code == 401 and response.get_json()["code"] == "INVALID_TOKEN"
    assert "malformed" in caplog.text


@pytest.mark.settings(ACCOUNT_LINKING_REQUIRE_LOCAL_EMAIL_VERIFIED=False)
def test_local_verification_not_required(oauth_app: Flask) -> None:
    sign_up(oauth_app.test_client(), "relaxed@example.com")  # unverified
    browser = oauth_app.test_client()
    response = sign_in_with(browser, "relaxed+unverified@example.com", "local-oidc-short")
    assert response.headers["Location"] == "/auth-error?error=account_not_linked"  # nobody vouches
    assert sign_in_with(browser, "relaxed@example.com").headers["Location"] == "/dashboard"


@pytest.mark.settings(ACCOUNT_LINKING_ALLOW_DIFFERENT_EMAILS=True)
def test_link_social_with_another_address_when_allowed(oauth_app: Flask) -> None:
    client = oauth_app.test_client()
    sign_up(client, "main@example.com")
    url = start(client, path="/link-social", loginHint="other-address@example.com").get_json()
    response = callback(client, provider_login(url["url"]))
    assert response.headers["Location"] == "/dashboard"
    providers_linked = [a["providerId"] for a in client.get("/api/auth/list-accounts").get_json()]
    assert providers_linked == ["credential", "local-oidc"]

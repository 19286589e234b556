"""The built-in providers: their authorization URLs, their profile mappings against the
responses their public documentation shows, the settings' validation, and Google's code flow
against the real OpenID provider (its endpoints overridden, as the peer capture did)."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import ORIGIN, make_app
from oidc_provider import CLIENT_ID, CLIENT_SECRET, oidc_issuer, provider_login

from flask_better_auth import ConfigError
from flask_better_auth.oauth.profiles import (
    Profile,
    discord_profile,
    facebook_profile,
    github_profile,
    gitlab_profile,
    microsoft_profile,
    oidc_profile,
    reddit_profile,
    spotify_profile,
    twitter_profile,
    zoom_profile,
)
from flask_better_auth.oauth.providers import BUILTIN, configure_social

__all__ = ["oidc_issuer"]


# Google's ID token claims (developers.google.com/identity/openid-connect/openid-connect,
# "An ID token's payload").
GOOGLE_CLAIMS = {
    "iss": "https://accounts.google.com",
    "azp": "1234987819200.apps.googleusercontent.com",
    "aud": "1234987819200.apps.googleusercontent.com",
    "sub": "10769150350006150715113082367",
    "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
    "hd": "example.com",
    "email": "Jsmith@example.com",
    "email_verified": True,
    "iat": 1353601026,
    "exp": 1353604926,
    "nonce": "0394852-3190485-2490358",
    "name": "Jane Smith",
    "picture": "https://lh3.googleusercontent.com/a/photo.jpg",
}
# GitHub's "Get the authenticated user" (docs.github.com/rest/users/users), abridged, with the
# primary address of "List email addresses for the authenticated user" merged in.
GITHUB_USER = {
    "login": "octocat",
    "id": 1,
    "node_id": "MDQ6VXNlcjE=",
    "avatar_url": "https://github.com/images/error/octocat_happy.gif",
    "type": "User",
    "name": "monalisa octocat",
    "company": "GitHub",
    "email": "octocat@github.com",
    "email_verified": True,
}
# Discord's "Get Current User" (discord.com/developers/docs/resources/user).
DISCORD_USER = {
    "id": "80351110224678912",
    "username": "Nelly",
    "discriminator": "1337",
    "global_name": "Nelly N",
    "avatar": "8342729096ea3675442027381ff50dfe",
    "verified": True,
    "email": "nelly@discord.com",
}
# GitLab's "Get the current user" (docs.gitlab.com/api/users), abridged.
GITLAB_USER = {
    "id": 1,
    "username": "john_smith",
    "email": "john@example.com",
    "name": "John Smith",
    "avatar_url": "http://localhost:3000/uploads/user/avatar/1/index.jpg",
    "confirmed_at": "2012-05-23T09:05:22Z",
}

# Microsoft identity platform ID token claims (learn.microsoft.com/entra/identity-platform/
# id-token-claims-reference), with the optional email claims.
MICROSOFT_CLAIMS = {
    "aud": "6cb04018-a3f5-46a7-b995-940c78f5aef3",
    "iss": "https://login.microsoftonline.com/b9419818-09af-49c2-b0c3-653adc1f376e/v2.0",
    "name": "Abe Lincoln",
    "oid": "00000000-0000-0000-66f3-3332eca7ea81",
    "preferred_username": "abeli@microsoft.com",
    "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
    "email": "abeli@microsoft.com",
    "verified_primary_email": ["abeli@microsoft.com"],
    "tid": "b9419818-09af-49c2-b0c3-653adc1f376e",
}
# Graph API "User" fields id,name,email,picture (developers.facebook.com/docs/graph-api).
FACEBOOK_ME = {
    "id": "10158771234567890",
    "name": "Jane Doe",
    "email": "jane@example.com",
    "picture": {"data": {"height": 50, "is_silhouette": False, "url": "https://x.fbcdn.net/p.jpg"}},
}
# Spotify "Get Current User's Profile" (developer.spotify.com/documentation/web-api).
SPOTIFY_ME = {
    "country": "SE",
    "display_name": "JM Wizzler",
    "email": "email@example.com",
    "id": "wizzler",
    "images": [{"url": "https://i.scdn.co/image/ab67616d00001e02", "height": 300, "width": 300}],
    "type": "user",
}
# Zoom "Get a user" (developers.zoom.us/docs/api/users), abridged.
ZOOM_ME = {
    "id": "KDcuGIm1QgePTO8WbOqwIQ",
    "first_name": "Jill",
    "last_name": "Chill",
    "display_name": "Jill Chill",
    "email": "jchill@example.com",
    "pic_url": "https://example.com/photo.jpg",
    "verified": 1,
}
# X "GET /2/users/me" with user.fields=profile_image_url,confirmed_email (docs.x.com).
TWITTER_ME = {
    "data": {
        "id": "2244994945",
        "name": "X Dev",
        "username": "TwitterDev",
        "profile_image_url": "https://pbs.twimg.com/profile_images/normal.jpg",
        "confirmed_email": "dev@example.com",
    }
}
# LinkedIn "Sign In with LinkedIn using OpenID Connect" userinfo (learn.microsoft.com/linkedin).
LINKEDIN_USERINFO = {
    "sub": "782bbtaQ",
    "name": "John Doe",
    "given_name": "John",
    "family_name": "Doe",
    "picture": "https://media.licdn-ei.com/dms/image/C5F03AQHqK8v7tB1HCQ/profile.jpg",
    "locale": "en-US",
    "email": "doe@email.com",
    "email_verified": True,
}


@pytest.mark.parametrize(
    ("mapper", "claims", "expected"),
    [
        (
            oidc_profile,
            GOOGLE_CLAIMS,
            Profile(
                "10769150350006150715113082367",
                "jsmith@example.com",
                True,
                "Jane Smith",
                "https://lh3.googleusercontent.com/a/photo.jpg",
            ),
        ),
        (
            github_profile,
            GITHUB_USER,
            Profile(
                "1",
                "octocat@github.com",
                True,
                "monalisa octocat",
                "https://github.com/images/error/octocat_happy.gif",
            ),
        ),
        (
            github_profile,
            {**GITHUB_USER, "name": None, "email": None, "email_verified": False},
            Profile("1", None, False, "octocat", GITHUB_USER["avatar_url"]),
        ),
        (
            discord_profile,
            DISCORD_USER,
            Profile(
                "80351110224678912",
                "nelly@discord.com",
                True,
                "Nelly N",
                "https://cdn.discordapp.com/avatars/80351110224678912/"
                "8342729096ea3675442027381ff50dfe.png",
            ),
        ),
        (
            gitlab_profile,
            GITLAB_USER,
            Profile("1", "john@example.com", True, "John Smith", GITLAB_USER["avatar_url"]),
        ),
        (
            microsoft_profile,
            MICROSOFT_CLAIMS,
            Profile(MICROSOFT_CLAIMS["sub"], "abeli@microsoft.com", True, "Abe Lincoln", None),
        ),
        (
            microsoft_profile,
            {**MICROSOFT_CLAIMS, "verified_primary_email": []},
            Profile(MICROSOFT_CLAIMS["sub"], "abeli@microsoft.com", False, "Abe Lincoln", None),
        ),
        (
            facebook_profile,
            FACEBOOK_ME,
            Profile(
                "10158771234567890",
                "jane@example.com",
                False,
                "Jane Doe",
                "https://x.fbcdn.net/p.jpg",
            ),
        ),
        (
            spotify_profile,
            SPOTIFY_ME,
            Profile(
                "wizzler",
                "email@example.com",
                False,
                "JM Wizzler",
                "https://i.scdn.co/image/ab67616d00001e02",
            ),
        ),
        (
            zoom_profile,
            ZOOM_ME,
            Profile(
                "KDcuGIm1QgePTO8WbOqwIQ",
                "jchill@example.com",
                True,
                "Jill Chill",
                "https://example.com/photo.jpg",
            ),
        ),
        (
            twitter_profile,
            TWITTER_ME,
            Profile(
                "2244994945",
                "dev@example.com",
                True,
                "X Dev",
                "https://pbs.twimg.com/profile_images/normal.jpg",
            ),
        ),
        (
            oidc_profile,
            LINKEDIN_USERINFO,
            Profile("782bbtaQ", "doe@email.com", True, "John Doe", LINKEDIN_USERINFO["picture"]),
        ),
    ],
)
def test_profile_mappings(mapper: Any, claims: dict[str, Any], expected: Profile) -> None:
    assert mapper(claims) == expected


def test_github_authorization_url_matches_better_auths() -> None:
    app = make_app(
        "sqlite://",
        SOCIAL_PROVIDERS={"github": {"client_id": "peer-github-client-id", "client_secret": "s"}},
    )
    client = app.test_client()
    body = {"provider": "github", "callbackURL": "/dashboard", "disableRedirect": True}
    data = client.post("/api/auth/sign-in/social", json=body, headers=ORIGIN).get_json()
    url = urlsplit(data["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == BUILTIN["github"].authorization_url
    assert [pair.split("=")[0] for pair in url.query.split("&")] == [
        "response_type",
        "client_id",
        "state",
        "scope",
        "redirect_uri",
        "code_challenge_method",
        "code_challenge",
    ]
    assert parse_qs(url.query)["scope"] == ["read:user user:email"]
    body = {"provider": "github", "idToken": {"token": "a.b.c"}}
    refused = client.post("/api/auth/sign-in/social", json=body, headers=ORIGIN)
    assert refused.status_code == 404 and refused.get_json()["code"] == "ID_TOKEN_NOT_SUPPORTED"
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("SOCIAL_PROVIDERS", {"myspace": {"client_id": "x"}}, "unknown provider 'myspace'"),
        ("SOCIAL_PROVIDERS", {"github": {}}, "needs a client_id"),
        ("SOCIAL_PROVIDERS", ["github"], "must be a dict"),
        ("GENERIC_OAUTH_PROVIDERS", [{"client_id": "x"}], "no provider_id"),
        ("GENERIC_OAUTH_PROVIDERS", [{"provider_id": "a", "client_id": "x"}], "discovery_url"),
        (
            "GENERIC_OAUTH_PROVIDERS",
            [{"provider_id": "a", "client_id": "x", "discovery_url": "u", "authentication": "jwt"}],
            "'post' or 'basic'",
        ),
        ("GENERIC_OAUTH_PROVIDERS", {"a": 1}, "must be a list"),
    ],
)
def test_settings_are_checked(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_app("sqlite://", create_tables=False, PLUGINS=["generic-oauth"], **{key: value})


def test_google_code_flow_decodes_the_id_token(database_url: str, oidc_issuer: str) -> None:
    google = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "authorization_url": f"{oidc_issuer}/auth",
        "token_url": f"{oidc_issuer}/token",
    }
    app = make_app(database_url, SOCIAL_PROVIDERS={"google": google})
    client = app.test_client()
    body = {"provider": "google", "callbackURL": "/dashboard", "loginHint": "g@example.com"}
    data = client.post("/api/auth/sign-in/social", json=body, headers=ORIGIN).get_json()
    query = urlsplit(data["url"]).query
    assert "nonce=" not in query and query.endswith("&include_granted_scopes=true")
    assert parse_qs(query)["scope"] == ["email profile openid"]
    back = urlsplit(provider_login(data["url"]))
    response = client.get(f"{back.path}?{back.query}")
    assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
    user = client.get("/api/auth/get-session").get_json()["user"]
    assert user["email"] == "g@example.com" and user["emailVerified"] is True
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


def test_tenant_and_self_hosted_base_urls() -> None:
    providers = configure_social(
        "K",
        {
            "microsoft": {"client_id": "c", "tenant_id": "contoso.onmicrosoft.com"},
            "gitlab": {"client_id": "c", "base_url": "https://git.example.com/"},
            "github": {"client_id": "c", "authorization_url": "https://ghe.example.com/auth"},
        },
    )
    assert providers["microsoft"].authorization_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    )
    assert providers["gitlab"].token_url == "https://git.example.com/oauth/token"
    assert providers["gitlab"].userinfo_url == "https://git.example.com/api/v4/user"
    assert providers["github"].authorization_url == "https://ghe.example.com/auth"
    assert providers["github"].token_url == BUILTIN["github"].token_url


def test_example_app_shows_a_button_per_configured_provider(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "quickstart" / "app.py"
    monkeypatch.setenv("FLASK_BETTER_AUTH_SECRET", "example-secret-0123456789-abcdefghijklmnop")
    monkeypatch.setenv("FLASK_SQLALCHEMY_DATABASE_URI", f"sqlite:///{tmp_path / 'ex.sqlite'}")
    monkeypatch.setenv(
        "FLASK_BETTER_AUTH_SOCIAL_PROVIDERS", '{"github": {"client_id": "c", "client_secret": "s"}}'
    )
    spec = importlib.util.spec_from_file_location("quickstart_oauth_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # Flask finds its templates by it
    spec.loader.exec_module(module)
    app = module.app
    page = app.test_client().get("/").get_data(as_text=True)
    assert '<button type="button" data-provider="github">Sign in with github</button>' in page
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()


# Sign in with Apple's identity token payload (developer.apple.com/documentation/
# signinwithapple/authenticating-users-with-sign-in-with-apple): email_verified may be a string.
APPLE_CLAIMS = {
    "iss": "https://appleid.apple.com",
    "aud": "com.example.web",
    "exp": 1700000000,
    "iat": 1699990000,
    "sub": "001234.5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c.1234",
    "email": "abc123@privaterelay.appleid.com",
    "email_verified": "true",
    "is_private_email": "true",
}


def test_apple_profile_and_client_secret() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from joserfc import jwt
    from joserfc.jwk import ECKey

    from flask_better_auth.oauth.profiles import apple_profile

    assert apple_profile(APPLE_CLAIMS) == Profile(
        APPLE_CLAIMS["sub"], "abc123@privaterelay.appleid.com", True, "", None
    )
    named = {**APPLE_CLAIMS, "email_verified": False, "name": {"firstName": "Ann", "lastName": "B"}}
    assert apple_profile(named).name == "Ann B" and not apple_profile(named).email_verified

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    options = {"client_id": "com.example.web", "team_id": "TEAM123", "key_id": "KEY456"}
    apple = configure_social("K", {"apple": {**options, "private_key": pem}})["apple"]
    secret = apple.secret()
    assert secret is not None
    public = ECKey.import_key(
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    token = jwt.decode(secret, public, algorithms=["ES256"])
    assert token.header["alg"] == "ES256" and token.header["kid"] == "KEY456"
    assert token.claims["iss"] == "TEAM123" and token.claims["sub"] == "com.example.web"
    assert token.claims["aud"] == "https://appleid.apple.com"
    assert 0 < token.claims["exp"] - token.claims["iat"] <= 15777000  # at most six months
    with pytest.raises(ConfigError, match="team_id, key_id and private_key"):
        configure_social("K", {"apple": options})
    with pytest.raises(ConfigError, match="not an EC private key"):
        configure_social("K", {"apple": {**options, "private_key": "nope"}})


# Kakao "Retrieve user information" (developers.kakao.com/docs/latest/en/kakaologin/rest-api).
KAKAO_ME = {
    "id": 123456789,
    "connected_at": "2022-04-11T01:45:28Z",
    "kakao_account": {
        "profile_nickname_needs_agreement": False,
        "profile": {
            "nickname": "홍길동",
            "thumbnail_image_url": "http://yyy.kakao.com/.../img_110x110.jpg",
            "profile_image_url": "http://yyy.kakao.com/dn/.../img_640x640.jpg",
            "is_default_image": False,
        },
        "email_needs_agreement": False,
        "is_email_valid": True,
        "is_email_verified": True,
        "email": "sample@sample.com",
    },
}
# Naver "회원 프로필 조회 API" (developers.naver.com/docs/login/profile).
NAVER_ME = {
    "resultcode": "00",
    "message": "success",
    "response": {
        "email": "openapi@naver.com",
        "nickname": "OpenAPI",
        "profile_image": "https://ssl.pstatic.net/static/pwe/address/nodata_33x33.gif",
        "id": "32742776",
        "name": "오픈 API",
    },
}
# Twitch OIDC id_token claims requested with the claims parameter (dev.twitch.tv/docs/
# authentication/getting-tokens-oidc).
TWITCH_CLAIMS = {
    "aud": "hof5gwx0su6owfnys0yan9c87zr6t",
    "exp": 1642110994,
    "iat": 1642110094,
    "iss": "https://id.twitch.tv/oauth2",
    "sub": "713936733",
    "email": "user@example.com",
    "email_verified": True,
    "picture": "https://static-cdn.jtvnw.net/user-default-pictures/profile.png",
    "preferred_username": "foo_bar",
}


def test_more_provider_mappings() -> None:
    from flask_better_auth.oauth.providers import kakao_profile, naver_profile

    assert kakao_profile(KAKAO_ME) == Profile(
        "123456789",
        "sample@sample.com",
        True,
        "홍길동",
        "http://yyy.kakao.com/dn/.../img_640x640.jpg",
    )
    assert naver_profile(NAVER_ME) == Profile(
        "32742776", "openapi@naver.com", False, "오픈 API", NAVER_ME["response"]["profile_image"]
    )
    assert oidc_profile(TWITCH_CLAIMS) == Profile(
        "713936733", "user@example.com", True, "foo_bar", TWITCH_CLAIMS["picture"]
    )
    # Twitch's id_token claims are asked for in the authorization URL.
    assert dict(BUILTIN["twitch"].extra_params)["claims"].startswith('{"id_token":')


# Dropbox "users/get_current_account" (dropbox.com/developers/documentation/http/documentation).
DROPBOX_ACCOUNT = {
    "account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc",
    "name": {
        "given_name": "Franz",
        "surname": "Ferdinand",
        "familiar_name": "Franz",
        "display_name": "Franz Ferdinand (Personal)",
        "abbreviated_name": "FF",
    },
    "email": "franz@dropbox.com",
    "email_verified": True,
    "disabled": False,
    "profile_photo_url": "https://dl-web.dropbox.com/account_photo/get/dbaphid%3AAAHWGmIXV3s",
}


def test_dropbox_mapping_and_userinfo_by_post() -> None:
    from flask_better_auth.oauth.providers import dropbox_profile

    assert dropbox_profile(DROPBOX_ACCOUNT) == Profile(
        DROPBOX_ACCOUNT["account_id"],
        "franz@dropbox.com",
        True,
        "Franz Ferdinand (Personal)",
        DROPBOX_ACCOUNT["profile_photo_url"],
    )
    assert BUILTIN["dropbox"].userinfo_method == "POST"


def test_google_one_tap_id_token(database_url: str) -> None:
    """An id_token as Google signs them (iss with or without the scheme, aud = the client id),
    verified against Google's JWKS (here: a key of the test's own in its place)."""
    import time

    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from flask_better_auth.oauth import client as back_channel

    key = RSAKey.generate_key(2048, parameters={"kid": "google-test"})
    jwks_uri = BUILTIN["google"].jwks_uri or ""
    app = make_app(database_url, SOCIAL_PROVIDERS={"google": {"client_id": "web.apps.example"}})
    now = int(time.time())
    try:
        back_channel._cache[jwks_uri] = (time.monotonic(), {"keys": [key.as_dict(private=False)]})
        for number, issuer in enumerate(("accounts.google.com", "https://accounts.google.com")):
            claims = {
                **GOOGLE_CLAIMS,
                "iss": issuer,
                "aud": "web.apps.example",
                "iat": now,
                "exp": now + 600,
                "sub": f"google-{number}",
                "email": f"one-tap-{number}@example.com",
            }
            token = jwt.encode({"alg": "RS256", "kid": "google-test"}, claims, key)
            body = {"provider": "google", "idToken": {"token": token, "nonce": claims["nonce"]}}
            response = app.test_client().post("/api/auth/sign-in/social", json=body, headers=ORIGIN)
            assert response.status_code == 200, response.get_json()
            assert response.get_json()["user"]["email"] == f"one-tap-{number}@example.com"
        forged = jwt.encode(
            {"alg": "RS256", "kid": "google-test"},
            {**claims, "iss": "https://evil.example", "sub": "x"},
            key,
        )
        body = {"provider": "google", "idToken": {"token": forged}}
        refused = app.test_client().post("/api/auth/sign-in/social", json=body, headers=ORIGIN)
        assert refused.status_code == 401
    finally:
        back_channel._cache.pop(jwks_uri, None)
        with app.app_context():
            app.extensions["better_auth"].db.session.remove()
            app.extensions["better_auth"].db.engine.dispose()


# Reddit "GET /api/v1/me" (reddit.com/dev/api#GET_api_v1_me), trimmed to the fields we read.
REDDIT_ME = {
    "id": "1x2y3z",
    "name": "spez",
    "icon_img": "https://styles.redditmedia.com/t5_3k/styles/profileIcon_x.png?width=256&s=abc",
    "has_verified_email": True,
    "verified": True,
    "created_utc": 1118030400.0,
}


class _Reddit(BaseHTTPRequestHandler):
    """Reddit's token endpoint and ``/api/v1/me`` as documented, recording what we send (the
    real Reddit cannot run here)."""

    seen: ClassVar[list[tuple[str, dict[str, str], str]]] = []

    def _answer(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode()
        type(self).seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self._answer(
            {
                "access_token": "reddit-at",
                "token_type": "bearer",
                "expires_in": 86400,
                "scope": "identity",
            }
        )

    def do_GET(self) -> None:
        type(self).seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, ""))
        self._answer(REDDIT_ME)

    def log_message(self, *args: Any) -> None:
        pass


def test_reddit_profile_and_flow(database_url: str) -> None:
    assert reddit_profile(REDDIT_ME) == Profile(
        "1x2y3z",
        "1x2y3z@reddit.placeholder.invalid",
        False,  # Reddit never shows the address; has_verified_email is about another one
        "spez",
        "https://styles.redditmedia.com/t5_3k/styles/profileIcon_x.png",
    )
    _Reddit.seen.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Reddit)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    reddit = {
        "client_id": "reddit-app",
        "client_secret": "reddit-secret",
        "token_url": f"{base}/api/v1/access_token",
        "user_info_url": f"{base}/api/v1/me",
        "duration": "permanent",
    }
    app = make_app(database_url, SOCIAL_PROVIDERS={"reddit": reddit})
    try:
        client = app.test_client()
        body = {"provider": "reddit", "callbackURL": "/dashboard"}
        data = client.post("/api/auth/sign-in/social", json=body, headers=ORIGIN).get_json()
        url = urlsplit(data["url"])
        assert f"{url.scheme}://{url.netloc}{url.path}" == "https://www.reddit.com/api/v1/authorize"
        query = parse_qs(url.query)
        assert query["scope"] == ["identity"] and query["duration"] == ["permanent"]
        assert "code_challenge" not in query and "nonce" not in query
        response = client.get(f"/api/auth/callback/reddit?code=c0de&state={query['state'][0]}")
        assert response.status_code == 302 and response.headers["Location"] == "/dashboard"
        user = client.get("/api/auth/get-session").get_json()["user"]
        assert user["email"] == "1x2y3z@reddit.placeholder.invalid"
        assert user["emailVerified"] is False and user["name"] == "spez"
        assert user["image"] == "https://styles.redditmedia.com/t5_3k/styles/profileIcon_x.png"
        (token_path, token_headers, form), (me_path, me_headers, _) = _Reddit.seen
        assert token_path == "/api/v1/access_token" and me_path == "/api/v1/me"
        basic = base64.b64encode(b"reddit-app:reddit-secret").decode()
        assert token_headers["authorization"] == f"Basic {basic}"
        assert token_headers["user-agent"] == me_headers["user-agent"] == "better-auth"
        assert me_headers["authorization"] == "Bearer reddit-at"
        sent = parse_qs(form)
        assert "client_secret" not in sent and "code_verifier" not in sent
        assert sent["code"] == ["c0de"] and sent["grant_type"] == ["authorization_code"]
    finally:
        server.shutdown()
        server.server_close()
        with app.app_context():
            app.extensions["better_auth"].db.session.remove()
            app.extensions["better_auth"].db.engine.dispose()

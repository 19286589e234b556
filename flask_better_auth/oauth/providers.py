"""OAuth 2.0 / OpenID Connect providers: one small declaration each.

A :class:`Provider` is everything the flow needs of one provider: its endpoints, default
scopes, client credentials, how it authenticates at the token endpoint, whether it is an
OpenID provider (nonce, verified id_token) and how its profile maps to a user (the mappings
live in :mod:`.profiles`). The built-in
ones are declared in :data:`BUILTIN` and configured with ``BETTER_AUTH_SOCIAL_PROVIDERS``; the
``generic-oauth`` plugin builds more from discovery documents.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal

from joserfc import jwt
from joserfc.jwk import ECKey

from ..config import ConfigError
from .profiles import (
    ProfileMapper,
    apple_profile,
    discord_profile,
    dropbox_profile,
    facebook_profile,
    github_profile,
    gitlab_profile,
    kakao_profile,
    microsoft_profile,
    naver_profile,
    oidc_profile,
    reddit_profile,
    spotify_profile,
    twitter_profile,
    zoom_profile,
)


def apple_client_secret(
    team_id: str, key_id: str, private_key: str, client_id: str, *, lifetime: int = 3600
) -> str:
    """Apple's client secret: an ES256 JWT signed with the app's private key (Apple allows up
    to six months; made fresh for each request, so one hour is plenty)."""
    now = int(time.time())
    claims = {
        "iss": team_id,
        "iat": now,
        "exp": now + lifetime,
        "aud": "https://appleid.apple.com",
        "sub": client_id,
    }
    key = ECKey.import_key(private_key)
    return jwt.encode({"alg": "ES256", "kid": key_id}, claims, key)


@dataclass(frozen=True)
class Provider:
    """One configured provider (``id`` is the ``<providerId>`` of the callback URL)."""

    id: str
    client_id: str
    client_secret: str | None
    authorization_url: str
    token_url: str
    userinfo_url: str | None
    scopes: tuple[str, ...]
    profile: ProfileMapper = oidc_profile
    pkce: bool = True
    authentication: Literal["post", "basic"] = "post"
    #: An OpenID provider whose id_token is verified (signature, iss, aud, exp, nonce).
    oidc: bool = False
    issuer: str | None = None
    #: Other spellings of the issuer its id_tokens may carry (Google: without the scheme).
    issuer_aliases: tuple[str, ...] = ()
    jwks_uri: str | None = None
    #: Read the profile from the id_token's claims when it has the email (Google).
    claims_from_id_token: bool = False
    #: Ask ``GET /user/emails`` for the primary address and its verified flag (GitHub).
    github_emails: bool = False
    #: Parameters appended to the authorization URL, in order.
    extra_params: tuple[tuple[str, str], ...] = ()
    redirect_uri: str | None = None
    discovery_url: str | None = None
    disable_implicit_sign_up: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    #: How userinfo is asked for (Dropbox wants a POST without a body).
    userinfo_method: Literal["GET", "POST"] = "GET"
    #: Makes the client secret for each request (Apple's signed JWT), instead of a fixed one.
    secret_factory: Callable[[], str] | None = None
    #: Headers sent with every back-channel request (Reddit refuses clients without a
    #: ``User-Agent`` of their own).
    headers: tuple[tuple[str, str], ...] = ()

    def secret(self) -> str | None:
        """The client secret to send now."""
        return self.secret_factory() if self.secret_factory is not None else self.client_secret


#: Built-in providers: endpoints and defaults from each provider's public documentation.
BUILTIN: Mapping[str, Provider] = {
    provider.id: provider
    for provider in (
        Provider(
            "google",
            "",
            None,
            "https://accounts.google.com/o/oauth2/v2/auth",
            "https://oauth2.googleapis.com/token",
            "https://openidconnect.googleapis.com/v1/userinfo",
            ("email", "profile", "openid"),
            issuer="https://accounts.google.com",
            issuer_aliases=("accounts.google.com",),
            jwks_uri="https://www.googleapis.com/oauth2/v3/certs",
            claims_from_id_token=True,
            extra_params=(("include_granted_scopes", "true"),),
        ),
        Provider(
            "github",
            "",
            None,
            "https://github.com/login/oauth/authorize",
            "https://github.com/login/oauth/access_token",
            "https://api.github.com/user",
            ("read:user", "user:email"),
            profile=github_profile,
            github_emails=True,
        ),
        Provider(
            "discord",
            "",
            None,
            "https://discord.com/oauth2/authorize",
            "https://discord.com/api/oauth2/token",
            "https://discord.com/api/users/@me",
            ("identify", "email"),
            profile=discord_profile,
        ),
        Provider(
            "gitlab",
            "",
            None,
            "https://gitlab.com/oauth/authorize",
            "https://gitlab.com/oauth/token",
            "https://gitlab.com/api/v4/user",
            ("read_user",),
            profile=gitlab_profile,
        ),
        Provider(
            "apple",
            "",
            None,
            "https://appleid.apple.com/auth/authorize",
            "https://appleid.apple.com/auth/token",
            None,
            ("email", "name"),
            profile=apple_profile,
            issuer="https://appleid.apple.com",
            jwks_uri="https://appleid.apple.com/auth/keys",
            claims_from_id_token=True,
            # Apple posts the answer back when names or emails are asked for.
            extra_params=(("response_mode", "form_post"),),
        ),
        Provider(
            "twitch",
            "",
            None,
            "https://id.twitch.tv/oauth2/authorize",
            "https://id.twitch.tv/oauth2/token",
            "https://id.twitch.tv/oauth2/userinfo",
            ("user:read:email", "openid"),
            claims_from_id_token=True,
            # Twitch puts these claims in the id_token only when asked to.
            extra_params=(
                (
                    "claims",
                    '{"id_token":{"email":null,"email_verified":null,"picture":null,'
                    '"preferred_username":null}}',
                ),
            ),
        ),
        Provider(
            "kakao",
            "",
            None,
            "https://kauth.kakao.com/oauth/authorize",
            "https://kauth.kakao.com/oauth/token",
            "https://kapi.kakao.com/v2/user/me",
            ("account_email", "profile_image", "profile_nickname"),
            profile=kakao_profile,
        ),
        Provider(
            "naver",
            "",
            None,
            "https://nid.naver.com/oauth2.0/authorize",
            "https://nid.naver.com/oauth2.0/token",
            "https://openapi.naver.com/v1/nid/me",
            ("profile", "email"),
            profile=naver_profile,
        ),
        Provider(
            "line",
            "",
            None,
            "https://access.line.me/oauth2/v2.1/authorize",
            "https://api.line.me/oauth2/v2.1/token",
            "https://api.line.me/oauth2/v2.1/userinfo",
            ("openid", "profile", "email"),
            claims_from_id_token=True,
        ),
        Provider(
            "dropbox",
            "",
            None,
            "https://www.dropbox.com/oauth2/authorize",
            "https://api.dropboxapi.com/oauth2/token",
            "https://api.dropboxapi.com/2/users/get_current_account",
            ("account_info.read",),
            profile=dropbox_profile,
            userinfo_method="POST",
        ),
        Provider(
            "microsoft",
            "",
            None,
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            "https://graph.microsoft.com/oidc/userinfo",
            ("openid", "profile", "email", "User.Read", "offline_access"),
            profile=microsoft_profile,
            claims_from_id_token=True,
        ),
        Provider(
            "facebook",
            "",
            None,
            "https://www.facebook.com/v21.0/dialog/oauth",
            "https://graph.facebook.com/v21.0/oauth/access_token",
            "https://graph.facebook.com/me?fields=id,name,email,picture",
            ("email", "public_profile"),
            profile=facebook_profile,
        ),
        Provider(
            "linkedin",
            "",
            None,
            "https://www.linkedin.com/oauth/v2/authorization",
            "https://www.linkedin.com/oauth/v2/accessToken",
            "https://api.linkedin.com/v2/userinfo",
            ("profile", "email", "openid"),
        ),
        Provider(
            "slack",
            "",
            None,
            "https://slack.com/openid/connect/authorize",
            "https://slack.com/api/openid.connect.token",
            "https://slack.com/api/openid.connect.userInfo",
            ("openid", "profile", "email"),
        ),
        Provider(
            "spotify",
            "",
            None,
            "https://accounts.spotify.com/authorize",
            "https://accounts.spotify.com/api/token",
            "https://api.spotify.com/v1/me",
            ("user-read-email",),
            profile=spotify_profile,
        ),
        Provider(
            "zoom",
            "",
            None,
            "https://zoom.us/oauth/authorize",
            "https://zoom.us/oauth/token",
            "https://api.zoom.us/v2/users/me",
            (),
            profile=zoom_profile,
        ),
        Provider(
            "twitter",
            "",
            None,
            "https://x.com/i/oauth2/authorize",
            "https://api.x.com/2/oauth2/token",
            "https://api.x.com/2/users/me?user.fields=profile_image_url,confirmed_email",
            ("users.read", "tweet.read", "offline.access", "users.email"),
            profile=twitter_profile,
            authentication="basic",
        ),
        Provider(
            "reddit",
            "",
            None,
            "https://www.reddit.com/api/v1/authorize",
            "https://www.reddit.com/api/v1/access_token",
            "https://oauth.reddit.com/api/v1/me",
            ("identity",),
            profile=reddit_profile,
            pkce=False,  # Better Auth sends no code_challenge to Reddit
            authentication="basic",
            headers=(("user-agent", "better-auth"),),
        ),
    )
}

_OVERRIDES = {
    "authorization_url": "authorization_url",
    "token_url": "token_url",
    "user_info_url": "userinfo_url",
    "userinfo_url": "userinfo_url",
    "redirect_uri": "redirect_uri",
    "issuer": "issuer",
    "jwks_uri": "jwks_uri",
}


def configure_social(key: str, value: Any) -> dict[str, Provider]:
    """The built-in providers configured by ``BETTER_AUTH_SOCIAL_PROVIDERS``.

    :raises ConfigError: an unknown provider, or a provider without ``client_id``.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{key} must be a dict (or JSON object).") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a dict of provider id → options.")
    providers: dict[str, Provider] = {}
    for provider_id, options in value.items():
        base = BUILTIN.get(provider_id)
        if base is None:
            known = ", ".join(sorted(BUILTIN))
            raise ConfigError(f"{key} names an unknown provider {provider_id!r} (known: {known}).")
        if not isinstance(options, Mapping) or not isinstance(options.get("client_id"), str):
            raise ConfigError(f"{key}[{provider_id!r}] needs a client_id.")
        changes: dict[str, Any] = {
            "client_id": options["client_id"],
            "client_secret": options.get("client_secret"),
            "options": dict(options),
            "disable_implicit_sign_up": bool(options.get("disable_implicit_sign_up", False)),
        }
        if "scopes" in options:
            changes["scopes"] = tuple(str(s) for s in options["scopes"])
        tenant = options.get("tenant_id")
        if provider_id == "microsoft" and isinstance(tenant, str) and tenant:
            # Entra ID: the tenant replaces "common" in the endpoints (single-tenant apps).
            for attribute in ("authorization_url", "token_url"):
                changes[attribute] = getattr(base, attribute).replace("/common/", f"/{tenant}/")
        if provider_id == "apple" and not options.get("client_secret"):
            parts = [options.get(name) for name in ("team_id", "key_id", "private_key")]
            if not all(isinstance(part, str) and part for part in parts):
                raise ConfigError(
                    f"{key}['apple'] needs a client_secret, or team_id, key_id and private_key."
                )
            team_id, key_id, private_key = (str(part) for part in parts)
            try:
                ECKey.import_key(private_key)
            except (ValueError, TypeError):
                raise ConfigError(f"{key}['apple'].private_key is not an EC private key.") from None
            changes["secret_factory"] = partial(
                apple_client_secret, team_id, key_id, private_key, options["client_id"]
            )
        duration = options.get("duration")
        if provider_id == "reddit" and isinstance(duration, str) and duration:
            # "permanent" asks Reddit for a refresh token (the default, "temporary", has none).
            changes["extra_params"] = (("duration", duration),)
        base_url = options.get("base_url")
        if provider_id == "gitlab" and isinstance(base_url, str) and base_url:
            root = base_url.rstrip("/")  # a self-hosted GitLab
            changes["authorization_url"] = f"{root}/oauth/authorize"
            changes["token_url"] = f"{root}/oauth/token"
            changes["userinfo_url"] = f"{root}/api/v4/user"
        for option, attribute in _OVERRIDES.items():
            if options.get(option):
                changes[attribute] = str(options[option])
        providers[provider_id] = replace(base, **changes)
    return providers


def decode_unverified(id_token: str) -> dict[str, Any]:
    """The claims of a JWT, not verified (Better Auth's code flow for built-in providers: the
    token came straight from the provider's token endpoint over TLS)."""
    try:
        payload = id_token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["BUILTIN", "Provider", "apple_client_secret", "configure_social", "decode_unverified"]

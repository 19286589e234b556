"""The ``generic-oauth`` plugin: any OAuth 2.0 / OpenID Connect provider from settings.

``BETTER_AUTH_GENERIC_OAUTH_PROVIDERS`` lists the providers (a dict each). As in Better Auth
1.7 the plugin adds no route of its own: each provider is used through ``/sign-in/social``
and ``/callback/<provider_id>`` like a built-in one. A provider with a ``discovery_url`` reads
its endpoints from the discovery document (fetched on first use, cached); when that document
lists ``id_token_signing_alg_values_supported`` and a ``jwks_uri`` it is an OpenID provider:
a nonce is sent and the id_token is verified (signature, ``iss``, ``aud``, ``exp``, nonce).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..config import ConfigError, ConfigReader, Keys
from ..oauth import client
from ..oauth.providers import Provider
from . import Plugin, register_plugin

KEYS = Keys({"GENERIC_OAUTH_PROVIDERS": []}, owner="generic-oauth")

_STRINGS = (
    "discovery_url",
    "authorization_url",
    "token_url",
    "user_info_url",
    "client_secret",
    "prompt",
    "access_type",
    "response_mode",
    "redirect_uri",
)


@dataclass(frozen=True)
class GenericProvider:
    """One entry of ``BETTER_AUTH_GENERIC_OAUTH_PROVIDERS``, checked."""

    provider_id: str
    client_id: str
    options: Mapping[str, Any]
    scopes: tuple[str, ...]
    pkce: bool
    authentication: Literal["post", "basic"]

    def resolve(self) -> Provider:
        """The provider, its endpoints read from the discovery document when there is one.

        :raises client.ProviderError: the discovery document cannot be fetched.
        """
        opts = self.options
        issuer = jwks_uri = None
        oidc = False
        authorization_url = opts.get("authorization_url")
        token_url = opts.get("token_url")
        userinfo_url = opts.get("user_info_url")
        if opts.get("discovery_url"):
            doc = client.cached_json(opts["discovery_url"])
            authorization_url = authorization_url or doc.get("authorization_endpoint")
            token_url = token_url or doc.get("token_endpoint")
            userinfo_url = userinfo_url or doc.get("userinfo_endpoint")
            issuer = doc.get("issuer") if isinstance(doc.get("issuer"), str) else None
            jwks_uri = doc.get("jwks_uri") if isinstance(doc.get("jwks_uri"), str) else None
            oidc = bool(doc.get("id_token_signing_alg_values_supported")) and jwks_uri is not None
        if not isinstance(authorization_url, str) or not isinstance(token_url, str):
            raise client.ProviderError("discovery document without endpoints")
        return Provider(
            self.provider_id,
            self.client_id,
            opts.get("client_secret"),
            authorization_url,
            token_url,
            userinfo_url if isinstance(userinfo_url, str) else None,
            self.scopes,
            pkce=self.pkce,
            authentication=self.authentication,
            oidc=oidc,
            issuer=issuer,
            jwks_uri=jwks_uri,
            redirect_uri=opts.get("redirect_uri"),
            discovery_url=opts.get("discovery_url"),
            disable_implicit_sign_up=bool(opts.get("disable_implicit_sign_up", False)),
            options=opts,
        )


@dataclass(frozen=True)
class GenericOAuthSettings:
    """The app's generic providers by id."""

    providers: Mapping[str, GenericProvider]

    def resolve(self, provider_id: str) -> Provider | None:
        """The provider ``provider_id`` (``None`` when not configured)."""
        generic = self.providers.get(provider_id)
        return generic.resolve() if generic is not None else None


def read_providers(key: str, value: Any) -> dict[str, GenericProvider]:
    """Check ``BETTER_AUTH_GENERIC_OAUTH_PROVIDERS`` (a ``ConfigError`` names the problem)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{key} must be a list of dicts (or a JSON list).") from None
    if not isinstance(value, list):
        raise ConfigError(f"{key} must be a list of dicts.")
    providers: dict[str, GenericProvider] = {}
    for entry in value:
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key}: each provider is a dict, not {entry!r}.")
        provider_id = entry.get("provider_id")
        if not isinstance(provider_id, str) or not provider_id:
            raise ConfigError(f"{key}: a provider has no provider_id.")
        where = f"{key}[{provider_id!r}]"
        if provider_id in providers:
            raise ConfigError(f"{where} is configured twice.")
        if not isinstance(entry.get("client_id"), str):
            raise ConfigError(f"{where} needs a client_id.")
        for name in _STRINGS:
            if entry.get(name) is not None and not isinstance(entry[name], str):
                raise ConfigError(f"{where}: {name} must be a string.")
        if not entry.get("discovery_url") and not (
            entry.get("authorization_url") and entry.get("token_url")
        ):
            raise ConfigError(f"{where} needs a discovery_url or authorization_url + token_url.")
        authentication = entry.get("authentication", "post")
        if authentication not in ("post", "basic"):
            raise ConfigError(f"{where}: authentication is 'post' or 'basic'.")
        scopes = entry.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ConfigError(f"{where}: scopes must be a list of strings.")
        providers[provider_id] = GenericProvider(
            provider_id,
            entry["client_id"],
            dict(entry),
            tuple(scopes),
            pkce=entry.get("pkce", True) is not False,
            authentication=authentication,
        )
    return providers


@register_plugin
class GenericOAuth(Plugin):
    """Better Auth's ``genericOAuth`` plugin."""

    id = "generic-oauth"
    keys = KEYS

    def read_settings(self, cfg: ConfigReader) -> GenericOAuthSettings:
        """Read ``BETTER_AUTH_GENERIC_OAUTH_PROVIDERS``."""
        key = cfg.key("GENERIC_OAUTH_PROVIDERS")
        return GenericOAuthSettings(read_providers(key, cfg.raw("GENERIC_OAUTH_PROVIDERS")))


__all__ = ["KEYS", "GenericOAuth", "GenericOAuthSettings", "GenericProvider", "read_providers"]

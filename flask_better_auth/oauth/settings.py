"""The social sign-in settings: configured providers and the account-linking rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ConfigReader, Keys
from .providers import Provider, configure_social

KEYS = Keys(
    {
        "SOCIAL_PROVIDERS": {},
        "ACCOUNT_LINKING_ENABLED": True,
        "ACCOUNT_LINKING_TRUSTED_PROVIDERS": [],
        "ACCOUNT_LINKING_ALLOW_DIFFERENT_EMAILS": False,
        "ACCOUNT_LINKING_REQUIRE_LOCAL_EMAIL_VERIFIED": True,
        "ENCRYPT_OAUTH_TOKENS": False,
    },
    owner="oauth",
)


@dataclass(frozen=True)
class OAuthSettings:
    """``BETTER_AUTH_SOCIAL_PROVIDERS`` and ``BETTER_AUTH_ACCOUNT_LINKING_*``, read once."""

    providers: Mapping[str, Provider]
    linking_enabled: bool
    trusted_providers: tuple[str, ...]
    allow_different_emails: bool
    require_local_email_verified: bool
    #: Keep access, refresh and id tokens encrypted in the account row.
    encrypt_tokens: bool = False


def read_oauth_settings(cfg: ConfigReader) -> OAuthSettings:
    """Read the keys (``ConfigError`` on an unknown provider or a missing client id)."""
    return OAuthSettings(
        providers=configure_social(cfg.key("SOCIAL_PROVIDERS"), cfg.raw("SOCIAL_PROVIDERS")),
        linking_enabled=cfg.bool("ACCOUNT_LINKING_ENABLED"),
        trusted_providers=tuple(cfg.list("ACCOUNT_LINKING_TRUSTED_PROVIDERS")),
        allow_different_emails=cfg.bool("ACCOUNT_LINKING_ALLOW_DIFFERENT_EMAILS"),
        require_local_email_verified=cfg.bool("ACCOUNT_LINKING_REQUIRE_LOCAL_EMAIL_VERIFIED"),
        encrypt_tokens=cfg.bool("ENCRYPT_OAUTH_TOKENS"),
    )


__all__ = ["KEYS", "OAuthSettings", "read_oauth_settings"]

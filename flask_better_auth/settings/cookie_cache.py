"""The cookie cache's settings (Better Auth's ``session.cookieCache``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..config import ConfigError, ConfigReader, Keys

STRATEGIES = ("compact", "jwt")


@dataclass(frozen=True)
class CookieCacheSettings:
    """``session.cookieCache``: whether the cache is written and read, for how long, and how."""

    enabled: bool
    max_age: timedelta
    strategy: str


#: The keys of ``session.cookieCache``.
KEYS = Keys(
    {
        "COOKIE_CACHE_ENABLED": False,
        "COOKIE_CACHE_MAX_AGE": timedelta(minutes=5),
        "COOKIE_CACHE_STRATEGY": "compact",
    },
    owner="cookie_cache",
)


def cookie_cache_settings(cfg: ConfigReader) -> CookieCacheSettings:
    """Read the ``BETTER_AUTH_COOKIE_CACHE_*`` keys."""
    max_age = cfg.duration("COOKIE_CACHE_MAX_AGE")
    if max_age < timedelta(seconds=1) or max_age > timedelta(days=400):
        raise ConfigError(
            "BETTER_AUTH_COOKIE_CACHE_MAX_AGE must be between 1 second and 400 days"
            f" (got {max_age})."
        )
    strategy = cfg.str("COOKIE_CACHE_STRATEGY").lower()
    if strategy not in STRATEGIES:
        raise ConfigError(
            "BETTER_AUTH_COOKIE_CACHE_STRATEGY must be 'compact' or 'jwt'"
            f" (Better Auth's 'jwe' is not supported), not {strategy!r}."
        )
    return CookieCacheSettings(
        enabled=cfg.bool("COOKIE_CACHE_ENABLED"), max_age=max_age, strategy=strategy
    )


__all__ = ["KEYS", "STRATEGIES", "CookieCacheSettings", "cookie_cache_settings"]

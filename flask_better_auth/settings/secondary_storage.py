"""Secondary storage's settings (Better Auth's ``secondaryStorage`` and what lives only there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..config import ConfigError, ConfigReader, Keys


@dataclass(frozen=True)
class SecondaryStorageSettings:
    """``secondaryStorage`` and the options deciding what lives only there.

    :ivar url: the Redis URL; ``None`` turns secondary storage off.
    :ivar store_session_in_database: sessions are written to the database too, which stays the
        source of truth (Redis answers first; the database when Redis misses or fails).
    :ivar verification_store_in_database: the same for verification values.
    """

    url: str | None
    prefix: str
    timeout: timedelta
    store_session_in_database: bool
    verification_store_in_database: bool

    @property
    def enabled(self) -> bool:
        """A Redis URL is configured."""
        return self.url is not None

    @property
    def sessions_in_database(self) -> bool:
        """Sessions are rows of the ``session`` table (always, without secondary storage)."""
        return not self.enabled or self.store_session_in_database

    @property
    def verifications_in_database(self) -> bool:
        """Verification values are rows of the ``verification`` table."""
        return not self.enabled or self.verification_store_in_database


#: The keys of Better Auth's ``secondaryStorage`` and where sessions and verifications live.
KEYS = Keys(
    {
        "SECONDARY_STORAGE_URL": None,
        "SECONDARY_STORAGE_PREFIX": "",
        "SECONDARY_STORAGE_TIMEOUT": 1.0,
        "STORE_SESSION_IN_DATABASE": True,
        "VERIFICATION_STORE_IN_DATABASE": None,
    },
    owner="secondary_storage",
)


def secondary_storage_settings(cfg: ConfigReader) -> SecondaryStorageSettings:
    """Read the ``BETTER_AUTH_SECONDARY_STORAGE_*`` and ``*_STORE_*_IN_DATABASE`` keys."""
    url = cfg.optional_str("SECONDARY_STORAGE_URL")
    if url is not None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                "BETTER_AUTH_SECONDARY_STORAGE_URL must be a Redis URL (redis://, rediss:// or"
                f" unix://), e.g. redis://127.0.0.1:6379/0, not {url!r}."
            )
        try:
            import redis  # noqa: F401
        except ImportError:
            raise ConfigError(
                "BETTER_AUTH_SECONDARY_STORAGE_URL needs the redis package:"
                " pip install 'flask-better-auth[redis]'."
            ) from None
    timeout = cfg.duration("SECONDARY_STORAGE_TIMEOUT")
    if timeout <= timedelta(0):
        raise ConfigError("BETTER_AUTH_SECONDARY_STORAGE_TIMEOUT must be longer than zero.")
    sessions = cfg.bool("STORE_SESSION_IN_DATABASE")
    verifications = cfg.optional_bool("VERIFICATION_STORE_IN_DATABASE")
    return SecondaryStorageSettings(
        url=url,
        prefix=cfg.str("SECONDARY_STORAGE_PREFIX"),
        timeout=timeout,
        store_session_in_database=sessions,
        verification_store_in_database=sessions if verifications is None else verifications,
    )


__all__ = ["KEYS", "SecondaryStorageSettings", "secondary_storage_settings"]

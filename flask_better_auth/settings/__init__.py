"""Typed settings: every ``BETTER_AUTH_*`` key, read once from ``app.config`` and validated."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ada_url import URL

from .. import cookies, ip, ratelimit_rules
from ..config import ConfigError, ConfigReader, Keys, warn_unknown_keys
from ..cookies import CookieSettings, cookie_settings
from ..crypto import SCRYPT_N
from ..ip import Network, ipv6_subnet, trusted_proxies
from ..origin import check_origin_patterns, parse_url
from ..ratelimit_rules import RateLimitSettings, rate_limit_settings
from . import cookie_cache, email, secondary_storage
from .cookie_cache import CookieCacheSettings, cookie_cache_settings
from .email import EmailSettings, email_settings
from .secondary_storage import SecondaryStorageSettings, secondary_storage_settings

#: The core's own keys; each feature module declares its own (``cookies.KEYS``, …).
KEYS = Keys(
    {
        "SECRET": None,
        "SECRET_FALLBACKS": [],
        "BASE_URL": None,
        "BASE_PATH": "/api/auth",
        "TRUSTED_ORIGINS": [],
        "SESSION_EXPIRES_IN": timedelta(days=7),
        "SESSION_UPDATE_AGE": timedelta(days=1),
        "SESSION_FRESH_AGE": timedelta(days=1),
        "DISABLE_SESSION_REFRESH": False,
        "EMAIL_AND_PASSWORD_ENABLED": True,
        "DISABLE_SIGN_UP": False,
        "AUTO_SIGN_IN": True,
        "REQUIRE_EMAIL_VERIFICATION": False,
        "MIN_PASSWORD_LENGTH": 8,
        "MAX_PASSWORD_LENGTH": 128,
        "DELETE_USER_ENABLED": False,
        "BEARER_ENABLED": True,
        "BEARER_REQUIRE_SIGNATURE": False,
        "CORS_ORIGINS": [],
        "CORS_ALLOW_CREDENTIALS": True,
        "CORS_PATHS": [],
        "DISABLE_ORIGIN_CHECK": False,
        "DISABLE_CSRF_CHECK": False,
        "MAX_BODY_SIZE": 1024 * 1024,
        "LOGIN_VIEW": None,
        "SCRYPT_N": SCRYPT_N,
        "RESET_PASSWORD_PAGE": None,
        "PLUGINS": [],
    }
)

#: Every key the core declares: the union of the groups' declarations. A plugin's keys join it
#: per app (``CORE_KEYS | plugin_keys``), so the unknown-key warning knows them too.
CORE_KEYS = (
    KEYS
    | cookies.KEYS
    | cookie_cache.KEYS
    | secondary_storage.KEYS
    | ip.KEYS
    | ratelimit_rules.KEYS
    | email.KEYS
)

#: Every core key (with its ``BETTER_AUTH_`` prefix) and its default, read-only.
#: ``init_app`` applies them with ``setdefault``.
DEFAULTS: Mapping[str, Any] = CORE_KEYS.defaults()

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SessionSettings:
    """Session lifetime rules (Better Auth's ``session`` options)."""

    expires_in: timedelta
    update_age: timedelta
    fresh_age: timedelta
    disable_refresh: bool


@dataclass(frozen=True)
class PasswordSettings:
    """Email + password sign-in options (Better Auth's ``emailAndPassword``)."""

    enabled: bool
    disable_sign_up: bool
    auto_sign_in: bool
    require_email_verification: bool
    min_length: int
    max_length: int
    scrypt_n: int


@dataclass(frozen=True)
class AuthSettings:
    """All settings of one app, built once by :meth:`from_config` in ``init_app``."""

    secret: str
    secret_fallbacks: tuple[str, ...]
    base_url: str
    base_path: str
    trusted_origins: tuple[str, ...]
    cookies: CookieSettings
    session: SessionSettings
    password: PasswordSettings
    delete_user_enabled: bool
    bearer_enabled: bool
    bearer_require_signature: bool
    cors_origins: tuple[str, ...]
    cors_allow_credentials: bool
    cors_paths: tuple[str, ...]
    disable_origin_check: bool
    disable_csrf_check: bool
    ip_address_headers: tuple[str, ...]
    disable_ip_tracking: bool
    trusted_proxies: tuple[Network, ...]
    ipv6_subnet: int
    rate_limit: RateLimitSettings
    max_body_size: int
    login_view: str | None
    #: Where a reset link requested without ``redirectTo`` lands (``None``: Better Auth's error).
    reset_password_page: str | None
    email: EmailSettings
    cookie_cache: CookieCacheSettings
    secondary_storage: SecondaryStorageSettings

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret that verifies a signature: the current one first, then the fallbacks."""
        return (self.secret, *self.secret_fallbacks)

    @functools.cached_property
    def base_origin(self) -> str:
        """The origin (scheme://host[:port]) of ``base_url``, trusted implicitly."""
        return URL(self.base_url).origin  # parseable: checked by from_config

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        testing: bool = False,
        debug: bool = False,
        instance_path: str = ".",
        keys: Keys = CORE_KEYS,
        email_kinds: Mapping[str, str] | None = None,
    ) -> AuthSettings:
        """Read and validate every ``BETTER_AUTH_*`` key.

        :param config: the app's config (absent keys take their declared default).
        :param testing: the app's ``TESTING`` flag; only then may the scrypt cost be lowered,
            and the rate limiter is then off unless turned on.
        :param debug: the app's debug flag: the email backend then defaults to ``console`` and
            the rate limiter to off.
        :param instance_path: where a relative ``BETTER_AUTH_EMAIL_OUTBOX`` path lives.
        :param keys: the declared keys: the core's, joined with the app's plugins' keys.
        :param email_kinds: the app's plugins' email kinds and their default subjects.
        :raises ConfigError: with a message naming the key and what is wrong.
        """
        warn_unknown_keys(config, keys)
        cfg = ConfigReader(config, keys)
        secret = cfg.raw("SECRET")
        if secret is not None and not isinstance(secret, str):
            # app.config.from_prefixed_env() reads FLASK_BETTER_AUTH_SECRET=123… as JSON.
            raise ConfigError(
                f"BETTER_AUTH_SECRET must be a string, not {type(secret).__name__} (from the"
                " environment, a value that reads as JSON, like digits only, is converted: use"
                " a random string of letters and digits)."
            )
        if not secret:
            raise ConfigError(
                "BETTER_AUTH_SECRET is not set: set it to a random string of at least 32"
                " characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        if len(secret) < 32:
            raise ConfigError(
                f"BETTER_AUTH_SECRET is too short ({len(secret)} characters): use at least 32."
            )
        fallbacks = tuple(cfg.list("SECRET_FALLBACKS"))
        base_url = _base_url(cfg.raw("BASE_URL"), testing=testing)
        base_path = str(cfg.raw("BASE_PATH") or "")
        if not base_path.startswith("/") or base_path.endswith("/"):
            raise ConfigError(
                "BETTER_AUTH_BASE_PATH must start with '/' and not end with one (it cannot be"
                f" '/': the auth routes need a prefix of their own): {base_path!r}."
            )
        cookie_group = cookie_settings(cfg)
        session = _session_settings(cfg)
        password = _password_settings(cfg, testing=testing)
        trusted = tuple(o.rstrip("/") for o in cfg.list("TRUSTED_ORIGINS") if o)
        check_origin_patterns("BETTER_AUTH_TRUSTED_ORIGINS", trusted)
        cors_origins = tuple(cfg.list("CORS_ORIGINS"))
        check_origin_patterns("BETTER_AUTH_CORS_ORIGINS", cors_origins)
        cors_credentials = cfg.bool("CORS_ALLOW_CREDENTIALS")
        if cors_credentials and "*" in cors_origins:
            raise ConfigError(
                "BETTER_AUTH_CORS_ORIGINS cannot contain '*' while"
                " BETTER_AUTH_CORS_ALLOW_CREDENTIALS is on: list the origins."
            )
        reset_page = _reset_password_page(
            cfg.raw("RESET_PASSWORD_PAGE"), base_url, (*trusted, *cors_origins)
        )
        max_body = cfg.int("MAX_BODY_SIZE")
        if max_body < 1024:
            raise ConfigError("BETTER_AUTH_MAX_BODY_SIZE must be at least 1024 bytes.")

        return cls(
            secret=secret,
            secret_fallbacks=fallbacks,
            base_url=base_url,
            base_path=base_path,
            trusted_origins=trusted,
            cookies=cookie_group,
            session=session,
            password=password,
            delete_user_enabled=cfg.bool("DELETE_USER_ENABLED"),
            bearer_enabled=cfg.bool("BEARER_ENABLED"),
            bearer_require_signature=cfg.bool("BEARER_REQUIRE_SIGNATURE"),
            cors_origins=cors_origins,
            cors_allow_credentials=cors_credentials,
            cors_paths=tuple(cfg.list("CORS_PATHS")),
            disable_origin_check=cfg.bool("DISABLE_ORIGIN_CHECK"),
            disable_csrf_check=cfg.bool("DISABLE_CSRF_CHECK"),
            ip_address_headers=tuple(h.lower() for h in cfg.list("IP_ADDRESS_HEADERS")),
            disable_ip_tracking=cfg.bool("DISABLE_IP_TRACKING"),
            trusted_proxies=trusted_proxies(cfg.raw("TRUSTED_PROXIES")),
            ipv6_subnet=ipv6_subnet(cfg.raw("IPV6_SUBNET")),
            rate_limit=rate_limit_settings(cfg, testing=testing, debug=debug),
            max_body_size=max_body,
            login_view=cfg.raw("LOGIN_VIEW") or None,
            reset_password_page=reset_page,
            email=email_settings(cfg, debug=debug, instance_path=instance_path, kinds=email_kinds),
            cookie_cache=cookie_cache_settings(cfg),
            secondary_storage=secondary_storage_settings(cfg),
        )


def _session_settings(cfg: ConfigReader) -> SessionSettings:
    session = SessionSettings(
        expires_in=cfg.duration("SESSION_EXPIRES_IN"),
        update_age=cfg.duration("SESSION_UPDATE_AGE"),
        fresh_age=cfg.duration("SESSION_FRESH_AGE"),
        disable_refresh=cfg.bool("DISABLE_SESSION_REFRESH"),
    )
    if session.expires_in.total_seconds() == 0:
        raise ConfigError("BETTER_AUTH_SESSION_EXPIRES_IN must be longer than zero.")
    if session.expires_in > timedelta(days=400):
        raise ConfigError(
            "BETTER_AUTH_SESSION_EXPIRES_IN is over 400 days, the longest cookie lifetime"
            " browsers keep."
        )
    return session


def _password_settings(cfg: ConfigReader, *, testing: bool) -> PasswordSettings:
    min_len = cfg.int("MIN_PASSWORD_LENGTH")
    max_len = cfg.int("MAX_PASSWORD_LENGTH")
    if min_len < 1 or max_len < min_len:
        raise ConfigError(
            "BETTER_AUTH_MIN_PASSWORD_LENGTH must be at least 1 and no more than"
            f" BETTER_AUTH_MAX_PASSWORD_LENGTH (got {min_len} and {max_len})."
        )
    scrypt_n = cfg.int("SCRYPT_N")
    if scrypt_n != SCRYPT_N and not testing:
        raise ConfigError(
            f"BETTER_AUTH_SCRYPT_N may differ from {SCRYPT_N} only when TESTING is on:"
            " other values make hashes no Better Auth deployment can verify."
        )
    if scrypt_n < 2 or scrypt_n & (scrypt_n - 1):
        raise ConfigError(f"BETTER_AUTH_SCRYPT_N must be a power of two, not {scrypt_n}.")
    return PasswordSettings(
        enabled=cfg.bool("EMAIL_AND_PASSWORD_ENABLED"),
        disable_sign_up=cfg.bool("DISABLE_SIGN_UP"),
        auto_sign_in=cfg.bool("AUTO_SIGN_IN"),
        require_email_verification=cfg.bool("REQUIRE_EMAIL_VERIFICATION"),
        min_length=min_len,
        max_length=max_len,
        scrypt_n=scrypt_n,
    )


def _reset_password_page(value: Any, base_url: str, trusted: tuple[str, ...]) -> str | None:
    """A path on the base URL's origin, or an absolute URL whose origin is listed exactly.

    Checked here, once, rather than on each click: a page the origin rules would refuse must
    fail at start-up, not in the user's inbox. Wildcard entries do not count (name the origin).
    Both forms are read as a browser reads them (WHATWG, like every other URL check).
    """
    if value is None or value == "":
        return None
    key = "BETTER_AUTH_RESET_PASSWORD_PAGE"
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a path like '/reset-password' or a URL, not {value!r}.")
    # Only a path is read against the base URL; anything else must be absolute on its own.
    url = parse_url(value, base_url) if value.startswith("/") else parse_url(value)
    base = parse_url(base_url)
    if url is None or base is None or _CONTROL.search(value) or "\\" in value:
        raise ConfigError(f"{key} must be a path like '/reset-password' or a URL, not {value!r}.")
    if value.startswith("/"):
        if value.startswith("//") or url.origin != base.origin:
            raise ConfigError(f"{key} must be a path like '/reset-password', not {value!r}.")
        return value
    if url.protocol not in ("http:", "https:") or not url.hostname or url.username or url.password:
        raise ConfigError(
            f"{key} must be a path like '/reset-password' or an http(s) URL, not {value!r}."
        )
    origins = {base.origin}
    for entry in trusted:
        parsed = parse_url(entry) if "*" not in entry and "?" not in entry else None
        if parsed is not None and parsed.protocol in ("http:", "https:"):
            origins.add(parsed.origin)
    if url.origin not in origins:
        raise ConfigError(
            f"{key} is on {url.origin}, which is not trusted: add it to"
            " BETTER_AUTH_TRUSTED_ORIGINS (or use a path on BETTER_AUTH_BASE_URL)."
        )
    return value


def _base_url(value: Any, *, testing: bool) -> str:
    """``BETTER_AUTH_BASE_URL``, normalised: every link and the implicit trusted origin come
    from it, never from the request's ``Host`` (which a client chooses)."""
    if not value:
        if testing:
            return "http://localhost"
        raise ConfigError(
            "BETTER_AUTH_BASE_URL is not set: set it to your site's public URL, e.g."
            ' BETTER_AUTH_BASE_URL = "https://example.com" (or FLASK_BETTER_AUTH_BASE_URL in'
            " the environment). Links in emails and the trusted origin are built from it."
        )
    url = parse_url(value) if isinstance(value, str) else None
    if (
        url is None
        or url.protocol not in ("http:", "https:")
        or url.username
        or url.password
        or url.search
        or url.hash
    ):
        raise ConfigError(
            f"BETTER_AUTH_BASE_URL must be an http(s) URL like https://example.com, not {value!r}."
        )
    return url.href.rstrip("/")


__all__ = [
    "CORE_KEYS",
    "DEFAULTS",
    "SCRYPT_N",
    "AuthSettings",
    "ConfigError",
    "CookieCacheSettings",
    "CookieSettings",
    "EmailSettings",
    "PasswordSettings",
    "RateLimitSettings",
    "SecondaryStorageSettings",
    "SessionSettings",
]

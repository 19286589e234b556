"""Typed settings: every ``BETTER_AUTH_*`` key, read once from ``app.config`` and validated."""

from __future__ import annotations

import difflib
import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ada_url import URL

from .config import ConfigError, as_bool, as_duration, as_int, as_list
from .cookie_cache import CookieCacheSettings, cookie_cache_settings
from .crypto import SCRYPT_N
from .email import EmailSettings, email_settings
from .ip import Network, ipv6_subnet, trusted_proxies
from .origin import check_origin_patterns, parse_url
from .ratelimit import RateLimitSettings, rate_limit_settings
from .secondary_storage import SecondaryStorageSettings, secondary_storage_settings

#: Every configuration key with its default. ``init_app`` applies them with ``setdefault``.
DEFAULTS: dict[str, Any] = {
    "BETTER_AUTH_SECRET": None,
    "BETTER_AUTH_SECRET_FALLBACKS": [],
    "BETTER_AUTH_BASE_URL": None,
    "BETTER_AUTH_BASE_PATH": "/api/auth",
    "BETTER_AUTH_TRUSTED_ORIGINS": [],
    "BETTER_AUTH_COOKIE_PREFIX": "better-auth",
    "BETTER_AUTH_SESSION_COOKIE_NAME": None,
    "BETTER_AUTH_SESSION_DATA_COOKIE_NAME": None,
    "BETTER_AUTH_DONT_REMEMBER_COOKIE_NAME": None,
    "BETTER_AUTH_COOKIE_SECURE": True,
    "BETTER_AUTH_COOKIE_SECURE_PREFIX": False,
    "BETTER_AUTH_COOKIE_HTTPONLY": True,
    "BETTER_AUTH_COOKIE_SAMESITE": "Lax",
    "BETTER_AUTH_COOKIE_DOMAIN": None,
    "BETTER_AUTH_COOKIE_PATH": "/",
    "BETTER_AUTH_COOKIE_MAX_AGE": True,
    "BETTER_AUTH_SESSION_EXPIRES_IN": timedelta(days=7),
    "BETTER_AUTH_SESSION_UPDATE_AGE": timedelta(days=1),
    "BETTER_AUTH_SESSION_FRESH_AGE": timedelta(days=1),
    "BETTER_AUTH_DISABLE_SESSION_REFRESH": False,
    "BETTER_AUTH_COOKIE_CACHE_ENABLED": False,
    "BETTER_AUTH_COOKIE_CACHE_MAX_AGE": timedelta(minutes=5),
    "BETTER_AUTH_COOKIE_CACHE_STRATEGY": "compact",
    "BETTER_AUTH_SECONDARY_STORAGE_URL": None,
    "BETTER_AUTH_SECONDARY_STORAGE_PREFIX": "",
    "BETTER_AUTH_SECONDARY_STORAGE_TIMEOUT": 1.0,
    "BETTER_AUTH_STORE_SESSION_IN_DATABASE": True,
    "BETTER_AUTH_VERIFICATION_STORE_IN_DATABASE": None,
    "BETTER_AUTH_EMAIL_AND_PASSWORD_ENABLED": True,
    "BETTER_AUTH_DISABLE_SIGN_UP": False,
    "BETTER_AUTH_AUTO_SIGN_IN": True,
    "BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION": False,
    "BETTER_AUTH_MIN_PASSWORD_LENGTH": 8,
    "BETTER_AUTH_MAX_PASSWORD_LENGTH": 128,
    "BETTER_AUTH_DELETE_USER_ENABLED": False,
    "BETTER_AUTH_BEARER_ENABLED": True,
    "BETTER_AUTH_BEARER_REQUIRE_SIGNATURE": False,
    "BETTER_AUTH_CORS_ORIGINS": [],
    "BETTER_AUTH_CORS_ALLOW_CREDENTIALS": True,
    "BETTER_AUTH_CORS_PATHS": [],
    "BETTER_AUTH_DISABLE_ORIGIN_CHECK": False,
    "BETTER_AUTH_DISABLE_CSRF_CHECK": False,
    "BETTER_AUTH_IP_ADDRESS_HEADERS": ["x-forwarded-for"],
    "BETTER_AUTH_DISABLE_IP_TRACKING": False,
    "BETTER_AUTH_TRUSTED_PROXIES": [],
    "BETTER_AUTH_IPV6_SUBNET": 64,
    "BETTER_AUTH_RATE_LIMIT_ENABLED": None,
    "BETTER_AUTH_RATE_LIMIT_WINDOW": 10,
    "BETTER_AUTH_RATE_LIMIT_MAX": 100,
    "BETTER_AUTH_RATE_LIMIT_STORAGE": None,
    "BETTER_AUTH_RATE_LIMIT_REDIS_URL": None,
    "BETTER_AUTH_RATE_LIMIT_REDIS_PREFIX": None,
    "BETTER_AUTH_RATE_LIMIT_CUSTOM_RULES": {},
    "BETTER_AUTH_MAX_BODY_SIZE": 1024 * 1024,
    "BETTER_AUTH_LOGIN_VIEW": None,
    "BETTER_AUTH_SCRYPT_N": SCRYPT_N,
    "BETTER_AUTH_APP_NAME": "Better Auth",
    "BETTER_AUTH_EMAIL_BACKEND": None,
    "BETTER_AUTH_EMAIL_OUTBOX": None,
    "BETTER_AUTH_EMAIL_FROM": None,
    "BETTER_AUTH_EMAIL_SUBJECTS": {},
    "BETTER_AUTH_SMTP_HOST": None,
    "BETTER_AUTH_SMTP_PORT": None,
    "BETTER_AUTH_SMTP_USERNAME": None,
    "BETTER_AUTH_SMTP_PASSWORD": None,
    "BETTER_AUTH_SMTP_USE_TLS": None,
    "BETTER_AUTH_SMTP_USE_SSL": None,
    "BETTER_AUTH_SMTP_TIMEOUT": 10,
    "BETTER_AUTH_EMAIL_VERIFICATION_EXPIRES_IN": timedelta(hours=1),
    "BETTER_AUTH_SEND_VERIFICATION_EMAIL_ON_SIGN_UP": None,
    "BETTER_AUTH_SEND_VERIFICATION_EMAIL_ON_SIGN_IN": False,
    "BETTER_AUTH_AUTO_SIGN_IN_AFTER_VERIFICATION": False,
    "BETTER_AUTH_RESET_PASSWORD_TOKEN_EXPIRES_IN": timedelta(hours=1),
    "BETTER_AUTH_RESET_PASSWORD_PAGE": None,
    "BETTER_AUTH_REVOKE_SESSIONS_ON_PASSWORD_RESET": False,
    "BETTER_AUTH_CHANGE_EMAIL_ENABLED": False,
    "BETTER_AUTH_UPDATE_EMAIL_WITHOUT_VERIFICATION": False,
    "BETTER_AUTH_SEND_CHANGE_EMAIL_CONFIRMATION": False,
    "BETTER_AUTH_SEND_DELETE_ACCOUNT_VERIFICATION": False,
    "BETTER_AUTH_DELETE_TOKEN_EXPIRES_IN": timedelta(days=1),
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}

logger = logging.getLogger("flask_better_auth")


def warn_unknown_keys(config: Mapping[str, Any]) -> None:
    """Log a warning for each ``BETTER_AUTH_*`` key no setting reads (a typo, most likely).

    The known keys are those of :data:`DEFAULTS` when called, so keys added to it later (by a
    plugin) count. A warning, not an error: a key of a newer version is harmless.
    """
    prefix = "BETTER_AUTH_"
    # Compared without the prefix: shared by every key, it would make anything look close.
    known = [key.removeprefix(prefix) for key in DEFAULTS if key.startswith(prefix)]
    for key in sorted(k for k in config if isinstance(k, str)):
        if not key.startswith(prefix) or key in DEFAULTS:
            continue
        close = difflib.get_close_matches(key.removeprefix(prefix), known, n=1, cutoff=0.7)
        hint = f": did you mean {prefix}{close[0]}?" if close else ""
        logger.warning("unknown setting %s, ignored%s", key, hint)


@dataclass(frozen=True)
class CookieSettings:
    """Names and attributes of the cookies the extension writes."""

    session_token: str
    session_data: str
    dont_remember: str
    secure: bool
    httponly: bool
    samesite: str
    domain: str | None
    path: str
    max_age: bool


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
    ) -> AuthSettings:
        """Read and validate every ``BETTER_AUTH_*`` key.

        :param config: the app's config (defaults already applied).
        :param testing: the app's ``TESTING`` flag; only then may the scrypt cost be lowered,
            and the rate limiter is then off unless turned on.
        :param debug: the app's debug flag: the email backend then defaults to ``console`` and
            the rate limiter to off.
        :param instance_path: where a relative ``BETTER_AUTH_EMAIL_OUTBOX`` path lives.
        :raises ConfigError: with a message naming the key and what is wrong.
        """

        def get(name: str) -> Any:
            key = f"BETTER_AUTH_{name}"
            return config.get(key, DEFAULTS[key])

        warn_unknown_keys(config)
        secret = get("SECRET")
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
        fallbacks = as_list("SECRET_FALLBACKS", get("SECRET_FALLBACKS"))

        base_url = _base_url(get("BASE_URL"), testing=testing)
        base_path = str(get("BASE_PATH") or "")
        if not base_path.startswith("/") or base_path.endswith("/"):
            raise ConfigError(
                "BETTER_AUTH_BASE_PATH must start with '/' and not end with one (it cannot be"
                f" '/': the auth routes need a prefix of their own): {base_path!r}."
            )

        samesite_raw = str(get("COOKIE_SAMESITE") or "")
        samesite = _SAMESITE.get(samesite_raw.lower())
        if samesite is None:
            raise ConfigError(
                "BETTER_AUTH_COOKIE_SAMESITE must be 'Lax', 'Strict' or 'None',"
                f" not {samesite_raw!r}."
            )
        secure = as_bool("COOKIE_SECURE", get("COOKIE_SECURE"))
        if samesite == "None" and not secure:
            raise ConfigError(
                "BETTER_AUTH_COOKIE_SAMESITE='None' requires BETTER_AUTH_COOKIE_SECURE=True:"
                " browsers reject SameSite=None cookies without Secure."
            )
        secure_prefix = as_bool("COOKIE_SECURE_PREFIX", get("COOKIE_SECURE_PREFIX"))
        if secure_prefix and not secure:
            raise ConfigError(
                "BETTER_AUTH_COOKIE_SECURE_PREFIX=True requires BETTER_AUTH_COOKIE_SECURE=True."
            )
        prefix = str(get("COOKIE_PREFIX") or "better-auth")
        name_prefix = "__Secure-" if secure_prefix else ""

        def cookie_name(key: str, suffix: str) -> str:
            return name_prefix + str(get(key) or f"{prefix}.{suffix}")

        cookies = CookieSettings(
            session_token=cookie_name("SESSION_COOKIE_NAME", "session-token"),
            session_data=cookie_name("SESSION_DATA_COOKIE_NAME", "session-data"),
            dont_remember=cookie_name("DONT_REMEMBER_COOKIE_NAME", "dont-remember"),
            secure=secure,
            httponly=as_bool("COOKIE_HTTPONLY", get("COOKIE_HTTPONLY")),
            samesite=samesite,
            domain=get("COOKIE_DOMAIN") or None,
            path=str(get("COOKIE_PATH") or "/"),
            max_age=as_bool("COOKIE_MAX_AGE", get("COOKIE_MAX_AGE")),
        )
        session = SessionSettings(
            expires_in=as_duration("SESSION_EXPIRES_IN", get("SESSION_EXPIRES_IN")),
            update_age=as_duration("SESSION_UPDATE_AGE", get("SESSION_UPDATE_AGE")),
            fresh_age=as_duration("SESSION_FRESH_AGE", get("SESSION_FRESH_AGE")),
            disable_refresh=as_bool("DISABLE_SESSION_REFRESH", get("DISABLE_SESSION_REFRESH")),
        )
        if session.expires_in.total_seconds() == 0:
            raise ConfigError("BETTER_AUTH_SESSION_EXPIRES_IN must be longer than zero.")
        if session.expires_in > timedelta(days=400):
            raise ConfigError(
                "BETTER_AUTH_SESSION_EXPIRES_IN is over 400 days, the longest cookie lifetime"
                " browsers keep."
            )

        min_len = as_int("MIN_PASSWORD_LENGTH", get("MIN_PASSWORD_LENGTH"))
        max_len = as_int("MAX_PASSWORD_LENGTH", get("MAX_PASSWORD_LENGTH"))
        if min_len < 1 or max_len < min_len:
            raise ConfigError(
                "BETTER_AUTH_MIN_PASSWORD_LENGTH must be at least 1 and no more than"
                f" BETTER_AUTH_MAX_PASSWORD_LENGTH (got {min_len} and {max_len})."
            )
        scrypt_n = as_int("SCRYPT_N", get("SCRYPT_N"))
        if scrypt_n != SCRYPT_N and not testing:
            raise ConfigError(
                f"BETTER_AUTH_SCRYPT_N may differ from {SCRYPT_N} only when TESTING is on:"
                " other values make hashes no Better Auth deployment can verify."
            )
        if scrypt_n < 2 or scrypt_n & (scrypt_n - 1):
            raise ConfigError(f"BETTER_AUTH_SCRYPT_N must be a power of two, not {scrypt_n}.")
        password = PasswordSettings(
            enabled=as_bool("EMAIL_AND_PASSWORD_ENABLED", get("EMAIL_AND_PASSWORD_ENABLED")),
            disable_sign_up=as_bool("DISABLE_SIGN_UP", get("DISABLE_SIGN_UP")),
            auto_sign_in=as_bool("AUTO_SIGN_IN", get("AUTO_SIGN_IN")),
            require_email_verification=as_bool(
                "REQUIRE_EMAIL_VERIFICATION", get("REQUIRE_EMAIL_VERIFICATION")
            ),
            min_length=min_len,
            max_length=max_len,
            scrypt_n=scrypt_n,
        )

        trusted = tuple(
            o.rstrip("/") for o in as_list("TRUSTED_ORIGINS", get("TRUSTED_ORIGINS")) if o
        )
        check_origin_patterns("BETTER_AUTH_TRUSTED_ORIGINS", trusted)
        cors_origins = tuple(as_list("CORS_ORIGINS", get("CORS_ORIGINS")))
        check_origin_patterns("BETTER_AUTH_CORS_ORIGINS", cors_origins)
        cors_credentials = as_bool("CORS_ALLOW_CREDENTIALS", get("CORS_ALLOW_CREDENTIALS"))
        if cors_credentials and "*" in cors_origins:
            raise ConfigError(
                "BETTER_AUTH_CORS_ORIGINS cannot contain '*' while"
                " BETTER_AUTH_CORS_ALLOW_CREDENTIALS is on: list the origins."
            )
        reset_page = _reset_password_page(
            get("RESET_PASSWORD_PAGE"), base_url, (*trusted, *cors_origins)
        )
        max_body = as_int("MAX_BODY_SIZE", get("MAX_BODY_SIZE"))
        if max_body < 1024:
            raise ConfigError("BETTER_AUTH_MAX_BODY_SIZE must be at least 1024 bytes.")

        return cls(
            secret=secret,
            secret_fallbacks=tuple(fallbacks),
            base_url=base_url,
            base_path=base_path,
            trusted_origins=trusted,
            cookies=cookies,
            session=session,
            password=password,
            delete_user_enabled=as_bool("DELETE_USER_ENABLED", get("DELETE_USER_ENABLED")),
            bearer_enabled=as_bool("BEARER_ENABLED", get("BEARER_ENABLED")),
            bearer_require_signature=as_bool(
                "BEARER_REQUIRE_SIGNATURE", get("BEARER_REQUIRE_SIGNATURE")
            ),
            cors_origins=cors_origins,
            cors_allow_credentials=cors_credentials,
            cors_paths=tuple(as_list("CORS_PATHS", get("CORS_PATHS"))),
            disable_origin_check=as_bool("DISABLE_ORIGIN_CHECK", get("DISABLE_ORIGIN_CHECK")),
            disable_csrf_check=as_bool("DISABLE_CSRF_CHECK", get("DISABLE_CSRF_CHECK")),
            ip_address_headers=tuple(
                h.lower() for h in as_list("IP_ADDRESS_HEADERS", get("IP_ADDRESS_HEADERS"))
            ),
            disable_ip_tracking=as_bool("DISABLE_IP_TRACKING", get("DISABLE_IP_TRACKING")),
            trusted_proxies=trusted_proxies(get("TRUSTED_PROXIES")),
            ipv6_subnet=ipv6_subnet(get("IPV6_SUBNET")),
            rate_limit=rate_limit_settings(get, config, testing=testing, debug=debug),
            max_body_size=max_body,
            login_view=get("LOGIN_VIEW") or None,
            reset_password_page=reset_page,
            email=email_settings(get, config, debug=debug, instance_path=instance_path),
            cookie_cache=cookie_cache_settings(get),
            secondary_storage=secondary_storage_settings(get),
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

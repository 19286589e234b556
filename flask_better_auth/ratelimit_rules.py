"""The rate limiter's rules: Better Auth's defaults, special and custom rules, and its settings.

Which rule applies to a path (:func:`rule_for`), and the ``BETTER_AUTH_RATE_LIMIT_*`` keys.
Counting and storage live in :mod:`flask_better_auth.ratelimit`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from flask import Request, request

from .config import ConfigError, ConfigReader, Keys, as_duration, as_int

STORAGES = ("memory", "database", "redis")

#: The keys of Better Auth's ``rateLimit`` (``storage: "secondary-storage"`` is a Redis URL).
KEYS = Keys(
    {
        "RATE_LIMIT_ENABLED": None,
        "RATE_LIMIT_WINDOW": 10,
        "RATE_LIMIT_MAX": 100,
        "RATE_LIMIT_STORAGE": None,
        "RATE_LIMIT_REDIS_URL": None,
        "RATE_LIMIT_REDIS_PREFIX": None,
        "RATE_LIMIT_CUSTOM_RULES": {},
    },
    owner="ratelimit",
)


@dataclass(frozen=True)
class Rule:
    """At most ``max`` requests per ``window`` seconds."""

    window: float
    max: int

    @property
    def window_ms(self) -> int:
        return max(1, round(self.window * 1000))


#: A custom rule: a rule, ``False`` (no limit), or ``fn(request, rule)`` returning one of
#: those, a ``{"window", "max"}`` mapping, or ``None`` (keep ``rule``).
CustomRule = Rule | Literal[False] | Callable[[Request, Rule], Any]


@dataclass(frozen=True)
class PathRule:
    """A rule for the paths ``matches`` accepts (Better Auth's special rules)."""

    matches: Callable[[str], bool]
    rule: Rule


#: Better Auth's special rules, first match wins (``getDefaultSpecialRules``): the core's
#: defaults. Endpoints and plugins declare their own (``Endpoint.rate_limit``).
SPECIAL_RULES: tuple[PathRule, ...] = (
    PathRule(
        lambda path: path.startswith(("/sign-in", "/sign-up", "/change-password", "/change-email")),
        Rule(10, 3),
    ),
    PathRule(
        lambda path: (
            path
            in (
                "/request-password-reset",
                "/send-verification-email",
                "/email-otp/send-verification-otp",
                "/email-otp/request-password-reset",
            )
            or path.startswith("/forget-password")
        ),
        Rule(60, 3),
    ),
)


@dataclass(frozen=True)
class RateLimitSettings:
    """The rate limiter's settings (Better Auth's ``rateLimit`` options)."""

    enabled: bool
    rule: Rule
    storage: str
    redis_url: str | None
    redis_prefix: str
    custom_rules: tuple[tuple[str, CustomRule], ...]


def _rule(key: str, value: Any) -> Rule:
    if isinstance(value, Rule):
        return value
    if not isinstance(value, Mapping) or set(value) != {"window", "max"}:
        raise ConfigError(
            f'{key} must be {{"window": seconds, "max": requests}} or False, not {value!r}.'
        )
    window = as_duration(f"{key}.window", value["window"]).total_seconds()
    most = as_int(f"{key}.max", value["max"])
    if window <= 0 or most < 1:
        raise ConfigError(f"{key} needs a window above 0 and a max of at least 1.")
    return Rule(window, most)


def _custom_rules(value: Any) -> tuple[tuple[str, CustomRule], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigError(
            "BETTER_AUTH_RATE_LIMIT_CUSTOM_RULES must be a mapping of path pattern to rule."
        )
    rules: list[tuple[str, CustomRule]] = []
    for path, rule in value.items():
        name = f"BETTER_AUTH_RATE_LIMIT_CUSTOM_RULES[{path!r}]"
        if not isinstance(path, str) or not path.startswith(("/", "*")):
            raise ConfigError(
                f"BETTER_AUTH_RATE_LIMIT_CUSTOM_RULES keys are paths below the base path"
                f' ("/sign-in/email", "/two-factor/*"), not {path!r}.'
            )
        if rule is False or callable(rule):
            rules.append((path, rule))
        else:
            rules.append((path, _rule(name, rule)))
    return tuple(rules)


def rate_limit_settings(cfg: ConfigReader, *, testing: bool, debug: bool) -> RateLimitSettings:
    """Read the ``BETTER_AUTH_RATE_LIMIT_*`` keys (and the secondary storage's URL and prefix).

    :param testing: the app's ``TESTING`` flag; with ``debug``, turns the default off.
    """
    enabled = cfg.optional_bool("RATE_LIMIT_ENABLED")
    enabled = not (testing or debug) if enabled is None else enabled
    window = cfg.duration("RATE_LIMIT_WINDOW").total_seconds()
    most = cfg.int("RATE_LIMIT_MAX")
    if window <= 0 or most < 1:
        raise ConfigError(
            "BETTER_AUTH_RATE_LIMIT_WINDOW must be above 0 and BETTER_AUTH_RATE_LIMIT_MAX at"
            " least 1 (set BETTER_AUTH_RATE_LIMIT_ENABLED = False to turn the limiter off)."
        )
    # Better Auth counts in its secondaryStorage: the same Redis and key prefix by default.
    secondary_url = cfg.raw("SECONDARY_STORAGE_URL") or None
    secondary_prefix = cfg.raw("SECONDARY_STORAGE_PREFIX")
    redis_url = cfg.raw("RATE_LIMIT_REDIS_URL") or secondary_url
    prefix = cfg.raw("RATE_LIMIT_REDIS_PREFIX")
    storage = cfg.raw("RATE_LIMIT_STORAGE") or ("redis" if secondary_url else "memory")
    if storage not in STORAGES:
        raise ConfigError(
            f"BETTER_AUTH_RATE_LIMIT_STORAGE must be one of {', '.join(STORAGES)}, not {storage!r}."
        )
    if storage == "redis" and enabled:
        if not redis_url:
            raise ConfigError(
                'BETTER_AUTH_RATE_LIMIT_STORAGE = "redis" needs BETTER_AUTH_RATE_LIMIT_REDIS_URL'
                " (or BETTER_AUTH_SECONDARY_STORAGE_URL), e.g. redis://127.0.0.1:6379/0."
            )
        try:
            import redis  # noqa: F401
        except ImportError:
            raise ConfigError(
                'BETTER_AUTH_RATE_LIMIT_STORAGE = "redis" needs the redis package:'
                " pip install 'flask-better-auth[redis]'."
            ) from None
    return RateLimitSettings(
        enabled=enabled,
        rule=Rule(window, most),
        storage=storage,
        redis_url=str(redis_url) if redis_url else None,
        redis_prefix=str(prefix if prefix is not None else secondary_prefix or ""),
        custom_rules=_custom_rules(cfg.raw("RATE_LIMIT_CUSTOM_RULES")),
    )


@lru_cache(maxsize=256)
def path_glob(pattern: str) -> re.Pattern[str]:
    # Better Auth's wildcardMatch without a separator: "*" is any run of characters ("/"
    # included), "?" any one character, "\" escapes the next one.
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars, "")))
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def rule_for(
    path: str,
    conf: RateLimitSettings,
    req: Request | None = None,
    plugin_rules: Sequence[PathRule] = (),
) -> Rule | None:
    """The rule for a request to ``path`` (below the base path), or ``None`` for no limit.

    Better Auth's order: the default rule, then the first matching special rule, then the first
    matching custom rule (a pattern with ``*`` is a glob, any other is compared exactly).
    The first matching rule of the endpoints and plugins (``plugin_rules``) comes between the
    last two, as in Better Auth.

    :param req: the request, passed to callable custom rules.
    :param plugin_rules: the app's endpoint and plugin rules (``AuthState.rate_limit_rules``).
    """
    rule = conf.rule
    for rules in (SPECIAL_RULES, plugin_rules):
        for candidate in rules:
            if candidate.matches(path):
                rule = candidate.rule
                break
    for pattern, custom in conf.custom_rules:
        if not (path_glob(pattern).fullmatch(path) if "*" in pattern else pattern == path):
            continue
        resolved: Any = custom
        if callable(custom):
            resolved = custom(req if req is not None else request, rule)
        if resolved is False:
            return None
        if resolved is not None:
            rule = _rule(f"BETTER_AUTH_RATE_LIMIT_CUSTOM_RULES[{pattern!r}]", resolved)
        break
    return rule


def sub_path(path: str, base_path: str) -> str | None:
    """``path`` relative to the base path, trailing slashes dropped; ``None`` outside it."""
    path = path.rstrip("/") or "/"
    if path == base_path:
        return "/"
    if path.startswith(base_path + "/"):
        return path[len(base_path) :]
    return None


__all__ = [
    "KEYS",
    "SPECIAL_RULES",
    "STORAGES",
    "CustomRule",
    "PathRule",
    "RateLimitSettings",
    "Rule",
    "path_glob",
    "rate_limit_settings",
    "rule_for",
    "sub_path",
]

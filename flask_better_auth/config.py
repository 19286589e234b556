"""Reading configuration: declared keys with their defaults, and a typed reader with clear errors.

Every feature module declares the ``BETTER_AUTH_*`` keys it reads (a :class:`Keys`), and reads
them through a :class:`ConfigReader`. ``settings.py`` joins the declarations into the registry
that gives the defaults and tells a typo from a setting. This module imports nothing of the
package: every other module may import it.
"""

from __future__ import annotations

import builtins
import difflib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from flask.cli import NoAppException

#: The prefix of every key of the extension (and of its plugins).
PREFIX = "BETTER_AUTH_"

logger = logging.getLogger("flask_better_auth")

_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


class ConfigError(ValueError, NoAppException):
    """A ``BETTER_AUTH_*`` key has a value that cannot work; raised by ``init_app``.

    ``str(error)`` is one sentence naming the key. It is also Flask's ``NoAppException`` (a
    ``click.UsageError``): when ``init_app`` fails while the ``flask`` command loads the app,
    ``flask run``, ``flask better-auth …`` and ``flask --help`` print ``Error: <message>``
    instead of a traceback (and ``--help`` still lists the commands).
    """

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        NoAppException.__init__(self, message)


class Keys(Mapping[str, Any]):
    """Declared keys: each name (without the prefix) with its default, and who declared it.

    ``Keys({"COOKIE_CACHE_ENABLED": False}, owner="cookie_cache")``. Registries join with
    ``|``; a name declared twice is a mistake (two owners would fight over one value), so the
    join raises :class:`ConfigError` naming both owners.
    """

    def __init__(self, defaults: Mapping[str, Any] | None = None, *, owner: str = "core") -> None:
        self._defaults: dict[str, Any] = {}
        self._owners: dict[str, str] = {}
        for name, default in (defaults or {}).items():
            if not _NAME.fullmatch(name) or name.startswith(PREFIX):
                raise ValueError(f"{owner} declares {name!r}: write the key without {PREFIX}.")
            self._defaults[name] = default
            self._owners[name] = owner

    def __getitem__(self, name: str) -> Any:
        return self._defaults[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._defaults)

    def __len__(self) -> int:
        return len(self._defaults)

    def __repr__(self) -> str:
        return f"Keys({self._defaults!r})"

    def owner(self, name: str) -> str:
        """Who declared ``name`` (``KeyError`` if nobody did)."""
        return self._owners[name]

    def __or__(self, other: Keys) -> Keys:
        joined = Keys()
        for keys in (self, other):
            for name, default in keys._defaults.items():
                if name in joined._owners:
                    raise ConfigError(
                        f"{PREFIX}{name} is declared by both {joined._owners[name]} and"
                        f" {keys._owners[name]}."
                    )
                joined._defaults[name] = default
                joined._owners[name] = keys._owners[name]
        return joined

    def defaults(self, prefix: str = PREFIX) -> Mapping[str, Any]:
        """A read-only ``{full key: default}`` mapping, as ``init_app`` applies them."""
        return MappingProxyType({prefix + name: value for name, value in self._defaults.items()})


def warn_unknown_keys(config: Mapping[str, Any], keys: Keys, *, prefix: str = PREFIX) -> None:
    """Log a warning for each ``BETTER_AUTH_*`` key of ``config`` that ``keys`` does not declare.

    A typo most likely; the warning names the closest declared key. A warning, not an error: a
    key of a newer version is harmless. Pass the registry of the core *and* the app's plugins.
    """
    # Compared without the prefix: shared by every key, it would make anything look close.
    known = list(keys)
    for key in sorted(k for k in config if isinstance(k, str)):
        if not key.startswith(prefix) or key.removeprefix(prefix) in keys:
            continue
        close = difflib.get_close_matches(key.removeprefix(prefix), known, n=1, cutoff=0.7)
        hint = f": did you mean {prefix}{close[0]}?" if close else ""
        logger.warning("unknown setting %s, ignored%s", key, hint)


class ConfigReader:
    """Reads declared keys from an app's config: converted, validated, defaulted.

    ``cfg = ConfigReader(app.config, keys)``, then ``cfg.bool("COOKIE_SECURE")``: the value of
    ``BETTER_AUTH_COOKIE_SECURE``, or the declared default when the key is absent. Reading an
    undeclared name is a programming error (``KeyError``), so every key read is a key documented
    and known to the unknown-key warning. Conversion errors are :class:`ConfigError` naming
    the key.
    """

    def __init__(self, config: Mapping[str, Any], keys: Keys, *, prefix: str = PREFIX) -> None:
        self.config = config
        self.keys = keys
        self.prefix = prefix

    def key(self, name: str) -> builtins.str:
        """The full key of ``name``: ``"COOKIE_SECURE"`` → ``"BETTER_AUTH_COOKIE_SECURE"``."""
        return self.prefix + name

    def raw(self, name: str) -> Any:
        """The value as configured (``None`` stays ``None``), else the declared default."""
        if name not in self.keys:
            raise KeyError(f"{self.key(name)} is not a declared setting")
        return self.config.get(self.key(name), self.keys[name])

    def bool(self, name: str) -> builtins.bool:
        """``True``/``False``, or from the environment ``"true"``, ``"0"``, ``"off"``…"""
        return as_bool(self.key(name), self.raw(name))

    def optional_bool(self, name: str) -> builtins.bool | None:
        """A boolean, or ``None`` when the value is ``None`` ("follow another setting")."""
        value = self.raw(name)
        return None if value is None else as_bool(self.key(name), value)

    def int(self, name: str) -> builtins.int:
        """An integer, or a string of digits."""
        return as_int(self.key(name), self.raw(name))

    def duration(self, name: str) -> timedelta:
        """A ``timedelta``, or a number of seconds; never negative."""
        return as_duration(self.key(name), self.raw(name))

    def list(self, name: str) -> builtins.list[builtins.str]:
        """Strings, from a list, a JSON list or a comma-separated string."""
        return as_list(self.key(name), self.raw(name))

    def str(self, name: str) -> builtins.str:
        """The value as a string; an unset or empty one gives the declared default (or ``""``)."""
        value = self.raw(name)
        if value is None or value == "":
            value = self.keys[name]
        return "" if value is None else builtins.str(value)

    def optional_str(self, name: builtins.str) -> builtins.str | None:
        """The value as a string, or ``None`` when unset or empty."""
        value = self.raw(name)
        return None if value is None or value == "" else builtins.str(value)


# The converters take the full key, for the message; the reader's methods call them.


def as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"{key} must be true or false, not {value!r}.")


def as_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{key} must be an integer, not {value!r}.")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{key} must be an integer, not {value!r}.") from None


def as_duration(key: str, value: Any) -> timedelta:
    """A ``timedelta``, or a number of seconds (int, float or numeric string)."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            duration = timedelta(seconds=float(value))
        except (ValueError, OverflowError):
            raise ConfigError(
                f"{key} must be a timedelta or a number of seconds, not {value!r}."
            ) from None
    else:
        raise ConfigError(f"{key} must be a timedelta or a number of seconds, not {value!r}.")
    if duration < timedelta(0):
        raise ConfigError(f"{key} must not be negative ({value!r}).")
    return duration


def as_list(key: str, value: Any) -> list[str]:
    """A list of strings, from a list/tuple, a JSON list string, or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ConfigError(f"{key} is not a valid JSON list: {text!r}.") from None
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, Iterable) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{key} must be a list of strings, not {value!r}.")

"""Reading configuration values: booleans, integers, durations and lists, with clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from flask.cli import NoAppException


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


def as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"BETTER_AUTH_{name} must be true or false, not {value!r}.")


def as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"BETTER_AUTH_{name} must be an integer, not {value!r}.")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"BETTER_AUTH_{name} must be an integer, not {value!r}.") from None


def as_duration(name: str, value: Any) -> timedelta:
    """A ``timedelta``, or a number of seconds (int, float or numeric string)."""
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            duration = timedelta(seconds=float(value))
        except (ValueError, OverflowError):
            raise ConfigError(
                f"BETTER_AUTH_{name} must be a timedelta or a number of seconds, not {value!r}."
            ) from None
    else:
        raise ConfigError(
            f"BETTER_AUTH_{name} must be a timedelta or a number of seconds, not {value!r}."
        )
    if duration < timedelta(0):
        raise ConfigError(f"BETTER_AUTH_{name} must not be negative ({value!r}).")
    return duration


def as_list(name: str, value: Any) -> list[str]:
    """A list of strings, from a list/tuple, a JSON list string, or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise ConfigError(
                    f"BETTER_AUTH_{name} is not a valid JSON list: {text!r}."
                ) from None
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, Iterable) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"BETTER_AUTH_{name} must be a list of strings, not {value!r}.")

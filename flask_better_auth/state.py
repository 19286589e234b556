"""Per-app state: what ``app.extensions["better_auth"]`` holds, and how code reaches it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from .settings import AuthSettings

if TYPE_CHECKING:
    from collections.abc import Callable

    from flask_sqlalchemy import SQLAlchemy

    from .email import Mailer
    from .extension import BetterAuth
    from .plugins import PluginSet
    from .ratelimit import RateLimiter
    from .secondary_storage import SecondaryStorage
    from .storage import Storage


@dataclass(frozen=True)
class AuthState:
    """One app's extension, settings (read once in ``init_app``), database, mailer and storage.

    ``storage`` is what everything reads and writes users, sessions and the rest through
    (:func:`storage`): chosen once in ``init_app`` from the secondary-storage settings.

    ``rate_limiter`` is ``None`` while rate limiting is off; ``secondary`` (the Redis of
    ``BETTER_AUTH_SECONDARY_STORAGE_URL``) is ``None`` without secondary storage.
    """

    extension: BetterAuth
    settings: AuthSettings
    db: SQLAlchemy
    mailer: Mailer
    storage: Storage
    on_password_reset: Callable[..., Any] | None = None
    rate_limiter: RateLimiter | None = None
    secondary: SecondaryStorage | None = None
    #: The app's plugins (the core first), joined; ``None`` only for a state built by hand.
    plugins: PluginSet | None = None


class NotRegistered(RuntimeError):
    """The current app has no ``BetterAuth``: the message says how to add it."""


def state() -> AuthState:
    """The current app's :class:`AuthState`."""
    try:
        return current_app.extensions["better_auth"]  # type: ignore[no-any-return]
    except KeyError:
        raise NotRegistered(
            "BetterAuth is not registered on this app: call BetterAuth(app) or auth.init_app(app)."
        ) from None


def app_object() -> Flask:
    """The real app behind ``current_app`` (the sender of our signals)."""
    return current_app._get_current_object()  # type: ignore[attr-defined,no-any-return]


def settings() -> AuthSettings:
    """The current app's settings."""
    return state().settings


def storage() -> Storage:
    """The current app's :class:`~flask_better_auth.storage.Storage`."""
    return state().storage


def plugin_settings(plugin_id: str) -> Any:
    """What the plugin ``plugin_id`` read for the current app (its ``read_settings``).

    :raises KeyError: the plugin is not enabled on this app.
    """
    joined = state().plugins
    if joined is None or plugin_id not in joined.settings:
        raise KeyError(f"the plugin {plugin_id!r} is not enabled on this app")
    return joined.settings[plugin_id]

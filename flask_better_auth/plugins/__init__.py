"""The plugin seam: what a plugin declares, and how an app's plugins are chosen and joined.

A plugin is a :class:`Plugin` subclass declaring, in one place, its settings keys, endpoints,
hooks, error codes, rate-limit rules, schema (extra user/session/account fields, extra tables),
Alembic migrations, email kinds and CLI commands. ``BetterAuth(app, plugins=[...])`` and
``BETTER_AUTH_PLUGINS = ["id", ...]`` choose them; :func:`join_plugins` joins the core and the
chosen plugins into one :class:`PluginSet` per app. The core's routes come through this very
seam (:mod:`flask_better_auth.routes` is the first plugin, ``id = "core"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask
from sqlalchemy import MetaData, Table
from sqlalchemy.types import TypeEngine

from ..config import ConfigError, ConfigReader, Keys
from ..endpoints import Endpoint, Hook
from ..errors import ERROR_CODES
from ..ratelimit_rules import PathRule

if TYPE_CHECKING:
    import click

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True)
class ExtraField:
    """A column a plugin adds to ``user``, ``session`` or ``account``.

    :param name: Better Auth's field name, also the column name and the JSON key
        (``"twoFactorEnabled"``); the Python attribute is its snake_case form.
    :param type: the SQLAlchemy type (``Boolean()``, ``Text()``, ``UTCDateTime()``…).
    :param default: the value new rows get in apps where the plugin is enabled.

    Every field appears in the user/session JSON (get-session, sign-in…), the cookie cache,
    the secondary storage and ``current_user`` (Better Auth's ``returned: false`` fields are
    not supported yet).
    """

    name: str
    type: TypeEngine[Any]
    default: Any = None
    nullable: bool = True

    @property
    def attribute(self) -> str:
        """The Python attribute on the model: ``twoFactorEnabled`` → ``two_factor_enabled``."""
        return _CAMEL.sub("_", self.name).lower()


@dataclass(frozen=True)
class Migrations:
    """A plugin's Alembic revisions: a directory of version files forming a branch.

    Its first revision has ``down_revision = None`` and ``branch_labels = (label,)``; each
    revision lists the ``tables`` and ``columns`` (``"user.username"``) it creates, so a
    database that already has them (made by a JavaScript deployment with the same plugin) is
    adopted as is.
    """

    directory: str
    label: str


class Plugin:
    """Base class of plugins: override the attributes that apply.

    Attributes are read from the instance, so a plugin may compute them in ``__init__`` from
    its own arguments (``TwoFactor(issuer="Acme")``).
    """

    #: Better Auth's plugin id, kebab-case (``"two-factor"``): the ``BETTER_AUTH_PLUGINS`` name.
    id: str = ""
    #: Its ``BETTER_AUTH_<PLUGIN>_*`` keys and defaults (documented in docs/configuration.rst).
    keys: Keys = Keys()
    endpoints: Sequence[Endpoint] = ()
    hooks: Sequence[Hook] = ()
    #: ``{code: message}``, merged into the error-code table (a clash is a ConfigError).
    error_codes: Mapping[str, str] = {}
    #: Rate-limit rules by path, after Better Auth's special rules (``Endpoint.rate_limit``
    #: is the simpler way for a plugin's own endpoints).
    rate_limit_rules: Sequence[PathRule] = ()
    user_fields: Sequence[ExtraField] = ()
    session_fields: Sequence[ExtraField] = ()
    account_fields: Sequence[ExtraField] = ()
    #: The plugin's own tables (models declared on a ``MetaData`` of its own).
    tables: MetaData | None = None
    migrations: Migrations | None = None
    #: ``{kind: default subject}``: emails the plugin sends through the app's mailer; their
    #: templates are ``better_auth/email/<kind>.txt`` (and ``.html``) in :attr:`template_folder`.
    email_kinds: Mapping[str, str] = {}
    template_folder: str | None = None
    #: Click commands added under ``flask better-auth``.
    commands: Sequence[click.Command] = ()

    def read_settings(self, cfg: ConfigReader) -> Any:
        """Read this plugin's settings for one app (``plugin_settings(id)`` returns them).

        :param cfg: reads the app's config; the plugin's :attr:`keys` are declared in it.
        """
        return None

    def init_app(self, app: Flask) -> None:
        """Anything else one app needs (connect signals…); called at the end of ``init_app``."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"


#: Known plugin ids → classes, for ``BETTER_AUTH_PLUGINS``. Plugins shipped with the package
#: register here; an app's own with :func:`register_plugin`.
REGISTRY: dict[str, type[Plugin]] = {}

_ID = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def register_plugin(cls: type[Plugin]) -> type[Plugin]:
    """Make ``cls`` known by its id to ``BETTER_AUTH_PLUGINS`` (usable as a class decorator)."""
    if not _ID.fullmatch(cls.id):
        raise ValueError(f"{cls.__name__}.id must be a kebab-case id, not {cls.id!r}")
    known = REGISTRY.get(cls.id)
    if known is not None and known is not cls:
        raise ValueError(f"plugin id {cls.id!r} is already registered by {known.__name__}")
    REGISTRY[cls.id] = cls
    return cls


def choose_plugins(given: Iterable[Plugin], configured: Sequence[str]) -> list[Plugin]:
    """The app's plugins: those given to ``BetterAuth`` then those named in the config.

    :raises ConfigError: an unknown id (the message lists the known ones), or a plugin twice.
    """
    plugins = list(given)
    for plugin_id in configured:
        cls = REGISTRY.get(plugin_id)
        if cls is None:
            known = ", ".join(sorted(REGISTRY)) or "none registered"
            raise ConfigError(
                f"BETTER_AUTH_PLUGINS names an unknown plugin {plugin_id!r} (known: {known})."
            )
        plugins.append(cls())
    seen: set[str] = set()
    for plugin in plugins:
        if not plugin.id:
            raise ConfigError(f"{type(plugin).__name__} has no id.")
        if plugin.id in seen:
            raise ConfigError(f"The plugin {plugin.id!r} is enabled twice.")
        seen.add(plugin.id)
    return plugins


@dataclass(frozen=True)
class PluginSet:
    """One app's plugins (the core first) joined: what ``init_app`` and the views read."""

    plugins: tuple[Plugin, ...]
    keys: Keys
    endpoints: tuple[tuple[str, Endpoint], ...]
    hooks: tuple[Hook, ...]
    rate_limit_rules: tuple[PathRule, ...]
    user_fields: tuple[ExtraField, ...]
    session_fields: tuple[ExtraField, ...]
    account_fields: tuple[ExtraField, ...]
    email_kinds: Mapping[str, str]
    tables: tuple[Table, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def ids(self) -> tuple[str, ...]:
        """The enabled plugins' ids, the core's included."""
        return tuple(plugin.id for plugin in self.plugins)


def _join_fields(plugins: Sequence[Plugin], kind: str) -> tuple[ExtraField, ...]:
    fields: dict[str, tuple[str, ExtraField]] = {}
    for plugin in plugins:
        for extra in getattr(plugin, f"{kind}_fields"):
            if extra.name in fields and fields[extra.name][1] != extra:
                raise ConfigError(
                    f"{plugin.id} and {fields[extra.name][0]} both add a {kind} field"
                    f" {extra.name!r}, differently."
                )
            fields.setdefault(extra.name, (plugin.id, extra))
    return tuple(extra for _, extra in fields.values())


def merge_error_codes(plugin: Plugin) -> None:
    """Add the plugin's codes to the error-code table (the same code and message twice is
    fine: several apps may enable one plugin).

    :raises ConfigError: a code is in the table with another message.
    """
    for code, message in plugin.error_codes.items():
        known = ERROR_CODES.setdefault(code, message)
        if known != message:
            raise ConfigError(
                f"The plugin {plugin.id!r} declares the error code {code} ({message!r}),"
                f" already in use with another message ({known!r})."
            )


def join_plugins(plugins: Sequence[Plugin], core_keys: Keys) -> PluginSet:
    """Join the plugins' declarations (the core first), checking that they do not clash."""
    keys = core_keys
    endpoints: list[tuple[str, Endpoint]] = []
    rules: list[PathRule] = []
    kinds: dict[str, str] = {}
    tables: list[Table] = []
    for plugin in plugins:
        keys = keys | plugin.keys
        merge_error_codes(plugin)
        endpoints += [(plugin.id, endpoint) for endpoint in plugin.endpoints]
        rules += [r for r in (e.rate_limit_rule() for e in plugin.endpoints) if r is not None]
        rules += plugin.rate_limit_rules
        for kind, subject in plugin.email_kinds.items():
            if kind in kinds:
                raise ConfigError(f"The email kind {kind!r} is declared twice ({plugin.id}).")
            kinds[kind] = subject
        if plugin.tables is not None:
            tables += plugin.tables.tables.values()
    return PluginSet(
        plugins=tuple(plugins),
        keys=keys,
        endpoints=tuple(endpoints),
        hooks=tuple(hook for plugin in plugins for hook in plugin.hooks),
        rate_limit_rules=tuple(rules),
        user_fields=_join_fields(plugins, "user"),
        session_fields=_join_fields(plugins, "session"),
        account_fields=_join_fields(plugins, "account"),
        email_kinds=kinds,
        tables=tuple(tables),
    )


__all__ = [
    "REGISTRY",
    "ExtraField",
    "Migrations",
    "Plugin",
    "PluginSet",
    "choose_plugins",
    "join_plugins",
    "merge_error_codes",
    "register_plugin",
]

# The plugins shipped with the package register their ids (after the names they import).
from . import generic_oauth  # noqa: E402, F401

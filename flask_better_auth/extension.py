"""``BetterAuth``: registers the routes, the session hooks and CORS on a Flask app."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Blueprint, Flask, Response
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import DBAPIError

from .blueprint import TEMPLATES, build_blueprint
from .config import ConfigReader, as_list
from .context import apply_cookies, auth_context, current_session, current_user, resolve_session
from .email import KindCallback, Mailer, SendEmail, backend_for
from .errors import AuthError
from .models import Session, User, add_fields, metadata, rate_limit_metadata, register_tables
from .plugins import Plugin, PluginSet, choose_plugins, join_plugins
from .ratelimit import RateLimiter
from .secondary_storage import SecondaryStorage
from .settings import CORE_KEYS, AuthSettings, ConfigError
from .state import AuthState, state
from .storage import build_storage

if TYPE_CHECKING:
    from .migrations import MigrationStatus

logger = logging.getLogger("flask_better_auth")

#: A view-like function of no arguments (an unauthorized or needs-refresh handler).
Handler = TypeVar("Handler", bound=Callable[[], Any])


class BetterAuth:
    """Better Auth for Flask.

    ``BetterAuth(app)`` or, in a factory, ``auth = BetterAuth()`` then ``auth.init_app(app)``.

    :param app: the Flask app to set up now (optional).
    :param db: the app's Flask-SQLAlchemy instance. Without one, the app's registered
        instance is used, or else one is created (``SQLALCHEMY_DATABASE_URI`` defaults to
        ``sqlite:///better-auth.sqlite`` in the instance folder; ``SQLALCHEMY_ENGINE_OPTIONS``
        gets ``pool_pre_ping=True`` unless it sets ``pool_pre_ping`` itself).
    :param send_email: called with every :class:`~flask_better_auth.email.Email` instead of
        the ``BETTER_AUTH_EMAIL_BACKEND``, for apps with a mailer of their own.
    :param send_verification_email: like Better Auth's ``sendVerificationEmail``: called as
        ``fn(user=…, url=…, token=…)``; takes precedence over ``send_email`` for that kind.
    :param send_reset_password: the same for password-reset links (``sendResetPassword``).
    :param send_change_email_confirmation: the same for the confirmation a change of email
        asks of the old address; giving it turns that step on.
    :param send_delete_account_verification: the same for account-deletion links; giving it
        turns email confirmation of ``/delete-user`` on.
    :param on_password_reset: called as ``fn(user=…)`` after a password reset.
    :param plugins: :class:`~flask_better_auth.plugins.Plugin` instances for every app this
        extension sets up; ``BETTER_AUTH_PLUGINS`` adds more by id, per app.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        db: SQLAlchemy | None = None,
        send_email: SendEmail | None = None,
        send_verification_email: KindCallback | None = None,
        send_reset_password: KindCallback | None = None,
        send_change_email_confirmation: KindCallback | None = None,
        send_delete_account_verification: KindCallback | None = None,
        on_password_reset: Callable[..., Any] | None = None,
        plugins: Sequence[Plugin] = (),
    ) -> None:
        self._db = db
        self._plugins = tuple(plugins)
        self._own_db: SQLAlchemy | None = None
        self._send_email = send_email
        self._callbacks = {
            kind: callback
            for kind, callback in (
                ("verification", send_verification_email),
                ("reset-password", send_reset_password),
                ("change-email-confirmation", send_change_email_confirmation),
                ("delete-account", send_delete_account_verification),
            )
            if callback is not None
        }
        self._on_password_reset = on_password_reset
        #: Set by :meth:`unauthorized_handler`.
        self.unauthorized_callback: Callable[[], Any] | None = None
        #: Set by :meth:`needs_refresh_handler`.
        self.needs_refresh_callback: Callable[[], Any] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Read and validate the ``BETTER_AUTH_*`` config and register everything on ``app``.

        :raises ConfigError: a setting cannot work (the message says which and why).
        """
        from .routes import Core

        configured = as_list("BETTER_AUTH_PLUGINS", app.config.get("BETTER_AUTH_PLUGINS"))
        plugins = join_plugins([Core(), *choose_plugins(self._plugins, configured)], CORE_KEYS)
        for key, value in plugins.keys.defaults().items():
            # A copy of a list or dict default: the app may change its own, never the default.
            app.config.setdefault(key, copy.copy(value))
        settings = AuthSettings.from_config(
            app.config,
            testing=app.testing,
            debug=app.debug,
            instance_path=app.instance_path,
            keys=plugins.keys,
            email_kinds=plugins.email_kinds,
        )
        for kind in ("user", "session", "account"):
            try:
                add_fields(kind, getattr(plugins, f"{kind}_fields"))
            except ValueError as exc:
                raise ConfigError(f"{exc}: two plugins declare it differently.") from None
        cfg = ConfigReader(app.config, plugins.keys)
        for plugin in plugins.plugins:
            plugins.settings[plugin.id] = plugin.read_settings(cfg)
        mailer = Mailer(
            settings.email,
            send_email=self._send_email,
            callbacks=dict(self._callbacks),
            backend=backend_for(settings.email),
        )
        db = self._database_for(app)
        try:
            register_tables(db.metadata)  # so the app's models can say ForeignKey("user.id")
        except ValueError as exc:
            raise ConfigError(f"{exc}: rename the app's table.") from None
        secondary = None
        if settings.secondary_storage.enabled:
            revoked_ttl = max(int(settings.session.expires_in.total_seconds()), 86400)
            secondary = SecondaryStorage(settings.secondary_storage, revoked_ttl=revoked_ttl)
        # On the secondary storage's URL, the limiter counts through its client: one pool.
        limiter = (
            RateLimiter(settings, db, secondary, plugins.rate_limit_rules)
            if settings.rate_limit.enabled
            else None
        )
        app.extensions["better_auth"] = AuthState(
            self,
            settings,
            db,
            mailer,
            build_storage(db, secondary, settings.secondary_storage),
            self._on_password_reset,
            rate_limiter=limiter,
            secondary=secondary,
            plugins=plugins,
        )
        blueprint = build_blueprint(plugins.endpoints, plugins.hooks, settings.base_path)
        app.register_blueprint(blueprint, url_prefix=settings.base_path)
        _register_templates(app, plugins)
        if limiter is not None:  # first: Better Auth limits before anything else, routing included
            app.before_request(limiter.check)
        app.before_request(_load_credentials)
        app.after_request(apply_cookies)
        app.teardown_appcontext(_close_db_session)  # runs before Flask-SQLAlchemy's own
        app.register_error_handler(AuthError, _render_auth_error)
        app.context_processor(_template_context)
        self._setup_cors(app, settings)

        from .cli import cli

        app.cli.add_command(cli)
        for plugin in plugins.plugins:
            plugin.init_app(app)

    def unauthorized_handler(self, callback: Handler) -> Handler:
        """Decorator: what ``@login_required`` answers a browser that is not signed in.

        Called with no arguments, like a view, for requests that prefer HTML (instead of the
        redirect to ``BETTER_AUTH_LOGIN_VIEW``); API requests keep the ``401`` JSON. Flask-Login's
        ``unauthorized_handler``::

            @auth.unauthorized_handler
            def unauthorized():
                return redirect(url_for("login", next=request.full_path))
        """
        self.unauthorized_callback = callback
        return callback

    def needs_refresh_handler(self, callback: Handler) -> Handler:
        """Decorator: what ``@fresh_login_required`` answers a browser whose session is not fresh.

        Called like :meth:`unauthorized_handler`, for HTML requests signed in longer ago than
        ``BETTER_AUTH_SESSION_FRESH_AGE``; API requests keep the ``403 SESSION_NOT_FRESH`` JSON.
        """
        self.needs_refresh_callback = callback
        return callback

    def _database_for(self, app: Flask) -> SQLAlchemy:
        registered: SQLAlchemy | None = app.extensions.get("sqlalchemy")
        if self._db is not None:
            if registered is not self._db:
                raise ConfigError(
                    "The db given to BetterAuth is not registered on this app:"
                    " call db.init_app(app) before auth.init_app(app)."
                )
            return self._db
        if registered is not None:
            return registered
        if self._own_db is None:
            self._own_db = SQLAlchemy()
        app.config.setdefault("SQLALCHEMY_DATABASE_URI", "sqlite:///better-auth.sqlite")
        # Test pooled connections before use: after a database restart or failover the dead
        # ones are replaced unseen instead of failing one request each (503).
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options.setdefault("pool_pre_ping", True)
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
        self._own_db.init_app(app)
        return self._own_db

    @staticmethod
    def _setup_cors(app: Flask, settings: AuthSettings) -> None:
        if not settings.cors_origins:
            return
        from flask_cors import CORS

        from .origin import cors_origin_regexes

        paths = [f"{settings.base_path}/*", *settings.cors_paths]
        CORS(
            app,
            resources={path: {} for path in paths},
            # Anchored, label-exact regexes: the trust check's own matcher, never Flask-CORS's
            # reading of "*" in a string (an unanchored regex where "." is any character).
            origins=cors_origin_regexes(settings.cors_origins),
            supports_credentials=settings.cors_allow_credentials,
        )

    @property
    def db(self) -> SQLAlchemy:
        """The Flask-SQLAlchemy instance of the current app."""
        return state().db

    @property
    def settings(self) -> AuthSettings:
        """The current app's settings."""
        return state().settings

    def create_all(self) -> None:
        """Create the ``user``, ``session``, ``account`` and ``verification`` tables if missing,
        and the tables of the app's plugins.

        Call it inside an app context. Meant for tests and prototypes: in production run
        ``flask better-auth migrate``, which later adopts tables made here. With
        ``BETTER_AUTH_RATE_LIMIT_STORAGE = "database"`` it creates the ``rateLimit`` table too.
        """
        engine = state().db.engine
        metadata.create_all(engine)
        plugins = state().plugins
        for table in plugins.tables if plugins is not None else ():
            table.create(engine, checkfirst=True)
        if state().settings.rate_limit.storage == "database":
            rate_limit_metadata.create_all(engine)

    def migrate(self) -> MigrationStatus:
        """Create or upgrade the tables, as ``flask better-auth migrate`` does (the same code):
        the core's, then those of the app's plugins.

        Call it inside an app context, e.g. at start-up so that a fresh database works with a
        bare ``flask run``. It does nothing when the tables are up to date, adopts tables made
        by :meth:`create_all` or Better Auth's JavaScript server, and is safe when several
        processes start at once (see :func:`flask_better_auth.migrations.upgrade`).

        :return: the status before the upgrade (what was stamped and what ran).
        :raises ~flask_better_auth.migrations.MigrationError: the database is in a state the
            migrations cannot safely handle.
        """
        from .migrations import migrate, plugin_histories

        return migrate(state().db.engine, plugin_histories(state().plugins))

    def get_session(self, *, sensitive: bool = False) -> tuple[Session, User] | None:
        """The current request's ``(session, user)``, or ``None`` when nobody is signed in.

        :param sensitive: read the session's source of truth, never the cookie cache (nor
            Redis while the database holds the sessions), as Better Auth's sensitive routes do:
            for views that must see a revocation at once.
        """
        return resolve_session(sensitive=sensitive)


def _register_templates(app: Flask, plugins: PluginSet) -> None:
    """Plugins' email templates: a route-less blueprint each (the app's own folder wins)."""
    for plugin in plugins.plugins:
        folder = plugin.template_folder
        if folder is not None and folder != TEMPLATES:
            name = "better_auth_" + plugin.id.replace("-", "_")
            app.register_blueprint(Blueprint(name, __name__, template_folder=folder))


def _load_credentials() -> None:
    auth_context()  # reads and verifies credentials only; the session resolves on first use


def _close_db_session(error: BaseException | None) -> None:
    """Close the request's SQLAlchemy session as Flask-SQLAlchemy's teardown (next) would.

    If the database dropped the connection after the request's last query, the closing
    rollback fails; raised from Flask-SQLAlchemy's teardown, that error would turn the answer
    already made into a 500. Here it is logged; the pool replaces the connection. A session
    with unfinished changes is left alone: what happens to them is the app's business.
    """
    scoped = state().db.session
    if not scoped.registry.has():
        return
    session = scoped()
    if session.new or session.dirty or session.deleted:
        return
    try:
        session.close()
    except DBAPIError as exc:
        logger.warning(
            "database connection lost at the end of the request: %s",
            exc.orig.__class__.__name__ if exc.orig else exc,
        )


def _template_context() -> dict[str, Any]:
    # The lazy proxies: a template that never looks at them costs no session lookup.
    return {"current_user": current_user, "current_session": current_session}


def _render_auth_error(error: AuthError) -> Response:
    return error.to_response()


__all__ = ["AuthState", "BetterAuth", "ConfigError", "state"]

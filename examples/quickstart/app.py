"""flask-better-auth quickstart: Better Auth's API on Flask, and a page that uses it.

Run it from the repository root; the tables are created (or upgraded) when the app starts:

    export FLASK_BETTER_AUTH_SECRET=<32+ random characters>
    export FLASK_BETTER_AUTH_COOKIE_SECURE=false    # plain http on your own machine
    flask --app examples/quickstart/app.py run

then open http://127.0.0.1:5000 (the default ``BETTER_AUTH_BASE_URL``: set
``FLASK_BETTER_AUTH_BASE_URL`` when you serve it elsewhere). Emails (password reset,
verification) are written to ``examples/quickstart/instance/outbox.jsonl``.

Every ``BETTER_AUTH_*`` / ``SQLALCHEMY_*`` setting can come from the environment with the
``FLASK_`` prefix (values are parsed as JSON where possible), e.g.
``FLASK_BETTER_AUTH_TRUSTED_ORIGINS='["http://localhost:5173"]'``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template

from flask_better_auth import BetterAuth, current_session, current_user, login_required
from flask_better_auth.oauth.registry import provider_ids


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Better Auth's key order
    app.config.update(
        # SQLite in the instance folder unless FLASK_SQLALCHEMY_DATABASE_URI says otherwise.
        SQLALCHEMY_DATABASE_URI="sqlite:///quickstart.sqlite",
        # Links in emails are built from it (never from the request's Host header), and its
        # origin is the one the auth routes trust: open the page there, not on localhost.
        BETTER_AUTH_BASE_URL="http://127.0.0.1:5000",  # FLASK_BETTER_AUTH_BASE_URL overrides it
        BETTER_AUTH_DELETE_USER_ENABLED=True,
        # Emails go to instance/outbox.jsonl (one JSON object a line) instead of a mail server.
        BETTER_AUTH_EMAIL_BACKEND="outbox",
        # A reset link requested without redirectTo lands on this app's page, below.
        BETTER_AUTH_RESET_PASSWORD_PAGE="/reset-password",
        # Lets a Vite/React dev server call the API with cookies (credentials: "include").
        BETTER_AUTH_CORS_ORIGINS=["http://localhost:5173"],
        BETTER_AUTH_CORS_PATHS=["/api/*"],
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})

    auth = BetterAuth(app)
    create_or_upgrade_tables(app, auth)

    # One page, three addresses: the page shows the part the path names.
    @app.get("/")
    @app.get("/reset-password")  # BETTER_AUTH_RESET_PASSWORD_PAGE: ?token=… or ?error=…
    @app.get("/email-verified")  # the callbackURL of verification links
    def page() -> str:
        # "Sign in with …" for each provider configured in the environment, e.g.
        # FLASK_BETTER_AUTH_SOCIAL_PROVIDERS='{"github": {"client_id": "…", "client_secret": "…"}}'
        return render_template(
            "index.html", auth_url=auth.settings.base_path, social_providers=provider_ids()
        )

    @app.get("/api/me")
    @login_required
    def me() -> Any:
        return jsonify(user=current_user.to_json(), session=current_session.to_json())

    return app


def create_or_upgrade_tables(app: Flask, auth: BetterAuth) -> None:
    """Bring the Better Auth tables up to date with ``auth.migrate()``.

    The same code as ``flask better-auth migrate``, so a bare ``flask run`` works on an empty
    database and later versions upgrade it. Safe at every start and in several processes at
    once (they take turns). A production app may run the CLI command at deploy time instead.
    """
    with app.app_context():
        before = auth.migrate()
    for script in before.pending:
        app.logger.info("Applied %s: %s", script.revision, script.doc)


app = create_app()

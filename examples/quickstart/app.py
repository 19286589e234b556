"""flask-better-auth quickstart: Better Auth's API on Flask, SQLite by default.

Run it (from the repository root): create or update the tables, then serve.

    export FLASK_BETTER_AUTH_SECRET=<32+ random chars> FLASK_BETTER_AUTH_COOKIE_SECURE=false
    flask --app examples/quickstart/app.py better-auth migrate
    flask --app examples/quickstart/app.py run

Every ``BETTER_AUTH_*`` / ``SQLALCHEMY_*`` setting can come from the environment with the
``FLASK_`` prefix (values are parsed as JSON where possible), e.g.
``FLASK_BETTER_AUTH_TRUSTED_ORIGINS='["http://localhost:5173"]'``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template

from flask_better_auth import BetterAuth, current_session, current_user, login_required


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Better Auth's key order
    app.config.update(
        # SQLite in the instance folder unless FLASK_SQLALCHEMY_DATABASE_URI says otherwise.
        SQLALCHEMY_DATABASE_URI="sqlite:///quickstart.sqlite",
        BETTER_AUTH_DELETE_USER_ENABLED=True,
        # Lets a Vite/React dev server call the API with cookies (credentials: "include").
        BETTER_AUTH_CORS_ORIGINS=["http://localhost:5173"],
        BETTER_AUTH_CORS_PATHS=["/api/*"],
    )
    app.config.from_prefixed_env()
    app.config.update(config or {})

    BetterAuth(app)  # the tables come from `flask better-auth migrate`

    @app.get("/")
    def index() -> str:
        return render_template("index.html", user=current_user)

    @app.get("/api/me")
    @login_required
    def me() -> Any:
        return jsonify(user=current_user.to_json(), session=current_session.to_json())

    return app


app = create_app()

"""The app under benchmark: BetterAuth plus one view served with and without ``@login_required``.

Configured from the environment by ``bench/run.py`` (which starts it with gunicorn)::

    BENCH_DATABASE_URL   SQLAlchemy URL (required)
    BENCH_BASE_URL       http://127.0.0.1:<port> (its origin is trusted for sign-in)
    BENCH_COOKIE_CACHE   "1": BETTER_AUTH_COOKIE_CACHE_ENABLED (when the key exists)
    BENCH_REDIS_URL      redis://…: BETTER_AUTH_SECONDARY_STORAGE_URL (when the key exists)
    BENCH_ENGINE_OPTIONS JSON: SQLALCHEMY_ENGINE_OPTIONS (e.g. '{"pool_pre_ping": false}')

Rate limiting is turned off (a benchmark is exactly the traffic it exists to stop), the scrypt
cost stays Better Auth's (N=16384): sign-up and sign-in do the real work.
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask, Response, g

from flask_better_auth import BetterAuth, login_required
from flask_better_auth.settings import DEFAULTS

SECRET = "bench-secret-0123456789abcdef-0123456789abcdef-not-for-production"


def create_app() -> Flask:
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": os.environ["BENCH_DATABASE_URL"],
        "BETTER_AUTH_SECRET": SECRET,
        "BETTER_AUTH_BASE_URL": os.environ.get("BENCH_BASE_URL", "http://127.0.0.1:8000"),
        "BETTER_AUTH_COOKIE_SECURE": False,
    }
    if "BETTER_AUTH_RATE_LIMIT_ENABLED" in DEFAULTS:
        config["BETTER_AUTH_RATE_LIMIT_ENABLED"] = False
    if os.environ.get("BENCH_COOKIE_CACHE") == "1":
        config["BETTER_AUTH_COOKIE_CACHE_ENABLED"] = True
        # Longer than a whole run, so the cached cookie wrk replays never goes stale mid-run.
        config["BETTER_AUTH_COOKIE_CACHE_MAX_AGE"] = 3600
    if os.environ.get("BENCH_REDIS_URL"):
        config["BETTER_AUTH_SECONDARY_STORAGE_URL"] = os.environ["BENCH_REDIS_URL"]
    options = json.loads(os.environ.get("BENCH_ENGINE_OPTIONS") or "{}")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        options.setdefault("connect_args", {"timeout": 30})
    if options:
        config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    app.config.update(config)
    BetterAuth(app)

    def payload() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/bench/open")
    def unprotected() -> Any:
        return payload()

    @app.get("/bench/protected")
    @login_required
    def protected() -> Any:
        return payload()

    @app.get("/bench/health")
    def health() -> Any:
        return {"ok": True}

    @app.after_request
    def source_header(response: Response) -> Response:
        # Where the session was read ("cookie", "secondary", "database"): run.py checks it once
        # per scenario, so a cookie-cache or Redis row cannot silently measure the database.
        ctx = g.get("_better_auth")
        source = getattr(ctx, "source", None)
        if source:
            response.headers["X-Bench-Session-Source"] = source
        return response

    return app

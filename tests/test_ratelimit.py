"""The rate limiter: Better Auth's rules and 429 answer, client IPs, every storage for real.

Memory and database windows run on an injected clock (no sleeping); Redis expiries are real
(1-second windows, waited for by polling the key, bounded). The multi-process test runs four
OS processes against the local Redis, loopback only, with a timeout.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ORIGIN, make_app, sign_up
from flask import Flask, Request
from flask.testing import FlaskClient
from sqlalchemy import select

from flask_better_auth import ConfigError, ratelimit
from flask_better_auth.ip import address_from_header, bucket_ip, parse_address, trusted_proxies
from flask_better_auth.models import RateLimit, rate_limit_metadata
from flask_better_auth.ratelimit import (
    NO_TRUSTED_IP,
    PathRule,
    RateLimiter,
    Rule,
    rule_for,
    sub_path,
)

AUTH = "/api/auth"
MESSAGE = b'{"message":"Too many requests. Please try again later."}'
CLIENT = "203.0.113.10"
REDIS_URL = os.environ.get("FBA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REPO_ROOT = Path(__file__).resolve().parents[1]
T0 = 1_800_000_000_000  # epoch ms of the fake clock's start


class Clock:
    """A controllable clock in epoch milliseconds, injected into a limiter."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


def limiter_of(app: Flask) -> RateLimiter:
    limiter = app.extensions["better_auth"].rate_limiter
    assert isinstance(limiter, RateLimiter)
    return limiter


def hit(
    client: FlaskClient,
    path: str,
    ip: str | None = CLIENT,
    method: str = "POST",
    **headers: str,
) -> Any:
    """One request below the base path from ``ip`` (via X-Forwarded-For)."""
    sent = {**ORIGIN, **headers}
    if ip is not None:
        sent["X-Forwarded-For"] = ip
    return client.open(f"{AUTH}{path}", method=method, headers=sent, json={})


def statuses(client: FlaskClient, path: str, n: int, **kwargs: Any) -> list[int]:
    return [hit(client, path, **kwargs).status_code for _ in range(n)]


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """``build(**settings)``: an app with the limiter on, on SQLite; limiters closed after."""
    apps: list[Flask] = []

    def factory(database_url: str | None = None, **settings: Any) -> Flask:
        settings.setdefault("RATE_LIMIT_ENABLED", True)
        url = database_url or f"sqlite:///{tmp_path / f'rl{len(apps)}.sqlite'}"
        app = make_app(url, **settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        state = app.extensions["better_auth"]
        if state.rate_limiter is not None:
            state.rate_limiter.close()
        with app.app_context():
            state.db.session.remove()
            state.db.engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(build: Callable[..., Flask], clock: Clock) -> Callable[..., FlaskClient]:
    """``limited(**settings)``: a test client of a memory-storage app on the fake clock."""

    def factory(**settings: Any) -> FlaskClient:
        app = build(**settings)
        limiter_of(app).clock = clock
        return app.test_client()

    return factory


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    ratelimit._warned.clear()
    yield
    ratelimit._warned.clear()


def assert_limited(response: Any, retry_after: int) -> None:
    assert response.status_code == 429
    assert response.get_data() == MESSAGE
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Retry-After"] == str(retry_after)
    assert "Retry-After" not in response.headers


# --------------------------------------------------------------------------------------------
# Rules


def test_sign_in_allows_3_per_10_seconds(limited: Callable[..., FlaskClient], clock: Clock) -> None:
    client = limited()
    assert statuses(client, "/sign-in/email", 3) == [400, 400, 400]  # counted, then validated
    assert_limited(hit(client, "/sign-in/email"), 10)
    clock.advance(4)
    assert_limited(hit(client, "/sign-in/email"), 6)  # a refused request does not count
    clock.advance(5.5)
    assert_limited(hit(client, "/sign-in/email"), 1)  # ceil(0.5)
    clock.advance(0.5)
    assert hit(client, "/sign-in/email").status_code == 400


def test_the_window_restarts_after_a_quiet_window(
    limited: Callable[..., FlaskClient], clock: Clock
) -> None:
    # Better Auth keeps the time of the last allowed request: the count resets only once a whole
    # window has passed since it.
    client = limited()
    for step in (0, 5, 4):
        clock.advance(step)
        assert hit(client, "/sign-up/email").status_code != 429
    clock.advance(3)  # 12 s after the first request, 3 s after the last
    assert_limited(hit(client, "/sign-up/email"), 7)
    clock.advance(7)
    assert statuses(client, "/sign-up/email", 3) != [429] * 3
    assert hit(client, "/sign-up/email").status_code == 429


@pytest.mark.parametrize(
    ("path", "window"),
    [
        ("/sign-in/social", 10),
        ("/sign-up/email", 10),
        ("/change-password", 10),
        ("/change-email", 10),
        ("/request-password-reset", 60),
        ("/send-verification-email", 60),
        ("/forget-password", 60),
        ("/email-otp/send-verification-otp", 60),
    ],
)
def test_special_rules(limited: Callable[..., FlaskClient], path: str, window: int) -> None:
    client = limited()
    assert 429 not in statuses(client, path, 3)
    assert_limited(hit(client, path), window)


def test_default_rule_on_other_paths_unknown_ones_included(
    limited: Callable[..., FlaskClient], clock: Clock
) -> None:
    client = limited()
    assert set(statuses(client, "/ok", 100, method="GET")) == {200}
    assert_limited(hit(client, "/ok", method="GET"), 10)
    # Before routing: a path no route serves is counted and limited like any other.
    assert set(statuses(client, "/no-such-route", 100)) == {404}
    assert_limited(hit(client, "/no-such-route"), 10)
    assert_limited(hit(client, "/no-such-route/", method="GET"), 10)  # trailing "/" dropped
    clock.advance(10)
    assert hit(client, "/ok", method="GET").status_code == 200


def test_default_window_and_max_are_settings(limited: Callable[..., FlaskClient]) -> None:
    client = limited(RATE_LIMIT_WINDOW=30, RATE_LIMIT_MAX=5)
    assert set(statuses(client, "/get-session", 5, method="GET")) == {200}
    assert_limited(hit(client, "/get-session", method="GET"), 30)


def test_custom_rules_exact_wildcard_false_and_callable(
    limited: Callable[..., FlaskClient],
) -> None:
    seen: list[tuple[str, Rule]] = []

    def per_header(req: Request, rule: Rule) -> Any:
        seen.append((req.path, rule))
        return {"window": 20, "max": 1} if req.headers.get("X-Tier") == "free" else None

    client = limited(
        RATE_LIMIT_CUSTOM_RULES={
            "/ok": {"window": 5, "max": 2},
            "/sign-in/*": {"window": 30, "max": 5},
            "/get-session": False,
            "/list-*": False,
            "/update-user": per_header,
        }
    )
    assert statuses(client, "/ok", 3, method="GET") == [200, 200, 429]
    assert 429 not in statuses(client, "/sign-in/email", 5)  # overrides the special 3 / 10 s
    assert_limited(hit(client, "/sign-in/email"), 30)
    assert 429 not in statuses(client, "/get-session", 150, method="GET")
    assert 429 not in statuses(client, "/list-sessions", 150, method="GET")
    assert hit(client, "/update-user", **{"X-Tier": "free"}).status_code != 429
    assert_limited(hit(client, "/update-user", **{"X-Tier": "free"}), 20)
    assert seen[0] == (f"{AUTH}/update-user", Rule(10, 100))  # gets the rule it overrides
    # None keeps the rule it was given: the default one.
    assert 429 not in statuses(client, "/update-user", 99)
    assert hit(client, "/update-user").status_code == 429


def test_rule_for_is_the_seam_for_plugin_rules() -> None:
    conf = make_app("sqlite://", create_tables=False).extensions["better_auth"].settings.rate_limit
    two_factor = PathRule(lambda path: path.startswith("/two-factor/"), Rule(10, 3))
    assert rule_for("/two-factor/verify", conf) == Rule(10, 100)
    assert rule_for("/two-factor/verify", conf, [two_factor]) == Rule(10, 3)
    # A plugin rule overrides a special rule, as in Better Auth.
    assert rule_for("/sign-in/x", conf, [PathRule(lambda p: True, Rule(1, 1))]) == Rule(1, 1)
    assert rule_for("/sign-in/email", conf) == Rule(10, 3)
    assert rule_for("/forget-password/x", conf) == Rule(60, 3)
    assert rule_for("/request-password-reset/x", conf) == Rule(10, 100)  # exact match only


def test_sub_path() -> None:
    assert sub_path("/api/auth/sign-in/email", "/api/auth") == "/sign-in/email"
    assert sub_path("/api/auth/ok/", "/api/auth") == "/ok"
    assert sub_path("/api/auth", "/api/auth") == "/"
    assert sub_path("/api/auth/", "/api/auth") == "/"
    assert sub_path("/api/authevil/ok", "/api/auth") is None
    assert sub_path("/api/open", "/api/auth") is None


def test_only_the_auth_routes_are_limited(limited: Callable[..., FlaskClient]) -> None:
    client = limited(RATE_LIMIT_MAX=2)
    headers = {"X-Forwarded-For": CLIENT}
    assert {client.get("/api/open", headers=headers).status_code for _ in range(10)} == {200}


def test_cors_preflights_are_not_counted_and_429_carries_cors_headers(
    limited: Callable[..., FlaskClient],
) -> None:
    spa = "https://spa.example"
    client = limited(CORS_ORIGINS=[spa])
    preflight = {
        "Origin": spa,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
        "X-Forwarded-For": CLIENT,
    }
    for _ in range(10):
        r = client.options(f"{AUTH}/sign-in/email", headers=preflight)
        assert r.status_code == 200
        assert r.headers["Access-Control-Allow-Origin"] == spa
    assert 429 not in statuses(client, "/sign-in/email", 3, Origin=spa)
    r = hit(client, "/sign-in/email", Origin=spa)
    assert_limited(r, 10)
    assert r.headers["Access-Control-Allow-Origin"] == spa
    assert r.headers["Access-Control-Allow-Credentials"] == "true"
    assert "x-retry-after" in r.headers["Access-Control-Expose-Headers"].lower()


# --------------------------------------------------------------------------------------------
# On and off


def test_off_under_testing_by_default(build: Callable[..., Flask]) -> None:
    app = build(RATE_LIMIT_ENABLED=None)
    assert app.extensions["better_auth"].rate_limiter is None
    client = app.test_client()
    assert 429 not in statuses(client, "/sign-in/email", 10)


@pytest.mark.parametrize(
    ("testing", "debug", "enabled", "expected"),
    [
        (False, False, None, True),  # production: on
        (True, False, None, False),
        (False, True, None, False),
        (False, False, False, False),
        (True, True, True, True),
    ],
)
def test_enabled_default(
    tmp_path: Path, testing: bool, debug: bool, enabled: bool | None, expected: bool
) -> None:
    from flask_better_auth import BetterAuth
    from flask_better_auth.settings import AuthSettings

    app = Flask(__name__)
    app.config.update(
        TESTING=testing,
        DEBUG=debug,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'x.sqlite'}",
        BETTER_AUTH_SECRET="s" * 40,
        BETTER_AUTH_BASE_URL="http://localhost",
        BETTER_AUTH_RATE_LIMIT_ENABLED=enabled,
    )
    BetterAuth(app)
    conf: AuthSettings = app.extensions["better_auth"].settings
    assert conf.rate_limit.enabled is expected
    assert (app.extensions["better_auth"].rate_limiter is not None) is expected
    with app.app_context():
        app.extensions["better_auth"].db.engine.dispose()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"RATE_LIMIT_STORAGE": "mongo"}, "BETTER_AUTH_RATE_LIMIT_STORAGE must be one of"),
        ({"RATE_LIMIT_STORAGE": "redis"}, "needs BETTER_AUTH_RATE_LIMIT_REDIS_URL"),
        ({"RATE_LIMIT_WINDOW": 0}, "BETTER_AUTH_RATE_LIMIT_WINDOW must be above 0"),
        ({"RATE_LIMIT_MAX": 0}, "BETTER_AUTH_RATE_LIMIT_MAX at least 1"),
        ({"RATE_LIMIT_CUSTOM_RULES": ["/ok"]}, "must be a mapping"),
        ({"RATE_LIMIT_CUSTOM_RULES": {"ok": False}}, "keys are paths below the base path"),
        ({"RATE_LIMIT_CUSTOM_RULES": {"/ok": {"max": 3}}}, '{"window": seconds, "max"'),
        ({"RATE_LIMIT_CUSTOM_RULES": {"/ok": True}}, "or False"),
        ({"RATE_LIMIT_CUSTOM_RULES": {"/ok": {"window": 1, "max": "x"}}}, "must be an integer"),
        ({"TRUSTED_PROXIES": ["10.0.0.0/33"]}, "not IP addresses or CIDR ranges: ['10.0.0.0/33']"),
        ({"TRUSTED_PROXIES": ["proxy.internal"]}, "not IP addresses or CIDR ranges"),
        ({"IPV6_SUBNET": 129}, "BETTER_AUTH_IPV6_SUBNET must be from 0 to 128"),
        (
            {"RATE_LIMIT_STORAGE": "redis", "RATE_LIMIT_REDIS_URL": "http://x"},
            "Redis URL 'http://x' is unusable",
        ),
    ],
)
def test_config_errors(tmp_path: Path, settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        make_app(
            f"sqlite:///{tmp_path / 'x.sqlite'}",
            create_tables=False,
            RATE_LIMIT_ENABLED=True,
            **settings,
        )
    assert message in str(error.value)


def test_settings_from_the_environment_shape(tmp_path: Path) -> None:
    # What app.config.from_prefixed_env() produces: JSON values, durations as numbers.
    app = make_app(
        f"sqlite:///{tmp_path / 'x.sqlite'}",
        create_tables=False,
        RATE_LIMIT_ENABLED="true",
        RATE_LIMIT_WINDOW="60",
        RATE_LIMIT_CUSTOM_RULES=json.loads('{"/sign-in/*": {"window": 60, "max": 10}}'),
        TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.1",
    )
    conf = app.extensions["better_auth"].settings
    assert conf.rate_limit.rule == Rule(60, 100)
    assert conf.rate_limit.custom_rules == (("/sign-in/*", Rule(60, 10)),)
    assert [str(n) for n in conf.trusted_proxies] == ["10.0.0.0/8", "192.0.2.1/32"]
    limiter_of(app).close()


def test_redis_by_default_with_secondary_storage(
    tmp_path: Path, redis_target: tuple[str, str]
) -> None:
    url, prefix = redis_target
    app = make_app(
        f"sqlite:///{tmp_path / 'x.sqlite'}",
        create_tables=False,
        RATE_LIMIT_ENABLED=True,
        SECONDARY_STORAGE_URL=url,
        SECONDARY_STORAGE_PREFIX=prefix,
    )
    state = app.extensions["better_auth"]
    try:
        conf = state.settings.rate_limit
        assert (conf.storage, conf.redis_url, conf.redis_prefix) == ("redis", url, prefix)
    finally:
        state.rate_limiter.close()
        if getattr(state, "secondary", None) is not None:
            state.secondary.close()
        with app.app_context():
            state.db.engine.dispose()


# --------------------------------------------------------------------------------------------
# Client IPs


def test_each_client_ip_has_its_own_bucket(limited: Callable[..., FlaskClient]) -> None:
    client = limited()
    assert 429 not in statuses(client, "/sign-in/email", 3, ip="198.51.100.1")
    assert hit(client, "/sign-in/email", ip="198.51.100.1").status_code == 429
    assert hit(client, "/sign-in/email", ip="198.51.100.2").status_code != 429
    # ... and its own bucket per path.
    assert hit(client, "/sign-up/email", ip="198.51.100.1").status_code != 429


def test_a_forwarded_chain_without_trusted_proxies_falls_back_to_the_peer_with_a_warning(
    limited: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = limited()
    # Spoofed leftmost entries cannot buy a fresh bucket: the chain is not trusted, so the
    # socket peer (the proxy here) is the key, and everyone behind it shares it.
    for n in range(3):
        assert hit(client, "/sign-in/email", ip=f"192.0.2.{n}, 10.0.0.1").status_code != 429
    assert hit(client, "/sign-in/email", ip="192.0.2.99, 10.0.0.1").status_code == 429
    assert hit(client, "/sign-in/email", ip=None).status_code == 429  # same peer, 127.0.0.1
    warnings = [r for r in caplog.records if "BETTER_AUTH_TRUSTED_PROXIES" in r.getMessage()]
    assert len(warnings) == 1  # once per process
    assert "x-forwarded-for" in warnings[0].getMessage()
    assert "every client shares one bucket" in warnings[0].getMessage()


def test_without_forwarded_headers_the_peer_address_is_the_key(
    limited: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = limited()
    first = {"REMOTE_ADDR": "192.0.2.10"}
    for _ in range(3):
        client.post(f"{AUTH}/sign-in/email", json={}, environ_base=first)
    assert client.post(f"{AUTH}/sign-in/email", json={}, environ_base=first).status_code == 429
    other = {"REMOTE_ADDR": "192.0.2.11"}
    assert client.post(f"{AUTH}/sign-in/email", json={}, environ_base=other).status_code != 429
    assert not caplog.records  # a direct client: nothing to warn about


def test_no_ip_at_all_shares_one_bucket_and_says_so(
    limited: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = limited()
    nobody = {"REMOTE_ADDR": ""}
    codes = [
        client.post(f"{AUTH}/sign-in/email", json={}, environ_base=nobody).status_code
        for _ in range(4)
    ]
    assert codes[3] == 429
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "could not determine a client IP" in warning.getMessage()
    assert "BETTER_AUTH_IP_ADDRESS_HEADERS" in warning.getMessage()
    assert "BETTER_AUTH_TRUSTED_PROXIES" in warning.getMessage()
    memory = limiter_of(client.application).storage
    assert isinstance(memory, ratelimit.MemoryStorage)
    assert f"{NO_TRUSTED_IP}|/sign-in/email" in memory._entries


def test_trusted_proxies_walk_the_chain_from_the_right(
    limited: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = limited(TRUSTED_PROXIES=["10.0.0.0/8", "2001:db8:ffff::/48"])
    chains = [
        "198.51.100.7, 10.1.2.3, 10.0.0.1",
        "1.1.1.1, 198.51.100.7, 10.9.9.9",  # a spoofed entry left of the real client
        "198.51.100.7, 2001:db8:ffff::1",
    ]
    for chain in chains:
        assert hit(client, "/sign-in/email", ip=chain).status_code != 429
    assert hit(client, "/sign-in/email", ip="5.5.5.5, 198.51.100.7").status_code == 429
    assert hit(client, "/sign-in/email", ip="198.51.100.8, 10.0.0.1").status_code != 429
    assert not caplog.records


def test_address_from_header() -> None:
    proxies = trusted_proxies(["10.0.0.0/8", "192.0.2.1", "::ffff:172.16.0.1"])
    assert str(address_from_header("203.0.113.1, 10.0.0.2, 192.0.2.1", proxies)) == "203.0.113.1"
    assert address_from_header("10.0.0.2, 192.0.2.1", proxies) is None  # only proxies
    assert address_from_header("203.0.113.1, junk, 10.0.0.2", proxies) is None  # broken chain
    assert str(address_from_header("203.0.113.1, 172.16.0.1", proxies)) == "203.0.113.1"
    assert str(address_from_header("::ffff:203.0.113.1, 10.0.0.2", proxies)) == "203.0.113.1"
    # Without proxies: exactly one valid address.
    assert str(address_from_header(" 203.0.113.1 ")) == "203.0.113.1"
    assert address_from_header("203.0.113.1, 10.0.0.2") is None
    assert address_from_header("unknown") is None
    assert address_from_header("fe80::1%eth0") is None


def test_ipv6_clients_are_limited_per_64(limited: Callable[..., FlaskClient]) -> None:
    client = limited()
    for ip in ("2001:db8:1:2::1", "2001:DB8:1:2:ffff::9", "2001:0db8:0001:0002::abcd"):
        assert hit(client, "/sign-in/email", ip=ip).status_code != 429
    assert hit(client, "/sign-in/email", ip="2001:db8:1:2:1:2:3:4").status_code == 429
    assert hit(client, "/sign-in/email", ip="2001:db8:1:3::1").status_code != 429
    # IPv4-mapped IPv6 is the IPv4 address.
    for _ in range(3):
        hit(client, "/sign-in/email", ip="192.0.2.5")
    assert hit(client, "/sign-in/email", ip="::ffff:192.0.2.5").status_code == 429


def test_ipv6_subnet_setting(limited: Callable[..., FlaskClient]) -> None:
    client = limited(IPV6_SUBNET=128)
    for n in range(1, 5):
        assert hit(client, "/sign-in/email", ip=f"2001:db8::{n}").status_code != 429


def test_bucket_ip_is_better_auths_key() -> None:
    v6 = parse_address("2001:DB8:1:2::1")
    assert v6 is not None
    assert bucket_ip(v6, 64) == "2001:0db8:0001:0002:0000:0000:0000:0000"
    assert bucket_ip(v6, 128) == "2001:0db8:0001:0002:0000:0000:0000:0001"
    assert bucket_ip(v6, 0) == "0000:0000:0000:0000:0000:0000:0000:0000"
    v4 = parse_address("::ffff:c000:0201")
    assert v4 is not None and bucket_ip(v4, 64) == "192.0.2.1"


def test_disable_ip_tracking_turns_limiting_off(limited: Callable[..., FlaskClient]) -> None:
    client = limited(DISABLE_IP_TRACKING=True)
    assert 429 not in statuses(client, "/sign-in/email", 10)


def test_session_ip_address_uses_trusted_proxies_but_never_the_peer(
    build: Callable[..., Flask],
) -> None:
    app = build(TRUSTED_PROXIES=["10.0.0.0/8"], RATE_LIMIT_ENABLED=False)
    client = app.test_client()
    account = sign_up(client)
    for forwarded, expected in [("198.51.100.7, 10.0.0.1", "198.51.100.7"), (None, "")]:
        headers = {**ORIGIN, **({"X-Forwarded-For": forwarded} if forwarded else {})}
        r = client.post(
            f"{AUTH}/sign-in/email",
            json={"email": account.email, "password": account.password},
            headers=headers,
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
        token = r.get_json()["token"]
        session = client.get(
            f"{AUTH}/get-session", headers={"Authorization": f"Bearer {token}"}
        ).get_json()["session"]
        assert session["ipAddress"] == expected


# --------------------------------------------------------------------------------------------
# Database storage (SQLite and PostgreSQL)


@pytest.fixture
def db_app(build: Callable[..., Flask], database_url: str, clock: Clock) -> Flask:
    app = build(database_url, RATE_LIMIT_STORAGE="database")
    with app.app_context():
        engine = app.extensions["better_auth"].db.engine
        rate_limit_metadata.drop_all(engine)
        app.extensions["better_auth"].extension.create_all()
    limiter_of(app).clock = clock
    return app


def rows(app: Flask) -> list[tuple[str, int, int]]:
    with app.app_context():
        session = app.extensions["better_auth"].db.session
        found = session.execute(
            select(RateLimit.key, RateLimit.count, RateLimit.last_request).order_by(RateLimit.key)
        ).all()
        session.remove()
    return [tuple(row) for row in found]


@pytest.mark.parametrize("upsert", [True, False], ids=["upsert", "for-update"])
def test_database_storage(db_app: Flask, clock: Clock, upsert: bool) -> None:
    storage = limiter_of(db_app).storage
    assert isinstance(storage, ratelimit.DatabaseStorage)
    storage.upsert = upsert
    client = db_app.test_client()
    for step in (0, 1, 1):
        clock.advance(step)
        assert hit(client, "/sign-in/email").status_code == 400
    assert rows(db_app) == [(f"{CLIENT}|/sign-in/email", 3, T0 + 2000)]
    clock.advance(3)
    assert_limited(hit(client, "/sign-in/email"), 7)
    assert rows(db_app) == [(f"{CLIENT}|/sign-in/email", 3, T0 + 2000)]  # refusals not counted
    assert hit(client, "/sign-in/email", ip="198.51.100.1").status_code == 400
    assert hit(client, "/no-such-route", method="GET").status_code == 404
    clock.advance(6.999)
    assert_limited(hit(client, "/sign-in/email"), 1)
    clock.advance(0.001)  # 10 s after the last allowed request: a new window
    assert hit(client, "/sign-in/email").status_code == 400
    assert rows(db_app) == [
        ("198.51.100.1|/sign-in/email", 1, T0 + 5000),
        (f"{CLIENT}|/no-such-route", 1, T0 + 5000),
        (f"{CLIENT}|/sign-in/email", 1, T0 + 12000),
    ]


def test_database_storage_drops_rows_past_every_window(db_app: Flask, clock: Clock) -> None:
    client = db_app.test_client()
    hit(client, "/ok", method="GET")
    clock.advance(61)  # longer than the longest rule (60 s)
    hit(client, "/sign-in/email")
    assert [key for key, *_ in rows(db_app)] == [f"{CLIENT}|/sign-in/email"]


def test_database_storage_is_exact_under_concurrency(
    build: Callable[..., Flask], postgres_url: str
) -> None:
    app = build(
        postgres_url,
        RATE_LIMIT_STORAGE="database",
        RATE_LIMIT_CUSTOM_RULES={"/ok": {"window": 60, "max": 25}},
    )
    with app.app_context():
        rate_limit_metadata.drop_all(app.extensions["better_auth"].db.engine)
        app.extensions["better_auth"].extension.create_all()
    threads, per_thread = 8, 10
    barrier = threading.Barrier(threads, timeout=30)
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        client = app.test_client()
        barrier.wait()
        codes = statuses(client, "/ok", per_thread, method="GET")
        with lock:
            results.extend(codes)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert len(results) == threads * per_thread
    assert results.count(200) == 25
    assert results.count(429) == threads * per_thread - 25


def test_database_failure_fails_open_and_logs(
    build: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    app = build(RATE_LIMIT_STORAGE="database")  # no rateLimit table created
    client = app.test_client()
    assert 429 not in statuses(client, "/sign-in/email", 5)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Rate limiting is off: the database storage failed" in errors[0].getMessage()


def test_create_all_makes_the_rate_limit_table_only_for_database_storage(
    build: Callable[..., Flask],
) -> None:
    from sqlalchemy import inspect

    for storage, expected in (("memory", False), ("database", True)):
        app = build(RATE_LIMIT_STORAGE=storage)
        with app.app_context():
            engine = app.extensions["better_auth"].db.engine
            app.extensions["better_auth"].extension.create_all()
            assert inspect(engine).has_table("rateLimit") is expected
            if expected:
                columns = {c["name"]: c for c in inspect(engine).get_columns("rateLimit")}
                assert list(columns) == ["id", "key", "count", "lastRequest"]
                assert not any(c["nullable"] for c in columns.values())


# --------------------------------------------------------------------------------------------
# Redis storage


@pytest.fixture
def redis_target() -> Iterator[tuple[str, str]]:
    """The local Redis URL and a key prefix of this test's own; its keys deleted after."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis at {REDIS_URL} is not reachable: {exc}")
    prefix = f"fba-test:{uuid.uuid4().hex}:"
    yield REDIS_URL, prefix
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_app(build: Callable[..., Flask], redis_target: tuple[str, str]) -> Callable[..., Flask]:
    def factory(**settings: Any) -> Flask:
        url, prefix = redis_target
        return build(
            RATE_LIMIT_STORAGE="redis",
            RATE_LIMIT_REDIS_URL=url,
            RATE_LIMIT_REDIS_PREFIX=prefix,
            **settings,
        )

    return factory


def test_redis_storage(redis_app: Callable[..., Flask], redis_target: tuple[str, str]) -> None:
    app = redis_app()
    storage = limiter_of(app).storage
    assert isinstance(storage, ratelimit.RedisStorage)
    client = app.test_client()
    assert statuses(client, "/sign-in/email", 3) == [400, 400, 400]
    r = hit(client, "/sign-in/email")
    assert r.status_code == 429
    assert r.get_data() == MESSAGE
    assert 1 <= int(r.headers["X-Retry-After"]) <= 10  # the key's time to live
    key = f"{redis_target[1]}{CLIENT}|/sign-in/email"
    assert int(storage.client.get(key)) == 4
    assert 0 < storage.client.pttl(key) <= 10_000
    assert hit(client, "/sign-in/email", ip="198.51.100.1").status_code == 400
    assert set(statuses(client, "/no-such-route", 100)) == {404}
    assert hit(client, "/no-such-route").status_code == 429


def test_redis_window_expires(
    redis_app: Callable[..., Flask], redis_target: tuple[str, str]
) -> None:
    app = redis_app(RATE_LIMIT_CUSTOM_RULES={"/ok": {"window": 1, "max": 2}})
    client = app.test_client()
    assert statuses(client, "/ok", 3, method="GET") == [200, 200, 429]
    storage = limiter_of(app).storage
    assert isinstance(storage, ratelimit.RedisStorage)
    key = f"{redis_target[1]}{CLIENT}|/ok"
    for _ in range(300):  # wait for Redis to expire the key: at most ~3 s
        if storage.client.exists(key) == 0:
            break
        threading.Event().wait(0.01)
    else:
        pytest.fail("the key never expired")
    assert statuses(client, "/ok", 3, method="GET") == [200, 200, 429]


def test_redis_down_fails_open_and_logs_once(
    build: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    app = build(RATE_LIMIT_STORAGE="redis", RATE_LIMIT_REDIS_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    assert 429 not in statuses(client, "/sign-in/email", 10)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "Rate limiting is off: the redis storage failed" in errors[0].getMessage()
    assert "ConnectionError" in errors[0].getMessage()


def test_redis_back_after_an_outage(
    redis_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    app = redis_app()
    limiter = limiter_of(app)
    real = limiter.storage

    class Broken:
        def consume(self, key: str, rule: Rule, now: int) -> int | None:
            raise OSError("connection reset")

        def close(self) -> None:
            pass

    limiter.storage = Broken()
    client = app.test_client()
    assert 429 not in statuses(client, "/sign-in/email", 5)
    limiter.storage = real
    limiter._skip_until = 0.0  # the retry delay has passed
    assert statuses(client, "/sign-in/email", 4) == [400, 400, 400, 429]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Rate limiting is off" in m for m in messages) == 1
    assert sum("Rate limiting is back on" in m for m in messages) == 1


_WORKER = textwrap.dedent(
    """
    import json, sys, time
    import redis
    from flask import Flask
    from flask_better_auth import BetterAuth

    url, prefix, go, requests, most = sys.argv[1:]
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        BETTER_AUTH_SECRET="multi-process-secret-0123456789-abcdefghij",
        BETTER_AUTH_BASE_URL="http://localhost",
        BETTER_AUTH_RATE_LIMIT_ENABLED=True,
        BETTER_AUTH_RATE_LIMIT_STORAGE="redis",
        BETTER_AUTH_RATE_LIMIT_REDIS_URL=url,
        BETTER_AUTH_RATE_LIMIT_REDIS_PREFIX=prefix,
        BETTER_AUTH_RATE_LIMIT_CUSTOM_RULES={"/ok": {"window": 120, "max": int(most)}},
    )
    BetterAuth(app)
    client = app.test_client()
    print("ready", flush=True)
    signal = redis.Redis.from_url(url)
    deadline = time.monotonic() + 120
    while not signal.exists(go):
        if time.monotonic() > deadline:
            sys.exit("no start signal")
        time.sleep(0.002)
    signal.close()
    codes = [
        client.get("/api/auth/ok", headers={"X-Forwarded-For": "198.51.100.77"}).status_code
        for _ in range(int(requests))
    ]
    app.extensions["better_auth"].rate_limiter.close()
    print(json.dumps(codes), flush=True)
    """
)


def test_redis_is_exact_across_4_processes(redis_target: tuple[str, str], tmp_path: Path) -> None:
    import redis

    url, prefix = redis_target
    processes, per_process, most = 4, 60, 100
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    go = f"{prefix}go"
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), url, prefix, go, str(per_process), str(most)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for worker in workers:  # every process is up before any sends a request
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        signal = redis.Redis.from_url(url)
        signal.set(go, "1", ex=60)
        signal.close()
        codes: list[int] = []
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            codes += json.loads(out.strip().splitlines()[-1])
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert len(codes) == processes * per_process
    assert codes.count(200) == most
    assert codes.count(429) == processes * per_process - most

"""The rate limiter: Better Auth's rules and 429 answer, client IPs, every storage for real.

Memory and database windows run on an injected clock (no sleeping); Redis expiries are real
(1-second windows, waited for by polling the key, bounded). The multi-process test runs four
OS processes against the local Redis, loopback only, with a timeout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
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
    MAX_PLAIN_PATH,
    NO_TRUSTED_IP,
    RateLimiter,
    Rule,
    rate_limit_key,
    rule_for,
    sub_path,
)

AUTH = "/api/auth"
MESSAGE = b'{"message":"Too many requests. Please try again later."}'
UNAVAILABLE = {"message": "Service temporarily unavailable", "code": "SERVICE_UNAVAILABLE"}
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
    ip: str = CLIENT,
    method: str = "POST",
    forwarded: str | None = None,
    **headers: str,
) -> Any:
    """One request below the base path from the socket peer ``ip``.

    :param forwarded: an ``X-Forwarded-For`` header to send.
    """
    sent = {**ORIGIN, **headers}
    if forwarded is not None:
        sent["X-Forwarded-For"] = forwarded
    return client.open(
        f"{AUTH}{path}", method=method, headers=sent, json={}, environ_base={"REMOTE_ADDR": ip}
    )


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
        if state.secondary is not None:
            state.secondary.close()
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


def test_rule_for() -> None:
    conf = make_app("sqlite://", create_tables=False).extensions["better_auth"].settings.rate_limit
    assert rule_for("/two-factor/verify", conf) == Rule(10, 100)
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
    assert {client.get("/api/open").status_code for _ in range(10)} == {200}


def test_cors_preflights_are_not_counted_and_429_carries_cors_headers(
    limited: Callable[..., FlaskClient],
) -> None:
    spa = "https://spa.example"
    client = limited(CORS_ORIGINS=[spa])
    preflight = {
        "Origin": spa,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
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


def test_redis_by_default_with_secondary_storage_through_one_client(
    build: Callable[..., Flask], redis_target: tuple[str, str]
) -> None:
    url, prefix = redis_target
    app = build(SECONDARY_STORAGE_URL=url, SECONDARY_STORAGE_PREFIX=prefix)
    state = app.extensions["better_auth"]
    conf = state.settings.rate_limit
    assert (conf.storage, conf.redis_url, conf.redis_prefix) == ("redis", url, prefix)
    storage = limiter_of(app).storage
    assert isinstance(storage, ratelimit.RedisStorage)
    # One client, so one connection pool, for the sessions and the counters.
    assert storage.client is state.secondary.client
    assert storage.client.connection_pool is state.secondary.client.connection_pool
    client = app.test_client()
    account = sign_up(client)  # a session written through the shared client...
    assert state.secondary.get_session(account.token) is not None
    assert statuses(client, "/sign-in/email", 3) == [400, 400, 400]  # ... and counters too
    assert hit(client, "/sign-in/email").status_code == 429
    assert state.secondary.client.get(f"{prefix}{CLIENT}|/sign-in/email") == "4"
    limiter_of(app).close()  # the limiter does not close a client it does not own
    assert state.secondary.ping()


def test_a_rate_limit_redis_url_of_its_own_gets_a_client_of_its_own(
    build: Callable[..., Flask], redis_target: tuple[str, str]
) -> None:
    url, prefix = redis_target
    other = url.rsplit("/", 1)[0] + "/1"
    app = build(
        SECONDARY_STORAGE_URL=url,
        SECONDARY_STORAGE_PREFIX=prefix,
        RATE_LIMIT_REDIS_URL=other,
        RATE_LIMIT_REDIS_PREFIX=prefix,
    )
    storage = limiter_of(app).storage
    assert isinstance(storage, ratelimit.RedisStorage)
    secondary = app.extensions["better_auth"].secondary
    assert storage.client is not secondary.client
    assert storage.client.connection_pool is not secondary.client.connection_pool
    try:
        assert statuses(app.test_client(), "/sign-in/email", 4) == [400, 400, 400, 429]
        assert storage.client.get(f"{prefix}{CLIENT}|/sign-in/email") == "4"
        assert secondary.client.get(f"{prefix}{CLIENT}|/sign-in/email") is None
    finally:
        storage.client.delete(f"{prefix}{CLIENT}|/sign-in/email")


# --------------------------------------------------------------------------------------------
# Client IPs


def test_each_client_ip_has_its_own_bucket(limited: Callable[..., FlaskClient]) -> None:
    client = limited()
    assert 429 not in statuses(client, "/sign-in/email", 3, ip="198.51.100.1")
    assert hit(client, "/sign-in/email", ip="198.51.100.1").status_code == 429
    assert hit(client, "/sign-in/email", ip="198.51.100.2").status_code != 429
    # ... and its own bucket per path.
    assert hit(client, "/sign-up/email", ip="198.51.100.1").status_code != 429


@pytest.mark.parametrize(
    ("settings", "header"),
    [
        ({}, "X-Forwarded-For"),
        ({"IP_ADDRESS_HEADERS": ["x-real-ip", "x-forwarded-for"]}, "X-Real-IP"),
        ({"TRUSTED_PROXIES": ["10.0.0.0/8"]}, "X-Forwarded-For"),  # the peer is no proxy
    ],
)
def test_a_client_rotating_forwarded_headers_gets_no_new_bucket(
    limited: Callable[..., FlaskClient],
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    header: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = limited(**settings)
    # A client talking to the app directly writes any header it likes: a fresh, valid, single
    # address each time. Only the socket peer counts, so the fourth sign-in is refused.
    codes = [
        hit(client, "/sign-in/email", **{header: f"198.51.100.{n}"}).status_code
        for n in range(1, 7)
    ]
    assert codes[:3] == [400, 400, 400]
    assert codes[3:] == [429, 429, 429]
    assert hit(client, "/sign-in/email", forwarded="192.0.2.1, 10.0.0.1").status_code == 429
    assert hit(client, "/sign-in/email").status_code == 429  # no header at all: the same bucket
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # once per process
    assert f"ignores {header.lower()}" in warnings[0]
    assert f"from {CLIENT}, which is not in BETTER_AUTH_TRUSTED_PROXIES" in warnings[0]


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
        client.post(
            f"{AUTH}/sign-in/email",
            json={},
            environ_base=nobody,
            headers={"X-Forwarded-For": f"198.51.100.{n}"},  # not read: no trusted peer
        ).status_code
        for n in range(4)
    ]
    assert codes[3] == 429
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "could not determine a client IP" in warning.getMessage()
    assert "ProxyFix" in warning.getMessage()
    memory = limiter_of(client.application).storage
    assert isinstance(memory, ratelimit.MemoryStorage)
    assert f"{NO_TRUSTED_IP}|/sign-in/email" in memory._entries


def test_behind_a_trusted_proxy_the_chain_is_walked_from_the_right(
    limited: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = limited(TRUSTED_PROXIES=["10.0.0.0/8", "2001:db8:ffff::/48"])
    proxy = "10.0.0.1"
    chains = [
        "198.51.100.7, 10.1.2.3",
        "1.1.1.1, 198.51.100.7, 10.9.9.9",  # a spoofed entry left of the real client
        "198.51.100.7, 2001:db8:ffff::1",
    ]
    for chain in chains:
        assert hit(client, "/sign-in/email", ip=proxy, forwarded=chain).status_code != 429
    refused = hit(client, "/sign-in/email", ip=proxy, forwarded="5.5.5.5, 198.51.100.7")
    assert refused.status_code == 429
    assert hit(client, "/sign-in/email", ip=proxy, forwarded="198.51.100.8").status_code != 429
    assert (
        hit(client, "/sign-in/email", ip="2001:db8:ffff::9", forwarded="198.51.100.9").status_code
        != 429
    )
    # The proxy's own bucket is untouched by its clients' requests.
    assert hit(client, "/sign-in/email", ip="198.51.100.7").status_code == 429
    assert hit(client, "/sign-in/email", ip=proxy, forwarded="1.2.3.4, 10.0.0.2").status_code != 429
    assert not caplog.records


def test_behind_proxyfix_the_rewritten_peer_is_the_key(
    limited: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = limited()
    app = client.application
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    # nginx on a Unix socket (no peer address) appends the address it saw, on the right.
    codes = [
        hit(client, "/sign-in/email", ip="", forwarded=f"192.0.2.{n}, 198.51.100.7").status_code
        for n in range(5)
    ]
    assert codes == [400, 400, 400, 429, 429]
    assert hit(client, "/sign-in/email", ip="", forwarded="198.51.100.8").status_code == 400
    memory = limiter_of(app).storage
    assert isinstance(memory, ratelimit.MemoryStorage)
    assert sorted(memory._entries) == [
        "198.51.100.7|/sign-in/email",
        "198.51.100.8|/sign-in/email",
    ]
    assert not caplog.records  # the headers ProxyFix consumed are no cause for a warning


def test_a_trusted_proxy_without_a_client_address_is_keyed_on_itself(
    limited: Callable[..., FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = limited(TRUSTED_PROXIES=["10.0.0.1"])
    codes = [
        hit(client, "/sign-in/email", ip="10.0.0.1", forwarded=forwarded).status_code
        for forwarded in (None, "10.0.0.1", "junk", "")
    ]
    assert codes == [400, 400, 400, 429]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "the trusted proxy 10.0.0.1 sent no usable client address in x-forwarded-for" in warning
    memory = limiter_of(client.application).storage
    assert isinstance(memory, ratelimit.MemoryStorage)
    assert list(memory._entries) == ["10.0.0.1|/sign-in/email"]


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
# Keys: bounded and safe in every storage

#: Paths a client may send that no storage should have to hold as they are.
ODD_PATHS = {
    "nul": "/a%00b",
    "long": "/" + "x" * 3000,
    # 3,000 characters PostgreSQL cannot compress under its index-row limit.
    "long-random": "/" + "".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(47)),
    "unicode": "/%C3%A9t%C3%A9/%F0%9F%94%91/%E2%80%AE",
    "invalid-utf8": "/%FF%FE%C0%AF",
    "controls": "/a%09b%0Ac%0Dd%7F",
    "space": "/a%20b",
}
KEY = re.compile(r"[!-~]{1,250}")


def test_rate_limit_key() -> None:
    assert rate_limit_key(CLIENT, "/sign-in/email") == f"{CLIENT}|/sign-in/email"
    plain = "/" + "a" * (MAX_PLAIN_PATH - 1)
    assert rate_limit_key(CLIENT, plain) == f"{CLIENT}|{plain}"
    longer = rate_limit_key(CLIENT, plain + "a")
    digest = hashlib.sha256((plain + "a").encode()).hexdigest()
    assert longer == f"{CLIENT}|sha256:{digest}"
    for path in ("/a\x00b", "/é", "/a b", "/\udcff", "/a\tb", "/\x7f"):
        key = rate_limit_key(CLIENT, path)
        assert key.startswith(f"{CLIENT}|sha256:")
        assert len(key) == len(CLIENT) + 1 + 7 + 64
    assert rate_limit_key(CLIENT, "/é") != rate_limit_key(CLIENT, "/e")
    assert rate_limit_key(CLIENT, "/é") != rate_limit_key("192.0.2.1", "/é")
    v6 = "2001:0db8:0000:0000:0000:0000:0000:0000"
    assert KEY.fullmatch(rate_limit_key(v6, "/" + "\U0001f511" * 5000))


def assert_odd_paths_are_limited(client: FlaskClient) -> None:
    """Each odd path gets its own bucket of 2 (``RATE_LIMIT_MAX=2``), then 429 — never 503."""
    for name, path in ODD_PATHS.items():
        codes = [hit(client, path, method="GET").status_code for _ in range(3)]
        assert codes == [404, 404, 429], name


def test_odd_paths_in_memory(limited: Callable[..., FlaskClient]) -> None:
    client = limited(RATE_LIMIT_MAX=2)
    assert_odd_paths_are_limited(client)
    memory = limiter_of(client.application).storage
    assert isinstance(memory, ratelimit.MemoryStorage)
    assert len(memory._entries) == len(ODD_PATHS)
    assert all(KEY.fullmatch(key) for key in memory._entries)


def test_odd_paths_in_the_database(build: Callable[..., Flask], database_url: str) -> None:
    app = build(database_url, RATE_LIMIT_STORAGE="database", RATE_LIMIT_MAX=2)
    with app.app_context():
        rate_limit_metadata.drop_all(app.extensions["better_auth"].db.engine)
        app.extensions["better_auth"].extension.create_all()
    assert_odd_paths_are_limited(app.test_client())
    stored = rows(app)
    assert len(stored) == len(ODD_PATHS)
    assert all(KEY.fullmatch(key) and count == 2 for key, count, _ in stored)


def test_odd_paths_in_redis(redis_app: Callable[..., Flask], redis_target: tuple[str, str]) -> None:
    app = redis_app(RATE_LIMIT_MAX=2)
    assert_odd_paths_are_limited(app.test_client())
    storage = limiter_of(app).storage
    assert isinstance(storage, ratelimit.RedisStorage)
    prefix = redis_target[1]
    keys = [key[len(prefix) :] for key in storage.client.scan_iter(match=f"{prefix}*")]
    assert len(keys) == len(ODD_PATHS)
    assert all(KEY.fullmatch(key) for key in keys)


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


def assert_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert response.get_json() == UNAVAILABLE
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Retry-After"] == "1"


def test_a_dropped_rate_limit_table_refuses_requests_until_it_is_back(
    db_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    client = db_app.test_client()
    assert hit(client, "/sign-in/email").status_code == 400
    with db_app.app_context():
        rate_limit_metadata.drop_all(db_app.extensions["better_auth"].db.engine)
    for _ in range(5):  # never "let everything through for a while"
        assert_unavailable(hit(client, "/sign-in/email"))
    assert_unavailable(hit(client, "/ok", method="GET"))
    assert client.get("/api/open").status_code == 200  # only the auth routes depend on it
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per outage
    assert "the database storage failed" in errors[0]
    assert "refused with 503" in errors[0]
    assert "rateLimit" in errors[0]
    assert "flask better-auth migrate" in errors[0]
    assert "[SQL:" not in errors[0]  # the statement (and the client's IP) stay out of the log
    with db_app.app_context():
        rate_limit_metadata.create_all(db_app.extensions["better_auth"].db.engine)
    assert statuses(client, "/sign-in/email", 4) == [400, 400, 400, 429]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Rate limiting works again" in m for m in messages) == 1
    assert len(messages) == 2


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


def test_redis_down_refuses_requests_and_logs_once(
    build: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flask_better_auth.ratelimit")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build(RATE_LIMIT_STORAGE="redis", RATE_LIMIT_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    client = app.test_client()
    for _ in range(10):
        assert_unavailable(hit(client, "/sign-in/email"))
    assert_unavailable(hit(client, "/get-session", method="GET"))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "the redis storage failed (ConnectionError:" in errors[0]


def test_the_503_carries_cors_headers(build: Callable[..., Flask]) -> None:
    spa = "https://spa.example"
    app = build(RATE_LIMIT_STORAGE="database", CORS_ORIGINS=[spa])  # no rateLimit table
    r = hit(app.test_client(), "/sign-in/email", Origin=spa)
    assert_unavailable(r)
    assert r.headers["Access-Control-Allow-Origin"] == spa


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
        client.get("/api/auth/ok", environ_base={"REMOTE_ADDR": "198.51.100.77"}).status_code
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
            # This checkout's package, installed or not.
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
                ),
            },
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

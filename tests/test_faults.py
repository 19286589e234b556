"""Faults and abuse on a real server: concurrent sign-ups, PostgreSQL going away and coming back.

* 50 simultaneous sign-ups against the example app under ``gunicorn -w 4`` (several worker
  processes, each with threads) on a PostgreSQL database of the test's own: one email ⇒ exactly
  one user, 49 ``422``s; 50 emails ⇒ 50 users. Never a 5xx, never a user without its account.
* A throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` on a free loopback port) is stopped
  and restarted while sign-ups and session reads run: auth routes and ``@login_required`` views
  answer ``503`` JSON during the outage, work again within 2 s of the restart, and no sign-up
  that answered ``200`` is lost.

Only loopback traffic; every loop is bounded in iterations and time. Tests skip (outside CI)
only when a tool is missing: PostgreSQL unreachable (``FBA_TEST_POSTGRES_URL``), gunicorn not
installed, or no ``initdb``/``pg_ctl`` in ``FBA_TEST_PG_BIN`` (default
``/usr/lib/postgresql/15/bin``; run as root, they run as the ``postgres`` user via ``runuser``).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import PG_URL, make_app
from flask import Flask

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = REPO_ROOT / "examples" / "quickstart"
PG_BIN = Path(os.environ.get("FBA_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SECRET = "fault-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

SERVER_START_TIMEOUT = 30.0
REQUEST_TIMEOUT = 60.0
CONCURRENT = 50
_names = itertools.count()


def _missing(reason: str) -> None:
    """Skip outside CI; under CI a missing tool is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(_conninfo(url), connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def _create_tables(url: str) -> None:
    from sqlalchemy import create_engine

    from flask_better_auth.models import metadata

    engine = create_engine(url)
    try:
        metadata.create_all(engine)
    finally:
        engine.dispose()


def _stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop a server: SIGINT (gunicorn's quick shutdown; no request is in flight by now)."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _request(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        payload = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def _assert_auth_error(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, (reply.status, reply.body[:300])
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    data = reply.json()
    assert set(data) == {"message", "code"} and isinstance(data["message"], str), data
    assert data["code"] == code, data


# --- 1. concurrent sign-ups on gunicorn -w 4 ---------------------------------------------------


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """A fresh database on the shared PostgreSQL server, dropped (forcibly) afterwards."""
    import psycopg

    name = f"fba_fault_{os.getpid()}_{next(_names)}"
    admin = _conninfo(PG_URL)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        _missing(f"PostgreSQL at {admin} is not reachable: {exc}")
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    try:
        _create_tables(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Server:
    port: int
    origin: str
    log_path: Path

    def log_tail(self, limit: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-limit:]
        return "<no log>"


@pytest.fixture(scope="module")
def gunicorn_server(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The example app under gunicorn: 4 worker processes of 4 threads, on ``pg_database``.

    ``TESTING`` only to allow the test scrypt cost (the example app's auth routes answer the
    same either way); the rate limiter is off: 50 sign-ups from one address would meet 429.
    """
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        _missing("gunicorn is not installed (pip install -e '.[test]')")
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env.update(
        {
            "FLASK_BETTER_AUTH_SECRET": SECRET,
            "FLASK_BETTER_AUTH_BASE_URL": origin,
            "FLASK_BETTER_AUTH_COOKIE_SECURE": "false",
            "FLASK_BETTER_AUTH_RATE_LIMIT_ENABLED": "false",
            "FLASK_TESTING": "true",
            "FLASK_BETTER_AUTH_SCRYPT_N": "1024",
            "FLASK_SQLALCHEMY_DATABASE_URI": pg_database,
            "PYTHONUNBUFFERED": "1",
        }
    )
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", "4", "--worker-class", "gthread", "--threads", "4",
        "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--timeout", "60",
        "--chdir", str(EXAMPLE_DIR), "app:app",
    ]  # fmt: skip
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    server = Server(port=port, origin=origin, log_path=log_path)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while True:
                if process.poll() is not None:
                    pytest.fail(f"gunicorn exited ({process.returncode}):\n{server.log_tail()}")
                with contextlib.suppress(OSError):
                    if _request(port, "GET", "/api/auth/ok").status == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not answer within 30 s:\n{server.log_tail()}")
                time.sleep(0.2)
            yield server
        finally:
            _stop(process)
    assert "Traceback" not in server.log_tail(200_000), server.log_tail()


def _fire(server: Server, bodies: list[dict[str, Any]]) -> list[Reply | BaseException]:
    """POST every body to /sign-up/email at once: one thread each, released by a barrier."""
    barrier = threading.Barrier(len(bodies), timeout=30)
    results: list[Reply | BaseException] = [RuntimeError("no reply")] * len(bodies)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = _request(
                server.port,
                "POST",
                "/api/auth/sign-up/email",
                bodies[index],
                {"Origin": server.origin},
            )
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT + 30)
    assert not any(thread.is_alive() for thread in threads), "a request thread hung"
    return results


def _users_without_credential_account(url: str) -> int:
    rows = _query(
        url,
        'SELECT count(*) FROM "user" u WHERE NOT EXISTS (SELECT 1 FROM account a'
        ' WHERE a."userId" = u.id AND a."providerId" = \'credential\')',
    )
    return int(rows[0][0])


def test_concurrent_sign_ups_of_one_email_create_exactly_one_user(
    gunicorn_server: Server, pg_database: str
) -> None:
    body = {"name": "Race", "email": "race@example.com", "password": "correct-horse-1"}
    results = _fire(gunicorn_server, [body] * CONCURRENT)

    errors = [r for r in results if not isinstance(r, Reply)]
    assert errors == [], errors
    replies = [r for r in results if isinstance(r, Reply)]
    statuses = sorted(r.status for r in replies)
    assert [s for s in statuses if s >= 500] == [], (statuses, gunicorn_server.log_tail())
    assert statuses.count(200) == 1, statuses
    assert statuses.count(422) == CONCURRENT - 1, statuses
    for reply in replies:
        if reply.status == 422:
            _assert_auth_error(reply, 422, "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL")
            assert "set-cookie" not in reply.headers, reply.headers  # no session for a loser
    winner = next(r for r in replies if r.status == 200).json()

    users = _query(pg_database, 'SELECT id FROM "user" WHERE email = %s', "race@example.com")
    assert users == [(winner["user"]["id"],)]
    accounts = _query(
        pg_database,
        'SELECT count(*) FROM account WHERE "userId" = %s AND "providerId" = %s',
        users[0][0],
        "credential",
    )
    assert accounts == [(1,)]
    assert _users_without_credential_account(pg_database) == 0


def test_concurrent_sign_ups_of_different_emails_all_succeed(
    gunicorn_server: Server, pg_database: str
) -> None:
    bodies = [
        {"name": f"User {i}", "email": f"user{i}@example.com", "password": "correct-horse-1"}
        for i in range(CONCURRENT)
    ]
    results = _fire(gunicorn_server, bodies)

    statuses = [r.status if isinstance(r, Reply) else repr(r) for r in results]
    assert statuses == [200] * CONCURRENT, (statuses, gunicorn_server.log_tail())
    rows = _query(
        pg_database,
        'SELECT u.email, count(a.id) FROM "user" u LEFT JOIN account a ON a."userId" = u.id'
        " AND a.\"providerId\" = 'credential' WHERE u.email LIKE 'user%%@example.com'"
        " GROUP BY u.email",
    )
    assert dict(rows) == {body["email"]: 1 for body in bodies}
    assert _users_without_credential_account(pg_database) == 0


# --- 2. PostgreSQL stopped and restarted under load --------------------------------------------


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster of the test's own, on a free loopback port."""

    root: Path
    port: int
    runner: list[str]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, timeout: float = 60.0) -> None:
        command = [*self.runner, str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, (command, result.stdout, result.stderr, self.log_tail())

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1"
            f" -c unix_socket_directories={self.root} -c fsync=off"
        )
        self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.root / "log"), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-w", "-t", "30", "-m", mode)

    def log_tail(self, limit: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "log").read_text(errors="replace")[-limit:]
        return "<no log>"


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[Cluster]:
    """``initdb`` + ``pg_ctl start`` in a temp dir (as the ``postgres`` user when run as root)."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            _missing(f"PostgreSQL server binaries not found in {PG_BIN} (set FBA_TEST_PG_BIN)")
    runner: list[str] = []
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root, and there is no 'postgres' user to run initdb as")
        runuser = shutil.which("runuser")
        if runuser is None:
            _missing("running as root, and runuser is not available to run initdb as postgres")
        runner = [runuser, "-u", "postgres", "--"]
        owner = (entry.pw_uid, entry.pw_gid)
    root = Path(tempfile.mkdtemp(prefix="fba-pg-"))
    cluster = Cluster(root=root, port=_free_port(), runner=runner)
    started = False
    try:
        if owner is not None:
            os.chown(root, *owner)
        initdb = [
            *runner, str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres",
            "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync",
        ]  # fmt: skip
        result = subprocess.run(
            initdb,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (result.stdout, result.stderr)
        cluster.start()
        started = True
        yield cluster
    finally:
        if started:
            with contextlib.suppress(Exception):
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Call:
    sent: float
    done: float
    kind: str
    status: int
    headers: dict[str, str]
    body: bytes
    email: str | None = None


@dataclass
class Traffic:
    """Sign-ups (distinct emails), get-session and a ``@login_required`` view, in a loop."""

    app: Flask
    calls: list[Call] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    max_rounds: int = 3000
    max_seconds: float = 60.0

    def run(self) -> None:
        client = self.app.test_client()
        deadline = time.monotonic() + self.max_seconds
        try:
            for n in range(self.max_rounds):
                if self.stop.is_set() or time.monotonic() > deadline:
                    break
                email = f"load{n}@example.com"
                body = {"name": "Load", "email": email, "password": "correct-horse-1"}
                self._call(client, "sign-up", "POST", "/api/auth/sign-up/email", body, email)
                self._call(client, "get-session", "GET", "/api/auth/get-session")
                self._call(client, "me", "GET", "/api/me")
                time.sleep(0.005)
        except BaseException as exc:
            self.errors.append(exc)

    def _call(
        self,
        client: Any,
        kind: str,
        method: str,
        path: str,
        body: Any = None,
        email: str | None = None,
    ) -> None:
        sent = time.monotonic()
        response = client.open(
            path, method=method, json=body, headers={"Origin": "http://localhost"}
        )
        call = Call(
            sent, time.monotonic(), kind, response.status_code, dict(response.headers),
            response.get_data(), email,
        )  # fmt: skip
        self.calls.append(call)

    def first_success_after(self, moment: float) -> Call | None:
        return next((c for c in self.calls if c.sent >= moment and c.status == 200), None)


def _wait_for(predicate: Any, timeout: float, what: str, traffic: Traffic | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if traffic is not None and traffic.errors:
            raise AssertionError(f"the traffic thread failed waiting for {what}") from (
                traffic.errors[0]
            )
        if time.monotonic() > deadline:
            calls = traffic.calls if traffic else []
            recent = [(c.kind, c.status, c.body[:120]) for c in calls[-6:]]
            pytest.fail(f"timed out after {timeout} s waiting for {what}; last calls: {recent}")
        time.sleep(0.02)


def _assert_unavailable(call: Call) -> None:
    assert call.status == 503, (call.kind, call.status, call.body[:500])
    assert call.headers.get("Content-Type", "").startswith("application/json"), call.headers
    assert call.headers.get("Retry-After") == "1", call.headers
    data = json.loads(call.body)
    assert isinstance(data.get("message"), str) and data["code"] == "SERVICE_UNAVAILABLE", data


@pytest.fixture
def cluster_app(pg_cluster: Cluster) -> Iterator[Flask]:
    app = make_app(pg_cluster.url)
    # Production error handling for the app's own views: an uncaught error is a 500 page there.
    app.config["TESTING"] = False
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


def test_postgres_restart_under_load(pg_cluster: Cluster, cluster_app: Flask) -> None:
    traffic = Traffic(cluster_app)
    worker = threading.Thread(target=traffic.run, name="traffic")
    worker.start()
    try:
        _wait_for(
            lambda: sum(c.status == 200 for c in traffic.calls if c.kind == "sign-up") >= 5,
            20,
            "the first sign-ups",
            traffic,
        )
        pg_cluster.stop("fast")
        down = time.monotonic()
        time.sleep(1.5)
        outage_end = time.monotonic()
        pg_cluster.start()
        up = time.monotonic()
        _wait_for(
            lambda: traffic.first_success_after(up) is not None, 10, "a 200 after restart", traffic
        )
        time.sleep(0.3)
    finally:
        traffic.stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert traffic.errors == []

    calls = traffic.calls
    # Never a 500, a traceback or an HTML page; the only errors are 503 JSON.
    for call in calls:
        if call.status != 200:
            _assert_unavailable(call)
    during = [c for c in calls if c.sent >= down and c.done <= outage_end]
    assert {c.kind for c in during} == {"sign-up", "get-session", "me"}, during[:3]
    for call in during:
        _assert_unavailable(call)

    first = traffic.first_success_after(up)
    assert first is not None
    assert first.done - up <= 2.0, f"first 200 came {first.done - up:.2f} s after the restart"
    after = [c for c in calls if c.sent >= first.done]
    assert after and all(c.status == 200 for c in after), [c.status for c in after]

    # No committed user lost: every sign-up that answered 200 has its user and account.
    confirmed = {c.email for c in calls if c.kind == "sign-up" and c.status == 200}
    rows = _query(
        pg_cluster.url,
        'SELECT u.email FROM "user" u JOIN account a ON a."userId" = u.id'
        " AND a.\"providerId\" = 'credential'",
    )
    stored = {row[0] for row in rows}
    assert confirmed and confirmed <= stored, sorted(confirmed - stored)


def test_first_request_after_idle_restart_succeeds(pg_cluster: Cluster, cluster_app: Flask) -> None:
    """Pooled connections die with the server; ``pool_pre_ping`` replaces them unseen."""
    client = cluster_app.test_client()
    origin = {"Origin": "http://localhost"}
    body = {"name": "Idle", "email": "idle@example.com", "password": "correct-horse-1"}
    assert client.post("/api/auth/sign-up/email", json=body, headers=origin).status_code == 200
    assert client.get("/api/me").status_code == 200  # the pool now holds a connection
    pg_cluster.stop("fast")
    pg_cluster.start()
    response = client.get("/api/auth/get-session")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["user"]["email"] == "idle@example.com"
    assert client.get("/api/me").status_code == 200


def test_own_db_pings_pooled_connections_unless_the_app_says_otherwise(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ping.sqlite'}"
    default = make_app(url, create_tables=False)
    no_ping = {"pool_pre_ping": False}
    explicit = make_app(url, create_tables=False, SQLALCHEMY_ENGINE_OPTIONS=no_ping)
    for app, expected in ((default, True), (explicit, False)):
        with app.app_context():
            engine = app.extensions["better_auth"].db.engine
            assert engine.pool._pre_ping is expected
            engine.dispose()


def test_connection_lost_after_the_last_query_keeps_the_answer(
    pg_cluster: Cluster, cluster_app: Flask
) -> None:
    """The server drops the connection between a view's last query and the end of the request.

    The answer is made; only the closing rollback fails. It must not turn into a 500 (or, in
    the test client, an exception), and the next request gets a fresh connection.
    """
    from sqlalchemy import text

    from flask_better_auth import login_required

    db = cluster_app.extensions["better_auth"].db

    @cluster_app.get("/api/dropped")
    @login_required
    def dropped() -> Any:
        pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert _query(pg_cluster.url, "SELECT pg_terminate_backend(%s)", pid) == [(True,)]
        return {"ok": True}

    client = cluster_app.test_client()
    body = {"name": "Drop", "email": "drop@example.com", "password": "correct-horse-1"}
    assert (
        client.post(
            "/api/auth/sign-up/email", json=body, headers={"Origin": "http://localhost"}
        ).status_code
        == 200
    )
    response = client.get("/api/dropped")
    assert (response.status_code, response.get_json()) == (200, {"ok": True})
    assert client.get("/api/me").status_code == 200

"""Benchmarks of flask-better-auth (gunicorn, 2 workers), optionally beside the real Better Auth.

    python bench/run.py [--duration 15] [--peer] [--quick] [--db postgres|sqlite]

Starts ``bench/app.py`` under gunicorn (2 workers) on a free 127.0.0.1 port against a database
it creates and drops itself, seeds users and sessions, drives each scenario with wrk (or the
built-in Python load generator, ``bench/loadgen.py``, when wrk is missing) for ``--duration``
seconds and prints a table: scenario, req/s, p50 ms, p99 ms, target, ratio, met?. With
``--peer`` it also starts the real Better Auth server (``shared/peer/server.mjs``, Node) and runs
the same get-session and sign-in loads against it. Everything binds to 127.0.0.1 and every load
run is bounded in time. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"
PASSWORD = "bench-password-123"
LOAD_UA = "bench-load"  # the User-Agent of the sessions made by load, deleted before the 1k run
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PEER_CACHE = Path.home() / ".cache" / "flask-better-auth-bench" / "peer"
PEER_SRC = ROOT.parent / "shared" / "peer"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# HTTP helpers
# ---------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def cookies(self) -> str:
        """A ``Cookie`` header made of the non-empty cookies the response set."""
        pairs = []
        for value in self.headers.get_all("Set-Cookie") or []:
            pair = value.split(";", 1)[0].strip()
            name, _, content = pair.partition("=")
            if content and "max-age=0" not in value.lower():
                pairs.append(f"{name}={content}")
        return "; ".join(pairs)


def call(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = 30,
) -> Reply:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        all_headers = dict(headers or {})
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], what: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before answering")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if call(port, "GET", path, timeout=2).status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer on port {port} within {limit:.0f} s")


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop a process this script started (in its own session) and its children."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


class Database:
    """A throw-away database: created at start, dropped (or deleted) at the end."""

    kind = ""
    url = ""
    where = ""

    def create(self) -> None: ...
    def drop(self) -> None: ...
    def version(self) -> str: ...

    def engine(self) -> Any:
        from sqlalchemy import create_engine

        return create_engine(self.url)

    def execute(self, *statements: str, **params: Any) -> None:
        from sqlalchemy import text

        engine = self.engine()
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(text(statement), params)
        finally:
            engine.dispose()

    def scalar(self, statement: str) -> Any:
        from sqlalchemy import text

        engine = self.engine()
        try:
            with engine.connect() as conn:
                return conn.execute(text(statement)).scalar()
        finally:
            engine.dispose()

    def session_rows(self) -> int:
        return int(self.scalar("SELECT count(*) FROM session"))

    def filler_users(self) -> None:
        raise NotImplementedError

    def fill_sessions(self, start: int, stop: int) -> None:
        raise NotImplementedError

    def after_bulk_insert(self) -> None:
        pass

    after_bulk_text = ""


class Postgres(Database):
    kind = "postgres"
    where = "127.0.0.1:5432"

    def __init__(self) -> None:
        self.name = f"fba_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"
        self.created = False

    def _admin(self, sql: str) -> Any:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=5) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchone() if cursor.description else None

    def create(self) -> None:
        self.created = True
        self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False

    def version(self) -> str:
        row = self._admin("SHOW server_version")
        return f"PostgreSQL {row[0]}" if row else "PostgreSQL ?"

    def filler_users(self) -> None:
        self.execute(
            'INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")'
            " SELECT 'bench-u-' || g, 'Filler', 'filler-' || g || '@bench.test', false,"
            " now(), now() FROM generate_series(1, 1000) g"
        )

    def fill_sessions(self, start: int, stop: int) -> None:
        # One statement, no API: md5() gives 32-character tokens in random order, like real ones.
        self.execute(
            'INSERT INTO session (id, "expiresAt", token, "createdAt", "updatedAt",'
            ' "ipAddress", "userAgent", "userId")'
            " SELECT 'bench-s-' || g, now() + interval '7 days', md5('bench-token-' || g),"
            " now(), now(), '127.0.0.1', 'filler', 'bench-u-' || (g % 1000 + 1)"
            " FROM generate_series(CAST(:start AS integer), CAST(:stop AS integer)) g",
            start=start,
            stop=stop,
        )

    after_bulk_text = "VACUUM ANALYZE + CHECKPOINT"

    def after_bulk_insert(self) -> None:
        # Do now what autovacuum and the checkpointer would otherwise do during the measurement.
        import psycopg

        dsn = PG_DSN.rsplit("/", 1)[0] + "/" + self.name
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE session")
            conn.execute("CHECKPOINT")


class SQLite(Database):
    kind = "sqlite"
    where = "a temporary file, WAL"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fba-bench-"))
        self.url = f"sqlite:///{self.dir / 'bench.sqlite'}"

    def drop(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def version(self) -> str:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"

    def create(self) -> None:
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.dir / "bench.sqlite")) as conn:
            conn.execute("PRAGMA journal_mode=WAL")

    _NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

    def filler_users(self) -> None:
        self.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000)"
            ' INSERT INTO "user" (id, name, email, "emailVerified", "createdAt", "updatedAt")'
            f" SELECT 'bench-u-' || x, 'Filler', 'filler-' || x || '@bench.test', 0,"
            f" {self._NOW}, {self._NOW} FROM c"
        )

    def fill_sessions(self, start: int, stop: int) -> None:
        expires = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+7 days')"
        self.execute(
            "WITH RECURSIVE c(x) AS (SELECT :start UNION ALL SELECT x + 1 FROM c WHERE x < :stop)"
            ' INSERT INTO session (id, "expiresAt", token, "createdAt", "updatedAt",'
            ' "ipAddress", "userAgent", "userId")'
            f" SELECT 'bench-s-' || x, {expires}, lower(hex(randomblob(16))), {self._NOW},"
            f" {self._NOW}, '127.0.0.1', 'filler', 'bench-u-' || (x % 1000 + 1) FROM c",
            start=start,
            stop=stop,
        )

    after_bulk_text = "ANALYZE"

    def after_bulk_insert(self) -> None:
        self.execute("ANALYZE")


def create_tables(db: Database) -> None:
    os.environ["BENCH_DATABASE_URL"] = db.url
    spec = importlib.util.spec_from_file_location("bench_app", HERE / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app = module.create_app()
    with app.app_context():
        from flask_better_auth.state import state

        state().extension.create_all()
        state().db.engine.dispose()


def fill_to(db: Database, total: int) -> None:
    """Add filler sessions until the session table holds ``total`` rows."""
    have = db.session_rows()
    if have >= total:
        return
    start = int(db.scalar("SELECT count(*) FROM session WHERE id LIKE 'bench-s-%'")) + 1
    db.fill_sessions(start, start + (total - have) - 1)
    db.after_bulk_insert()


# ---------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------


class Gunicorn:
    """``bench/app.py`` under gunicorn, 2 workers, on a free loopback port."""

    def __init__(self, db: Database, args: argparse.Namespace, logdir: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.env = {
            **os.environ,
            "BENCH_DATABASE_URL": db.url,
            "BENCH_BASE_URL": self.base,
            "BENCH_ENGINE_OPTIONS": args.engine_options or "",
            **env,
        }
        self.args = args
        self.log = logdir / f"gunicorn-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--worker-class",
            self.args.worker_class,
            "--bind",
            f"{HOST}:{self.port}",
            "--chdir",
            str(HERE),
            "--log-level",
            "warning",
            "--worker-tmp-dir",
            "/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir(),
        ]
        if self.args.worker_class == "gthread":
            command += ["--threads", str(self.args.threads)]
        command.append("app:create_app()")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_http(self.port, "/bench/health", self.proc, f"gunicorn (log: {self.log})", 30)
        # Both workers import and connect before the first measured request.
        for _ in range(8):
            call(self.port, "GET", "/bench/health")
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)


class Peer:
    """The real Better Auth server (``server.mjs``, one Node process, SQLite)."""

    def __init__(self, peer_dir: Path, logdir: Path) -> None:
        self.dir = peer_dir
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.logdir = logdir
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Peer:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "DB_FILE": str(self.logdir / "peer.sqlite"),
            "MAILBOX_FILE": str(self.logdir / "peer-mailbox.jsonl"),
            "FRESH_DB": "1",
            "QUIET": "1",
        }
        env.pop("RATE_LIMIT", None)  # off: the same as our app
        with open(self.logdir / "peer.log", "ab") as out:
            self.proc = subprocess.Popen(
                ["node", "server.mjs"],
                cwd=self.dir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_http(self.port, "/", self.proc, f"peer (log: {self.logdir / 'peer.log'})", 60)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)


def prepare_peer(args: argparse.Namespace) -> Path:
    """A directory with ``server.mjs`` and its ``node_modules`` (``npm install`` the first time)."""
    target = Path(args.peer_dir).expanduser()
    source = Path(args.peer_src).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        for name in ("server.mjs", "package.json"):
            if (source / name).exists():
                shutil.copy2(source / name, target / name)
    if not (target / "server.mjs").exists():
        raise RuntimeError(f"no server.mjs in {target} nor in --peer-src {source}")
    if not (target / "node_modules" / "better-auth").is_dir():
        log(f"npm install in {target} (the first time only; building better-sqlite3 takes ~3 min)")
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund"], cwd=target, check=True, timeout=900
        )
    return target


def start_redis(logdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    server = shutil.which("redis-server")
    if server is None:
        return None
    port = free_port()
    with open(logdir / "redis.log", "ab") as out:
        proc = subprocess.Popen(
            [server, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return proc, f"redis://{HOST}:{port}/0"
        time.sleep(0.1)
    stop_process(proc)
    return None


# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------


@dataclass
class Load:
    """One load: a request (or a sign-up per request) sent back to back for a while."""

    port: int
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    signup_run: str | None = None  # every request a sign-up with a unique email
    background: Load | None = None  # runs meanwhile (sign-ups), on its own connections
    connections: int | None = None  # instead of --connections


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    rps_min: float = 0.0
    rps_max: float = 0.0


def combine(rounds: list[Result]) -> Result:
    """The median of the rounds' req/s, p50 and p99; the requests and errors they add up to."""
    return Result(
        rps=statistics.median(r.rps for r in rounds),
        p50_ms=statistics.median(r.p50_ms for r in rounds),
        p99_ms=statistics.median(r.p99_ms for r in rounds),
        requests=sum(r.requests for r in rounds),
        errors=sum(r.errors for r in rounds),
        rps_min=min(r.rps for r in rounds),
        rps_max=max(r.rps for r in rounds),
    )


def _lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%.1f,"p99_us":%.1f,"mean_us":%.1f,'
    .. '"status_errors":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
    .. '"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def wrk_script(load: Load, unique: str) -> str:
    lines = [f"wrk.method = {_lua_string(load.method)}", f"wrk.path = {_lua_string(load.path)}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in load.headers.items()]
    if load.body is not None:
        lines.append(f"wrk.body = {_lua_string(load.body)}")
    if load.signup_run:
        lines.append(
            f"""
local counter = 0
local threads = 0
tid = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
request = function()
  counter = counter + 1
  local email = string.format("su-{unique}-%d-%d@bench.test", tid, counter)
  local body = '{{"name":"Bench","email":"' .. email .. '","password":"{PASSWORD}"}}'
  return wrk.format(nil, nil, nil, body)
end
"""
        )
    return "\n".join(lines) + "\n" + DONE_LUA


def run_load(
    load: Load, duration: float, connections: int, tool: str, workdir: Path
) -> subprocess.Popen[str]:
    """Start one bounded load run; :func:`collect` reads its result."""
    name = f"load-{uuid.uuid4().hex[:8]}"
    unique = f"{load.signup_run}-{name}"  # sign-up emails never repeat across runs
    if tool == "wrk":
        script = workdir / f"{name}.lua"
        script.write_text(wrk_script(load, unique), encoding="utf-8")
        command = [
            "wrk",
            "--threads",
            "1",
            "--connections",
            str(connections),
            "--duration",
            f"{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "--latency",
            "--script",
            str(script),
            f"http://{HOST}:{load.port}{load.path}",
        ]
    else:
        spec = {
            "host": HOST,
            "port": load.port,
            "duration": duration,
            "connections": connections,
            "method": load.method,
            "path": load.path,
            "headers": load.headers,
            "body": load.body,
            "signup": {"run": unique, "password": PASSWORD} if load.signup_run else None,
        }
        spec_file = workdir / f"{name}.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        command = [sys.executable, str(HERE / "loadgen.py"), str(spec_file)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def collect(proc: subprocess.Popen[str], duration: float) -> Result:
    try:
        output, _ = proc.communicate(timeout=duration + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise RuntimeError(f"load generator overran its time limit:\n{output}") from None
    match = re.search(r"^BENCH_JSON (\{.*\})$", output, re.MULTILINE)
    if not match:
        raise RuntimeError(f"no result from the load generator:\n{output}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    errors = sum(
        data[k]
        for k in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return Result(
        rps=data["requests"] / seconds if seconds else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=int(data["requests"]),
        errors=int(errors),
    )


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    result: Result | None = None
    target: str = ""
    ratio: float | None = None
    met: bool | None = None
    note: str = ""


@dataclass
class Bench:
    args: argparse.Namespace
    tool: str
    workdir: Path
    results: dict[str, Result] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)
    idle_deadline: float | None = None  # monotonic; None: never wait
    foreign: list[float] = field(default_factory=list)  # per kept round, in CPUs

    @property
    def round_seconds(self) -> int:
        return max(1, round(self.args.duration / self.args.rounds))

    def pause_while_busy(self) -> None:
        """With ``--wait-idle``: before each round, wait while other pytest/tox runs are on
        (from one budget of ``--wait-idle`` minutes for the whole run, the first wait
        included)."""
        if self.idle_deadline is None:
            return
        announced = False
        while other_jobs() and time.monotonic() < self.idle_deadline:
            if not announced:
                log("pytest/tox is running: pausing until it ends")
                announced = True
            time.sleep(5)

    def _run(self, load: Load, seconds: float) -> tuple[Result, Result | None]:
        connections = load.connections or self.args.connections
        if load.background is None:
            proc = run_load(load, seconds, connections, self.tool, self.workdir)
            return collect(proc, seconds), None
        lead = 1.0
        background = run_load(
            load.background,
            seconds + 2 * lead,
            self.args.signup_connections,
            self.tool,
            self.workdir,
        )
        time.sleep(lead)
        result = collect(run_load(load, seconds, connections, self.tool, self.workdir), seconds)
        return result, collect(background, seconds + 2 * lead)

    def measure(self, *entries: tuple[str, Load]) -> None:
        """Measure loads in alternating rounds (A B A B …), so slow drifts of the machine hit
        them alike; each key gets the median of its rounds.

        The rest of the machine is watched during every round (:class:`JobWatch`); with
        ``--wait-idle`` a disturbed round is measured again (up to 3 times, within the budget),
        and a disturbed round kept anyway marks the run "measured while other jobs were
        running".
        """
        for key, load in entries:
            if self.args.warmup > 0:
                log(f"{key}: warm-up {self.args.warmup:g} s")
                self._run(load, self.args.warmup)
        rounds: dict[str, list[Result]] = {}
        seconds = self.round_seconds
        for index in range(self.args.rounds):
            for attempt in range(4):
                self.pause_while_busy()
                with JobWatch() as watch:
                    measured = [(key, *self._run(load, seconds)) for key, load in entries]
                retry = (
                    watch.disturbed
                    and attempt < 3
                    and self.idle_deadline is not None
                    and time.monotonic() < self.idle_deadline
                )
                if not retry:
                    break
                log(
                    f"round {index + 1}: other work ran meanwhile ({watch.foreign:.2f} CPUs"
                    f"{', pytest/tox' if watch.seen else ''}), measuring it again"
                )
            self.busy.update(watch.seen)
            self.foreign.append(watch.foreign)
            if watch.foreign > JobWatch.LIMIT:
                self.busy.add(f"other processes used {watch.foreign:.2f} CPUs during a round")
            for key, result, background in measured:
                rounds.setdefault(key, []).append(result)
                text = f"{key} round {index + 1}/{self.args.rounds}: {result.rps:,.1f} req/s"
                text += f", p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
                if background is not None:
                    rounds.setdefault(key + ":signups", []).append(background)
                    text += f"; meanwhile {background.rps:,.1f} sign-ups/s"
                text += f" [foreign CPU {watch.foreign:.2f}]"
                if watch.disturbed:
                    text += " (other jobs running)"
                log(text)
        for key, results in rounds.items():
            self.results[key] = combine(results)


def _busy_ticks() -> int:
    """CPU ticks the whole machine has spent busy (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]


def _our_ticks() -> int:
    """CPU ticks spent by this script, its children (also the finished, reaped ones: wrk),
    their descendants (gunicorn workers, node, redis) and PostgreSQL's processes except the
    backends of other databases."""
    me = os.getpid()
    stats: dict[int, tuple[int, int]] = {}  # pid -> (ppid, ticks)
    postgres: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                raw = f.read()
            fields = raw[raw.rindex(")") + 2 :].split()
            pid = int(entry)
            ticks = int(fields[11]) + int(fields[12])
            if pid == me:
                ticks += int(fields[13]) + int(fields[14])  # reaped children
            stats[pid] = (int(fields[1]), ticks)
            if "(postgres)" in raw[: raw.rindex(")") + 1]:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    postgres[pid] = f.read().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    ours = 0
    for pid, (_, ticks) in stats.items():
        if pid in postgres:
            title = postgres[pid]
            # Backends are titled "postgres: 15/main: <user> <db> <host> <state>".
            backend = " postgres " in title or "(" in title
            if not backend or "fba_bench_" in title:
                ours += ticks
            continue
        ancestor, hops = pid, 0
        while ancestor > 1 and hops < 64:
            if ancestor == me:
                ours += ticks
                break
            ancestor = stats.get(ancestor, (0, 0))[0]
            hops += 1
    return ours


class JobWatch:
    """While the ``with`` block runs: other pytest/tox runs (polled every second) and the CPU
    the rest of the machine used (``foreign``, in CPUs: busy ticks minus ours)."""

    #: Foreign CPU (in CPUs, over the block) above which a round counts as disturbed.
    LIMIT = 0.15

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.foreign = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while True:
            self.seen.update(other_jobs())
            if self._stop.wait(1.0):
                return

    @property
    def disturbed(self) -> bool:
        return bool(self.seen) or self.foreign > self.LIMIT

    def __enter__(self) -> JobWatch:
        self._start = (time.monotonic(), _busy_ticks(), _our_ticks())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seen.update(other_jobs())
        started, busy, ours = self._start
        elapsed = time.monotonic() - started
        hz = os.sysconf("SC_CLK_TCK")
        foreign = (_busy_ticks() - busy) - (_our_ticks() - ours)
        self.foreign = max(0.0, foreign / hz / elapsed) if elapsed > 0 else 0.0


def other_jobs() -> list[str]:
    """Other test runs on the machine (``pgrep -f 'pytest|tox'``), as "pid command" strings."""
    try:
        out = subprocess.run(
            ["pgrep", "-af", "pytest|tox"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    mine = {os.getpid(), os.getppid()}
    return [
        line
        for line in out.splitlines()
        if line.strip() and int(line.split()[0]) not in mine and "pgrep" not in line
    ]


def wait_until_idle(minutes: float) -> bool:
    """Poll every 30 s until no pytest (or tox) runs; ``False`` when ``minutes`` pass first."""
    deadline = time.monotonic() + minutes * 60
    while True:
        jobs = other_jobs()
        if not jobs:
            return True
        if time.monotonic() >= deadline:
            return False
        log(f"waiting for {len(jobs)} pytest process(es) to finish (up to {minutes:g} min)")
        time.sleep(min(30, max(1, deadline - time.monotonic())))


def expect(reply: Reply, what: str, check: Callable[[Any], bool] | None = None) -> Any:
    if reply.status != 200:
        raise RuntimeError(f"{what}: HTTP {reply.status} {reply.body[:300]!r}")
    data = reply.json() if reply.body else None
    if check is not None and not check(data):
        raise RuntimeError(f"{what}: unexpected answer {reply.body[:300]!r}")
    return data


def sign_up(port: int, base: str, api: str, email: str) -> Reply:
    reply = call(
        port,
        "POST",
        f"{api}/sign-up/email",
        headers={"Origin": base, "User-Agent": "bench-seed"},
        body={"name": "Bench", "email": email, "password": PASSWORD},
    )
    expect(reply, f"sign-up {email}", lambda d: bool(d and d.get("token")))
    return reply


def sign_in(port: int, base: str, api: str, email: str, ua: str = "bench-seed") -> Reply:
    reply = call(
        port,
        "POST",
        f"{api}/sign-in/email",
        headers={"Origin": base, "User-Agent": ua},
        body={"email": email, "password": PASSWORD},
    )
    expect(reply, f"sign-in {email}", lambda d: bool(d and d.get("token")))
    return reply


def check_source(port: int, path: str, cookie: str, source: str | None, what: str) -> None:
    """One request first: it must succeed, and read the session where the scenario says."""
    reply = call(port, "GET", path, headers={"Cookie": cookie})
    if path.endswith("/get-session"):
        expect(reply, what, lambda d: bool(d and d.get("session", {}).get("token")))
    else:
        expect(reply, what)
    got = reply.headers.get("X-Bench-Session-Source")
    if source is not None and got != source:
        raise RuntimeError(f"{what}: the session came from {got!r}, not {source!r}")


def feature_keys() -> dict[str, bool]:
    from flask_better_auth.settings import DEFAULTS

    return {
        "cookie_cache": "BETTER_AUTH_COOKIE_CACHE_ENABLED" in DEFAULTS,
        "redis": "BETTER_AUTH_SECONDARY_STORAGE_URL" in DEFAULTS,
        "rate_limit": "BETTER_AUTH_RATE_LIMIT_ENABLED" in DEFAULTS,
    }


API = "/api/auth"
GET_SESSION = f"{API}/get-session"
#: Sign-in is scrypt-bound: 4 in flight keep both CPUs (and Node's 4 libuv threads) busy without
#: queueing every request behind a dozen others (same for both servers).
SIGNIN_CONNECTIONS = 4


def json_post_headers(base: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Origin": base, "User-Agent": LOAD_UA}


def sign_in_load(port: int, base: str, email: str) -> Load:
    body = json.dumps({"email": email, "password": PASSWORD})
    headers = json_post_headers(base)
    return Load(port, "POST", f"{API}/sign-in/email", headers, body, connections=SIGNIN_CONNECTIONS)


def run_all(bench: Bench, db: Database, peer_dir: Path | None, extra_dbs: list[Database]) -> None:
    """Every scenario; loads compared with each other are measured in alternating rounds."""
    args = bench.args
    features = feature_keys()
    run_id = uuid.uuid4().hex[:8]
    email = f"main-{run_id}@bench.test"

    with contextlib.ExitStack() as stack:
        main = stack.enter_context(Gunicorn(db, args, bench.workdir))
        sign_up(main.port, main.base, API, email)
        cookie = sign_in(main.port, main.base, API, email).cookies()
        db.filler_users()
        fill_to(db, 1000)
        bench.notes.append(f"session table at the start: {db.session_rows():,} rows")
        check_source(main.port, GET_SESSION, cookie, "database", "get-session")
        check_source(main.port, "/bench/protected", cookie, "database", "protected")
        check_source(main.port, "/bench/open", cookie, None, "unprotected")
        sign_in(main.port, main.base, API, email, ua=LOAD_UA)
        get_session = Load(main.port, "GET", GET_SESSION, {"Cookie": cookie})

        peer = None
        if peer_dir is not None:
            peer = stack.enter_context(Peer(peer_dir, bench.workdir))
            peer_email = f"peer-{run_id}@bench.test"
            peer_cookie = sign_up(peer.port, peer.base, API, peer_email).cookies()
            expect(
                call(peer.port, "GET", GET_SESSION, headers={"Cookie": peer_cookie}),
                "peer get-session",
                lambda d: bool(d and d.get("session")),
            )
            expect(call(peer.port, "GET", "/api/me", headers={"Cookie": peer_cookie}), "/api/me")
            sign_in(peer.port, peer.base, API, peer_email)
            peer_get_session = Load(peer.port, "GET", GET_SESSION, {"Cookie": peer_cookie})
            bench.measure(("gs_db", get_session), ("peer_gs", peer_get_session))
        else:
            bench.measure(("gs_db", get_session))

        bench.measure(
            ("prot_db", Load(main.port, "GET", "/bench/protected", {"Cookie": cookie})),
            ("open_db", Load(main.port, "GET", "/bench/open", {"Cookie": cookie})),
        )

        signin = ("signin", sign_in_load(main.port, main.base, email))
        if peer is not None:
            bench.measure(signin, ("peer_signin", sign_in_load(peer.port, peer.base, peer_email)))
            bench.measure(("peer_me", Load(peer.port, "GET", "/api/me", {"Cookie": peer_cookie})))
        else:
            bench.measure(signin)

        sign_up(main.port, main.base, API, f"probe-{run_id}@bench.test")
        signups = Load(
            main.port,
            "POST",
            f"{API}/sign-up/email",
            json_post_headers(main.base),
            signup_run=run_id,
        )
        during = Load(main.port, "GET", GET_SESSION, {"Cookie": cookie}, background=signups)
        bench.measure(("gs_idle", get_session), ("gs_signups", during))

        # Session lookup, ~1k rows vs 1M: two databases, two servers, alternating rounds.
        db.execute(
            'DELETE FROM session WHERE "userAgent" IN (:a, :b) AND token != :keep',
            a=LOAD_UA,
            b="bench-seed",
            keep=cookie_token(cookie),
        )
        fill_to(db, 1000)
        large_db: Database = Postgres() if db.kind == "postgres" else SQLite()
        extra_dbs.append(large_db)
        large_db.create()
        create_tables(large_db)
        large = stack.enter_context(Gunicorn(large_db, args, bench.workdir))
        sign_up(large.port, large.base, API, email)
        large_cookie = sign_in(large.port, large.base, API, email).cookies()
        large_db.filler_users()
        log(f"inserting filler sessions up to {args.rows:,} rows (INSERT … SELECT)")
        started = time.monotonic()
        fill_to(large_db, args.rows)
        bench.notes.append(
            f"lookup pair: {db.session_rows():,} vs {large_db.session_rows():,} session rows"
            f" (two databases); {args.rows:,} rows inserted in {time.monotonic() - started:.0f} s"
            f" (one INSERT … SELECT, then {large_db.after_bulk_text})"
        )
        check_source(large.port, GET_SESSION, large_cookie, "database", "get-session (large)")
        bench.measure(
            ("lookup_small", get_session),
            ("lookup_large", Load(large.port, "GET", GET_SESSION, {"Cookie": large_cookie})),
        )

    if features["cookie_cache"]:
        with Gunicorn(db, args, bench.workdir, BENCH_COOKIE_CACHE="1") as server:
            cookies = sign_in(server.port, server.base, API, email, ua=LOAD_UA).cookies()
            check_source(server.port, GET_SESSION, cookies, "cookie", "get-session (cache)")
            check_source(server.port, "/bench/protected", cookies, "cookie", "protected (cache)")
            headers = {"Cookie": cookies}
            bench.measure(("gs_cache", Load(server.port, "GET", GET_SESSION, headers)))
            bench.measure(
                ("prot_cache", Load(server.port, "GET", "/bench/protected", headers)),
                ("open_cache", Load(server.port, "GET", "/bench/open", headers)),
            )
    else:
        bench.notes.append("cookie cache: not available (no BETTER_AUTH_COOKIE_CACHE_ENABLED)")

    redis = start_redis(bench.workdir) if features["redis"] else None
    if redis is not None:
        proc, url = redis
        try:
            with Gunicorn(db, args, bench.workdir, BENCH_REDIS_URL=url) as server:
                cookie = sign_in(server.port, server.base, API, email, ua=LOAD_UA).cookies()
                check_source(server.port, GET_SESSION, cookie, "secondary", "get-session (Redis)")
                load = Load(server.port, "GET", GET_SESSION, {"Cookie": cookie})
                bench.measure(("gs_redis", load))
        finally:
            stop_process(proc)
    elif not features["redis"]:
        bench.notes.append("Redis: not available (no BETTER_AUTH_SECONDARY_STORAGE_URL)")
    else:
        bench.notes.append("Redis: not available (no redis-server on this machine)")


def cookie_token(cookie: str) -> str:
    """The session token inside a signed ``…session[-_]token=<token>.<sig>`` cookie."""
    from urllib.parse import unquote

    for pair in cookie.split(";"):
        name, _, value = pair.strip().partition("=")
        if name.endswith(("session-token", "session_token")):
            return unquote(value).rsplit(".", 1)[0]
    return ""


def build_rows(bench: Bench, db: Database, peer: bool) -> list[Row]:
    r = bench.results
    rows: list[Row] = []
    rows_label = (
        f"{bench.args.rows // 1000:,}k"
        if bench.args.rows < 1_000_000
        else (f"{bench.args.rows / 1_000_000:g}M")
    )

    def ratio_row(
        name: str, key: str, target: str, other: str | None, minimum: float, *, invert: bool = False
    ) -> Row:
        row = Row(name, r.get(key), target)
        if row.result is None:
            row.note = "not available"
            return row
        ref = r.get(other) if other else None
        if other and ref is None:
            row.note = "no peer run (--peer)" if other.startswith("peer") else "no reference"
            return row
        if ref is not None and ref.rps and row.result.rps:
            row.ratio = ref.rps / row.result.rps if invert else row.result.rps / ref.rps
            row.met = row.ratio <= minimum if invert else row.ratio >= minimum
        return row

    def info_row(name: str, key: str, note: str = "", other: str | None = None) -> Row:
        row = Row(name, r.get(key), note=note if key in r else "not available")
        ref = r.get(other) if other else None
        if row.result is not None and ref is not None and ref.rps:
            row.ratio = row.result.rps / ref.rps
            row.target = "(info)"
        return row

    rows.append(ratio_row("get-session, cookie, DB", "gs_db", ">= 2.50x Node", "peer_gs", 2.5))
    rows.append(
        info_row("get-session, cookie cache", "gs_cache", other="peer_gs" if peer else None)
    )
    rows.append(info_row("get-session, Redis", "gs_redis", other="peer_gs" if peer else None))
    rows.append(ratio_row("protected route, DB", "prot_db", ">= 0.60x open", "open_db", 0.60))
    rows.append(info_row("same route, no @login_required", "open_db"))
    rows.append(
        ratio_row(
            "protected route, cookie cache", "prot_cache", ">= 0.85x open", "open_cache", 0.85
        )
    )
    rows.append(info_row("same route, no @login_required (cc app)", "open_cache"))
    rows.append(ratio_row("POST /sign-in/email", "signin", ">= 1.00x Node", "peer_signin", 1.0))
    rows.append(
        ratio_row("get-session during sign-ups", "gs_signups", ">= 0.50x idle", "gs_idle", 0.5)
    )
    rows.append(info_row("  sign-ups meanwhile", "gs_signups:signups"))
    rows.append(info_row("get-session idle (its pair)", "gs_idle"))
    rows.append(info_row("get-session, 1k session rows", "lookup_small"))
    rows.append(
        ratio_row(
            f"get-session, {rows_label} session rows",
            "lookup_large",
            "<= 1.20x 1k time",
            "lookup_small",
            1.2,
            invert=True,
        )
    )
    if peer:
        rows.append(info_row("Node: get-session, cookie", "peer_gs"))
        rows.append(info_row("Node: /api/me (protected)", "peer_me"))
        rows.append(info_row("Node: POST /sign-in/email", "peer_signin"))
    for row in rows:
        if row.result is not None and row.result.errors:
            row.note = (row.note + f" {row.result.errors} errors").strip()
        if row.result is not None and not row.result.requests:
            row.note = (row.note + " no request completed").strip()
    return rows


def format_table(rows: list[Row]) -> str:
    header = ("scenario", "req/s", "range", "p50 ms", "p99 ms", "target", "ratio", "met?")
    lines = []
    for row in rows:
        res = row.result
        met = "" if row.met is None else ("yes" if row.met else "NO")
        if row.note:
            met = f"{met} ({row.note})".strip() if met else row.note
        lines.append(
            (
                row.name,
                f"{res.rps:,.1f}" if res else "-",
                f"{res.rps_min:,.0f}-{res.rps_max:,.0f}" if res else "",
                f"{res.p50_ms:.2f}" if res else "-",
                f"{res.p99_ms:.2f}" if res else "-",
                row.target,
                f"{row.ratio:.2f}x" if row.ratio is not None else "",
                met,
            )
        )
    widths = [max(len(str(x[i])) for x in [header, *lines]) for i in range(len(header))]
    align = ["<", ">", ">", ">", ">", "<", ">", "<"]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(line) for line in lines)])


def version_of(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def facts(args: argparse.Namespace, tool: str, db: Database, peer_dir: Path | None) -> list[str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    if tool == "wrk":
        version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        tool_text = " ".join(version.split()[:2])
    else:
        tool_text = "built-in Python load generator (bench/loadgen.py)"
    workers = f"gunicorn {version_of('gunicorn')}, 2 workers, {args.worker_class}"
    if args.worker_class == "gthread":
        workers += f" ({args.threads} threads each)"
    if args.engine_options:
        workers += f"; SQLALCHEMY_ENGINE_OPTIONS={args.engine_options}"
    lines = [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; host: {platform.node()}",
        f"machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
        f"server: {workers}; Python {platform.python_version()}, Flask {version_of('flask')},"
        f" SQLAlchemy {version_of('sqlalchemy')},"
        f" flask-better-auth {version_of('flask-better-auth')}",
        f"database: {db.version()}, {db.where} (created and dropped by this run)",
        f"load: {tool_text}, 1 thread, {args.connections} connections,"
        f" {args.rounds} x {max(1, round(args.duration / args.rounds))} s per scenario"
        f" (alternating rounds, median) after {args.warmup:g} s warm-up;"
        f" sign-in: {SIGNIN_CONNECTIONS} connections;"
        f" sign-ups in the background: {args.signup_connections} connections",
        "scrypt: N=16384 (Better Auth's) on sign-up and sign-in; rate limiting off",
    ]
    if peer_dir is not None:
        ba = "?"
        with contextlib.suppress(OSError, ValueError):
            package = peer_dir / "node_modules" / "better-auth" / "package.json"
            ba = json.loads(package.read_text())["version"]
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        lines.append(
            f"peer: Better Auth {ba} (shared/peer/server.mjs), Node {node}, 1 process,"
            " SQLite (better-sqlite3, WAL)"
        )
    lines.append(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=12, help="measured seconds per scenario (12)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternating rounds the duration is split into (3)"
    )
    parser.add_argument("--warmup", type=float, default=2, help="warm-up seconds, not measured")
    parser.add_argument("--peer", action="store_true", help="also run the real Better Auth (Node)")
    parser.add_argument(
        "--quick", action="store_true", help="3 s per scenario, 100k rows: a smoke run"
    )
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--engine-options",
        metavar="JSON",
        help="SQLALCHEMY_ENGINE_OPTIONS for the app, e.g. '{\"pool_pre_ping\": false}'",
    )
    parser.add_argument("--rows", type=int, default=None, help="the large session table (1M)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--signup-connections", type=int, default=2, help="background sign-ups")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker (4)")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="MINUTES",
        help="wait up to MINUTES in all for other pytest runs to end: first, then before"
        " each round (a budget for the whole run)",
    )
    parser.add_argument("--peer-dir", default=str(PEER_CACHE), help="server.mjs + node_modules")
    parser.add_argument("--peer-src", default=str(PEER_SRC), help="where server.mjs comes from")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = min(args.duration, 3)
        args.rounds = 1
        args.warmup = min(args.warmup, 0.5)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.engine_options:
        try:
            json.loads(args.engine_options)
        except ValueError:
            parser.error("--engine-options must be a JSON object")
    if args.rows is None:
        args.rows = 100_000 if args.quick else 1_000_000
    if args.rows < 2000:
        parser.error("--rows must be at least 2000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tool = args.load
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    elif tool == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk), or use --load python")
    idle = True
    idle_deadline = None
    if args.wait_idle > 0:
        idle_deadline = time.monotonic() + args.wait_idle * 60
        idle = wait_until_idle(args.wait_idle)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    peer_dir = prepare_peer(args) if args.peer else None
    workdir = Path(tempfile.mkdtemp(prefix="fba-bench-run-"))
    db: Database = Postgres() if args.db == "postgres" else SQLite()
    bench = Bench(args, tool, workdir, idle_deadline=idle_deadline)
    log(f"load generator: {tool}; database: {db.kind}; logs in {workdir}")
    started = time.monotonic()
    extra_dbs: list[Database] = []
    try:
        db.create()
        create_tables(db)
        run_all(bench, db, peer_dir, extra_dbs)
        lines = facts(args, tool, db, peer_dir)
    finally:
        for each in (db, *extra_dbs):
            with contextlib.suppress(Exception):
                each.drop()
    rows = build_rows(bench, db, peer_dir is not None)
    print()
    print("flask-better-auth benchmark")
    for line in lines:
        print(f"  {line}")
    for note in bench.notes:
        print(f"  {note}")
    print(f"  total run time: {time.monotonic() - started:.0f} s")
    if bench.foreign:
        print(
            "  CPU used by other processes during the kept rounds: median"
            f" {statistics.median(bench.foreign):.2f}, max {max(bench.foreign):.2f} CPUs"
        )
    if bench.busy or not idle:
        print("  MEASURED WHILE OTHER JOBS WERE RUNNING:")
        for job in sorted(bench.busy)[:5]:
            print(f"    {job[:150]}")
    print()
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "facts": lines,
                    "notes": bench.notes,
                    "busy": sorted(bench.busy),
                    "results": {k: vars(v) for k, v in bench.results.items()},
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Median ``/request-password-reset`` latency for a known address vs an unknown one.

Both must cost the same before the answer (the same statements, a reset token or a decoy of
the same shape, the mail delivered only after the response), so that timing the answer does
not tell whether an address has an account. ``tests/test_hardening_accounts.py`` proves the
equal work; this script measures the resulting latencies over loopback HTTP:

    python bench/reset_timing.py [--runs 100] [--database-url postgresql+psycopg://…]

It serves a fresh app (a temporary SQLite database unless ``--database-url`` names another,
rate limiting off, mail to a JSON Lines outbox) on 127.0.0.1 with Werkzeug's single-threaded
server in a child process (in a thread, the mail delivered after a response would compete for
the GIL with the client still reading it), signs one user up, then alternates the two kinds of
request in random order and prints both medians and their ratio (target: within 10 %).
"""

from __future__ import annotations

import argparse
import http.client
import logging
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import Flask
from signin_timing import post  # the same timed POST as the sign-in benchmark
from werkzeug.serving import make_server

from flask_better_auth import BetterAuth

SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
PASSWORD = "correct-horse-1"
MAX_RUNS = 5000


def create_app(database_url: str, outbox: Path, origin: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        BETTER_AUTH_SECRET=SECRET,
        BETTER_AUTH_BASE_URL=origin,
        BETTER_AUTH_COOKIE_SECURE=False,
        BETTER_AUTH_RATE_LIMIT_ENABLED=False,  # 3 requests per 60 s otherwise
        BETTER_AUTH_EMAIL_BACKEND="outbox",
        BETTER_AUTH_EMAIL_OUTBOX=str(outbox),
    )
    auth = BetterAuth(app)
    with app.app_context():
        auth.create_all()
    return app


def serve(server: Any, database_url: str, outbox: Path, origin: str) -> None:
    """The child process: build the app (its own database connections) and serve."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server.app = create_app(database_url, outbox, origin)
    server.serve_forever(poll_interval=0.1)


def wait_until_up(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/api/auth/ok")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="requests of each kind")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests of each kind")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop measuring after")
    parser.add_argument("--seed", type=int, default=0, help="seed of the request order")
    parser.add_argument("--database-url", help="an existing empty database (default: SQLite)")
    args = parser.parse_args(argv)
    runs = max(1, min(args.runs, MAX_RUNS))
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="fba-bench-") as tmp:
        database_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite'}"
        outbox = Path(tmp) / "outbox.jsonl"
        # Port 0: the OS picks a free port; the app learns its origin after binding.
        server = make_server("127.0.0.1", 0, Flask(__name__))
        port = server.server_port
        origin = f"http://127.0.0.1:{port}"
        child = multiprocessing.get_context("fork").Process(
            target=serve, args=(server, database_url, outbox, origin), daemon=True
        )
        child.start()
        server.server_close()  # the child's copy of the socket serves
        try:
            if not wait_until_up(port):
                print("the server did not start", file=sys.stderr)
                return 1
            status, _ = post(
                port,
                "/api/auth/sign-up/email",
                {"name": "Known", "email": "known@example.com", "password": PASSWORD},
                origin,
            )
            if status != 200:
                print(f"sign-up failed: {status}", file=sys.stderr)
                return 1
            kinds = {
                "unknown": {"email": "nobody@example.com", "redirectTo": "/reset"},
                "known": {"email": "known@example.com", "redirectTo": "/reset"},
            }
            times: dict[str, list[float]] = {kind: [] for kind in kinds}
            deadline = time.monotonic() + args.max_seconds
            for round_ in range(args.warmup + runs):
                if time.monotonic() > deadline:
                    print(f"stopped after {round_} rounds (--max-seconds)", file=sys.stderr)
                    break
                order = list(kinds)
                rng.shuffle(order)
                for kind in order:
                    status, seconds = post(
                        port, "/api/auth/request-password-reset", kinds[kind], origin
                    )
                    if status != 200:
                        print(f"{kind}: unexpected status {status}", file=sys.stderr)
                        return 1
                    if round_ >= args.warmup:
                        times[kind].append(seconds)
        finally:
            child.terminate()
            child.join(timeout=10)
        mails = len(outbox.read_text().splitlines()) if outbox.exists() else 0

    if not times["unknown"] or not times["known"]:
        print("no measurements", file=sys.stderr)
        return 1
    unknown = statistics.median(times["unknown"])
    known = statistics.median(times["known"])
    ratio = unknown / known
    print(
        f"runs: {len(times['unknown'])} of each (after {args.warmup} warm-up); mails sent: {mails}"
    )
    print(f"median unknown address: {unknown * 1000:8.2f} ms")
    print(f"median known address:   {known * 1000:8.2f} ms")
    print(
        f"ratio unknown/known: {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.10 else 'OUTSIDE'}"
        " the 10 % target)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

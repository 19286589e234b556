"""Median ``/sign-in/email`` latency for an unknown email vs a known one (wrong password).

Both must cost the same (one scrypt with Better Auth's parameters), so that timing the answer
does not tell whether an email has an account. ``tests/test_timing_work.py`` proves the equal
work; this script measures the resulting latencies over loopback HTTP:

    python bench/signin_timing.py [--runs 100]

It serves a fresh app (temporary SQLite database, the real scrypt cost, rate limiting off) on
127.0.0.1 with Werkzeug's single-threaded server, signs one user up, then alternates the two
kinds of request in random order and prints both medians and their ratio (target: within 10 %).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from flask_better_auth import BetterAuth

SECRET = "bench-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
PASSWORD = "correct-horse-1"
WRONG = "wrong-horse-111"  # same length as PASSWORD
MAX_RUNS = 5000


def create_app(database: Path, origin: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}",
        BETTER_AUTH_SECRET=SECRET,
        BETTER_AUTH_BASE_URL=origin,
        BETTER_AUTH_COOKIE_SECURE=False,
        BETTER_AUTH_RATE_LIMIT_ENABLED=False,  # sign-in is limited to 3 per 10 s otherwise
    )
    auth = BetterAuth(app)
    with app.app_context():
        auth.create_all()
    return app


def post(port: int, path: str, body: dict[str, Any], origin: str) -> tuple[int, float]:
    """POST JSON over a fresh loopback connection: (status, seconds until the body is read)."""
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "Origin": origin}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        start = time.perf_counter()
        conn.request("POST", path, body=payload, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="requests of each kind")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured requests of each kind")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop measuring after")
    parser.add_argument("--seed", type=int, default=0, help="seed of the request order")
    args = parser.parse_args(argv)
    runs = max(1, min(args.runs, MAX_RUNS))
    rng = random.Random(args.seed)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request

    with tempfile.TemporaryDirectory(prefix="fba-bench-") as tmp:
        # Port 0: the OS picks a free port; the app learns its origin after binding.
        server = make_server("127.0.0.1", 0, Flask(__name__))
        port = server.server_port
        origin = f"http://127.0.0.1:{port}"
        server.app = create_app(Path(tmp) / "bench.sqlite", origin)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
        thread.start()
        try:
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
                "unknown": {"email": "nobody@example.com", "password": PASSWORD},
                "known": {"email": "known@example.com", "password": WRONG},
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
                    status, seconds = post(port, "/api/auth/sign-in/email", kinds[kind], origin)
                    if status != 401:
                        print(f"{kind}: unexpected status {status}", file=sys.stderr)
                        return 1
                    if round_ >= args.warmup:
                        times[kind].append(seconds)
        finally:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()

    if not times["unknown"] or not times["known"]:
        print("no measurements", file=sys.stderr)
        return 1
    unknown = statistics.median(times["unknown"])
    known = statistics.median(times["known"])
    ratio = unknown / known
    print(f"runs: {len(times['unknown'])} of each (after {args.warmup} warm-up)")
    print(f"median unknown email:              {unknown * 1000:8.2f} ms")
    print(f"median known email, wrong password: {known * 1000:8.2f} ms")
    print(
        f"ratio unknown/known: {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.10 else 'OUTSIDE'}"
        " the 10 % target)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

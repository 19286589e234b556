"""A small closed-loop HTTP load generator: the fallback of ``bench/run.py`` when wrk is missing.

Each of ``--connections`` threads keeps one ``http.client`` keep-alive connection (reopened when
the server closes it, as gunicorn's sync workers do after every response) and sends requests
back to back until ``--duration`` seconds have passed. It prints one line, ``BENCH_JSON {…}``,
with the same fields the wrk Lua script of ``run.py`` prints. Loopback only.

    python bench/loadgen.py SPEC.json

SPEC: ``{"host", "port", "duration", "connections", "method", "path", "headers", "body",
"signup": null | {"run": "<id>", "password": "…"}}``; with ``signup`` every request's body is
a sign-up with a unique email.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from typing import Any


def _body(spec: dict[str, Any], worker: int, n: int) -> bytes | None:
    signup = spec.get("signup")
    if signup:
        email = f"su-{signup['run']}-p{worker}-{n}@bench.test"
        data = {"name": "Bench", "email": email, "password": signup["password"]}
        return json.dumps(data).encode()
    body = spec.get("body")
    return body.encode() if body is not None else None


def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loadgen: loopback only")
    deadline = time.monotonic() + float(spec["duration"])
    latencies: list[list[float]] = []
    counts = {"status_errors": 0, "connect_errors": 0, "read_errors": 0, "timeouts": 0}
    lock = threading.Lock()

    def worker(index: int) -> None:
        mine: list[float] = []
        errors = dict.fromkeys(counts, 0)
        conn: http.client.HTTPConnection | None = None
        n = 0
        while time.monotonic() < deadline:
            n += 1
            body = _body(spec, index, n)
            start = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                conn.request(spec["method"], spec["path"], body=body, headers=spec["headers"])
                response = conn.getresponse()
                response.read()
            except TimeoutError:
                errors["timeouts"] += 1
                conn = None
                continue
            except (ConnectionError, http.client.HTTPException, OSError):
                errors["read_errors" if conn is not None else "connect_errors"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            mine.append(time.perf_counter() - start)
            if response.status >= 400:
                errors["status_errors"] += 1
            if response.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            latencies.append(mine)
            for key, value in errors.items():
                counts[key] += value

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(spec["connections"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    samples = sorted(x for chunk in latencies for x in chunk)

    def pct(p: float) -> float:
        if not samples:
            return 0.0
        return samples[min(len(samples) - 1, int(len(samples) * p / 100))] * 1e6

    return {
        "requests": len(samples),
        "duration_us": elapsed * 1e6,
        "p50_us": pct(50),
        "p99_us": pct(99),
        "mean_us": (sum(samples) / len(samples) * 1e6) if samples else 0.0,
        "write_errors": 0,
        **counts,
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    print("BENCH_JSON " + json.dumps(run(spec)), flush=True)


if __name__ == "__main__":
    main()

"""End-to-end: the official Better Auth JS client (npm ``better-auth`` 1.7.x) vs our example app.

The example app (``examples/quickstart/app.py``) is started as a real server with a bare ``flask
run`` on a free loopback port and an empty SQLite file (it creates its tables at start with the
migrations ``flask better-auth migrate`` runs), configured only through ``FLASK_*`` environment
variables; emails go to a JSON Lines outbox (``FLASK_BETTER_AUTH_EMAIL_BACKEND=outbox``,
``FLASK_BETTER_AUTH_EMAIL_OUTBOX=<tmp>``).
``tests/e2e/client_flows.mjs`` drives it with ``better-auth/client`` in Node: once with a cookie
jar, once with bearer tokens, and through the password-reset email flow (reading the emailed link
from the outbox). A second instance with ``FLASK_BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION=true`` runs
the email-verification flow. ``tests/e2e/hash_interop.mjs`` checks that password hashes made by
Better Auth's own helpers and by ``flask_better_auth.crypto`` verify on the other side.

Needs ``node`` (20+) and ``npm`` on PATH; the module is skipped only when they are missing. The npm
dependencies are installed into ``tests/e2e/node_modules`` on first use (``npm ci``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from nodejs import NodeEnv
from processes import stop_process

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[1]
E2E_DIR = REPO_ROOT / "tests" / "e2e"
EXAMPLE_APP = REPO_ROOT / "examples" / "quickstart" / "app.py"

SERVER_START_TIMEOUT = 30.0
FLOW_TIMEOUT = 180
HASH_TIMEOUT = 60
#: client_flows.mjs modes that read the server's email outbox (third argument).
EMAIL_MODES = ("password-reset", "verify-email")


@dataclass(frozen=True)
class RunningServer:
    origin: str
    log_path: Path
    outbox: Path

    def log_tail(self, limit: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:  # pragma: no cover - diagnostics only
            return f"<could not read server log: {exc}>"
        return text[-limit:]


def _tail(text: str | None, limit: int = 4000) -> str:
    text = text or ""
    return text if len(text) <= limit else "…" + text[-limit:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ok_status(url: str) -> int | None:
    """Status of GET ``url``, or None when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


@contextlib.contextmanager
def _example_app(workdir: Path, extra_env: dict[str, str]) -> Iterator[RunningServer]:
    """Run the example app with ``flask run`` on a free loopback port until the block exits.

    The app reads every setting from ``FLASK_*`` environment variables (JSON-parsed where
    possible); emails go to a JSON Lines outbox in ``workdir``, which the email flows read.
    """
    if not EXAMPLE_APP.is_file():
        pytest.fail(f"example app not found: {EXAMPLE_APP}")
    port = _free_port()
    origin = f"http://127.0.0.1:{port}"
    outbox = workdir / "outbox.jsonl"
    env = dict(os.environ)
    for key in [key for key in env if key.startswith("FLASK_")]:
        del env[key]  # only the settings below (a stray FLASK_* would change the app)
    env.update(
        {
            "FLASK_BETTER_AUTH_SECRET": "e2e-test-secret-0123456789abcdef-0123456789abcdef",
            "FLASK_BETTER_AUTH_BASE_URL": origin,
            "FLASK_BETTER_AUTH_TRUSTED_ORIGINS": json.dumps([origin]),
            "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'e2e.sqlite'}",
            "FLASK_BETTER_AUTH_COOKIE_SECURE": "false",
            "FLASK_BETTER_AUTH_DELETE_USER_ENABLED": "true",
            "FLASK_BETTER_AUTH_EMAIL_BACKEND": "outbox",
            "FLASK_BETTER_AUTH_EMAIL_OUTBOX": str(outbox),
            # Production mode turns rate limiting on; these flows sign in more than 3 times / 10 s.
            "FLASK_BETTER_AUTH_RATE_LIMIT_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
    )
    # A bare `flask run` on an empty SQLite file: the example creates its tables at start.
    command = [
        sys.executable, "-m", "flask", "--app", "examples/quickstart/app.py",
        "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload",
    ]  # fmt: skip
    log_path = workdir / "server.log"
    server = RunningServer(origin=origin, log_path=log_path, outbox=outbox)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            status: int | None = None
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    pytest.fail(
                        f"example app exited with code {process.returncode} before answering.\n"
                        f"command: {' '.join(command)}\nserver output:\n{server.log_tail()}"
                    )
                status = _ok_status(f"{origin}/api/auth/ok")
                if status == 200:
                    break
                time.sleep(0.2)
            else:
                pytest.fail(
                    f"example app did not answer 200 on {origin}/api/auth/ok"
                    f" within {SERVER_START_TIMEOUT:.0f}s (last status: {status}).\n"
                    f"command: {' '.join(command)}\nserver output:\n{server.log_tail()}"
                )
            yield server
        finally:
            stop_process(process)


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The example app as shipped (sign-up signs in), emails to an outbox."""
    with _example_app(tmp_path_factory.mktemp("e2e-server"), {}) as server:
        yield server


@pytest.fixture(scope="module")
def verifying_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A second instance that requires a verified email before sign-in."""
    env = {"FLASK_BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION": "true"}
    with _example_app(tmp_path_factory.mktemp("e2e-server-verify"), env) as server:
        yield server


def _run_node(
    node_env: NodeEnv, script: str, *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [node_env.node, script, *args],
            cwd=E2E_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(
            f"node {script} {' '.join(args)} timed out after {timeout}s\n"
            f"stdout:\n{_tail(out)}\nstderr:\n{_tail(err)}"
        )


def _outbox_tail(server: RunningServer, limit: int = 3000) -> str:
    try:
        lines = server.outbox.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "<no outbox file>"
    except OSError as exc:  # pragma: no cover - diagnostics only
        return f"<could not read outbox: {exc}>"
    shown = []
    for line in lines[-6:]:
        try:
            record = json.loads(line)
        except ValueError:
            shown.append(line[:300])
            continue
        fields = ("sent_at", "kind", "to", "url")
        shown.append(" ".join(f"{key}={record.get(key)}" for key in fields))
    return _tail("\n".join(shown), limit)


def _run_flow(node_env: NodeEnv, server: RunningServer, mode: str) -> None:
    args = [server.origin, mode]
    if mode in EMAIL_MODES:
        args.append(str(server.outbox))
    result = _run_node(node_env, "client_flows.mjs", *args, timeout=FLOW_TIMEOUT)
    summary: dict[str, object] | None = None
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if lines:
        try:
            summary = json.loads(lines[-1])
        except ValueError:
            summary = None
    details = (
        f"client_flows.mjs {mode} exited {result.returncode}\n"
        + (
            f"passed={summary.get('passed')} failed={summary.get('failed')}\nfailures:\n"
            + "\n".join(f"  - {f}" for f in summary.get("failures", []))  # type: ignore[union-attr]
            if isinstance(summary, dict)
            else f"stdout:\n{_tail(result.stdout)}"
        )
        + f"\nstderr:\n{_tail(result.stderr, 2000)}\nserver output (tail):\n{server.log_tail(3000)}"
        + (f"\noutbox (last lines):\n{_outbox_tail(server)}" if mode in EMAIL_MODES else "")
    )
    assert result.returncode == 0, details
    assert isinstance(summary, dict) and summary.get("mode") == mode, details
    assert summary.get("failed") == 0 and int(summary.get("passed", 0)) > 0, details  # type: ignore[call-overload]


def test_official_client_cookie_flow(node_env: NodeEnv, example_server: RunningServer) -> None:
    _run_flow(node_env, example_server, "cookie")


def test_official_client_bearer_flow(node_env: NodeEnv, example_server: RunningServer) -> None:
    _run_flow(node_env, example_server, "bearer")


def test_official_client_password_reset_flow(
    node_env: NodeEnv, example_server: RunningServer
) -> None:
    """requestPasswordReset → emailed link (302 to /reset?token=) → resetPassword → signIn."""
    _run_flow(node_env, example_server, "password-reset")


def test_official_client_email_verification_flow(
    node_env: NodeEnv, verifying_server: RunningServer
) -> None:
    """Verification required: signUp → 403 EMAIL_NOT_VERIFIED → emailed link → signIn works."""
    _run_flow(node_env, verifying_server, "verify-email")


# NFKC matters: "ﬁ" (U+FB01) normalises to "fi" on both sides before scrypt.
INTEROP_PASSWORD = "Ünïcødé ﬁ pässwörd 🔑 42"


def _js_hash(node_env: NodeEnv, password: str) -> str:
    result = _run_node(node_env, "hash_interop.mjs", "hash", password, timeout=HASH_TIMEOUT)
    assert result.returncode == 0, (
        f"hash_interop.mjs hash failed ({result.returncode}): {result.stderr}"
    )
    return result.stdout.strip()


def _js_verify(node_env: NodeEnv, password_hash: str, password: str) -> str:
    result = _run_node(
        node_env, "hash_interop.mjs", "verify", password_hash, password, timeout=HASH_TIMEOUT
    )
    assert result.returncode == 0, (
        f"hash_interop.mjs verify failed ({result.returncode}): {result.stderr}"
    )
    return result.stdout.strip()


def test_hash_interop_js_hash_verifies_in_python(node_env: NodeEnv) -> None:
    from flask_better_auth.crypto import verify_password

    js_hash = _js_hash(node_env, INTEROP_PASSWORD)
    salt, sep, key = js_hash.partition(":")
    assert sep and len(salt) == 32 and len(key) == 128, f"unexpected JS hash format: {js_hash!r}"
    assert verify_password(js_hash, INTEROP_PASSWORD) is True
    assert verify_password(js_hash, INTEROP_PASSWORD.replace("ﬁ", "fi")) is True  # NFKC-equivalent
    assert verify_password(js_hash, INTEROP_PASSWORD + "x") is False


def test_hash_interop_python_hash_verifies_in_js(node_env: NodeEnv) -> None:
    from flask_better_auth.crypto import hash_password

    py_hash = hash_password(INTEROP_PASSWORD)
    assert _js_verify(node_env, py_hash, INTEROP_PASSWORD) == "true"
    assert _js_verify(node_env, py_hash, INTEROP_PASSWORD.replace("ﬁ", "fi")) == "true"
    assert _js_verify(node_env, py_hash, INTEROP_PASSWORD + "x") == "false"

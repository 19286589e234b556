"""Node.js for the tests that run Better Auth's own code: the ``node_env`` fixture.

``tests/e2e/node_modules`` (better-auth, pinned by tests/e2e/package-lock.json) is installed on
first use with ``npm ci``, once across pytest-xdist workers. Tests skip only when ``node`` or
``npm`` is not on PATH; a failed install fails them.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

E2E_DIR = Path(__file__).resolve().parent / "e2e"
NPM_INSTALL_TIMEOUT = 600


def _tail(text: str | None, limit: int = 4000) -> str:
    text = text or ""
    return text if len(text) <= limit else "…" + text[-limit:]


@dataclass(frozen=True)
class NodeEnv:
    node: str
    npm: str


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """Serialise ``npm ci`` across pytest-xdist workers (POSIX only; no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path = Path(tempfile.gettempdir()) / "flask-better-auth-e2e-npm.lock"
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _dependencies_installed() -> bool:
    return (E2E_DIR / "node_modules" / "better-auth" / "package.json").is_file()


@pytest.fixture(scope="session")
def node_env() -> NodeEnv:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(
            name for name, path in (("node", node), ("npm", npm)) if path is None
        )
        pytest.skip(f"e2e tests need Node.js 20+ with npm on PATH ({missing} not found)")

    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < 20:
        pytest.fail(
            "e2e tests need Node.js 20+, found"
            f" {version.stdout.strip() or version.stderr.strip()!r} at {node}"
        )

    if not _dependencies_installed():
        with _install_lock():
            if not _dependencies_installed():
                has_lock = (E2E_DIR / "package-lock.json").is_file()
                command = [npm, "ci" if has_lock else "install", "--no-audit", "--no-fund"]
                try:
                    result = subprocess.run(
                        command,
                        cwd=E2E_DIR,
                        capture_output=True,
                        text=True,
                        timeout=NPM_INSTALL_TIMEOUT,
                    )
                except subprocess.TimeoutExpired as exc:
                    pytest.fail(
                        f"`{' '.join(command)}` in {E2E_DIR} timed out after {exc.timeout}s"
                    )
                if result.returncode != 0 or not _dependencies_installed():
                    pytest.fail(
                        f"`{' '.join(command)}` in {E2E_DIR} failed (exit {result.returncode}).\n"
                        f"stdout:\n{_tail(result.stdout)}\nstderr:\n{_tail(result.stderr)}"
                    )
    return NodeEnv(node=node, npm=npm)

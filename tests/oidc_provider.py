"""A real OpenID provider for the OAuth tests: panva's ``oidc-provider`` (OpenID Certified),
run from tests/oidc/provider.mjs as a subprocess (the ``oidc_issuer`` fixture), and a
browser-like driver of its login pages over real HTTP (:func:`provider_login`).

``tests/oidc/node_modules`` is installed on first use (``npm ci``, pinned by the lock file),
once across pytest-xdist workers. Tests skip only when ``node``/``npm`` are not on PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from processes import stop_process

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "better-auth-peer"
CLIENT_SECRET = "peer-oidc-client-secret"


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    import fcntl

    with open(Path(tempfile.gettempdir()) / "flask-better-auth-oidc-npm.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _installed() -> bool:
    return (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def oidc_issuer() -> Iterator[str]:
    """The issuer URL of a running provider (stopped at the end of the session)."""
    yield from _run_provider({})


@pytest.fixture(scope="session")
def oidc_issuer_strict() -> Iterator[str]:
    """A provider whose id_tokens carry only ``sub`` (``OIDC_ID_TOKEN_CLAIMS=0``, OpenID's
    strict reading): the email is only in its userinfo answer."""
    yield from _run_provider({"OIDC_ID_TOKEN_CLAIMS": "0"})


def _run_provider(extra_env: dict[str, str]) -> Iterator[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the OAuth tests need Node.js 20+ with npm on PATH")
    if not _installed():
        with _install_lock():
            if not _installed():
                result = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"],
                    cwd=OIDC_DIR,
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                if result.returncode != 0:
                    pytest.fail(f"npm ci in {OIDC_DIR} failed:\n{result.stderr[-4000:]}")
    port = _free_port()
    env = {**os.environ, "OIDC_PORT": str(port), "QUIET": "1", **extra_env}
    process = subprocess.Popen(
        [node, "provider.mjs"],
        cwd=OIDC_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/__test/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"the OpenID provider did not start:\n{stderr[-4000:]}")
            time.sleep(0.1)
        yield issuer
    finally:
        stop_process(process)
        if process.stderr:
            process.stderr.close()


def provider_login(
    authorization_url: str,
    login: str | None = None,
    password: str = "any-password",
    *,
    abort: bool = False,
) -> str:
    """Go through the provider's pages as a browser would (its own cookie jar, redirects
    followed by hand); the URL the provider sends the browser back to (our callback).

    With ``login=None`` the request's ``login_hint`` logs in with no form (auto-login).
    """
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        response = browser.get(authorization_url)
        assert response.status_code == 303, response.text
        interaction = urljoin(authorization_url, response.headers["location"])
        response = browser.get(interaction)
        if response.status_code == 200:  # the login form
            if abort:
                response = browser.post(interaction + "/abort")
            else:
                form = {"login": login or "", "password": password}
                response = browser.post(interaction + "/login", data=form)
        assert response.status_code == 303, response.text
        resume = urljoin(interaction, response.headers["location"])
        response = browser.get(resume)
        assert response.status_code == 303, response.text
        return urljoin(resume, response.headers["location"])

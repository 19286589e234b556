"""The example page in a real browser: headless Chromium, driven by Playwright, against the app.

The example app runs as a user starts it: a bare ``flask --app examples/quickstart/app.py run``
on a free loopback port, an empty SQLite file (the app creates its tables at start), settings
from ``FLASK_*`` variables, emails to a JSON Lines outbox the tests read the links from. Plain
http: ``FLASK_BETTER_AUTH_COOKIE_SECURE=false``; cookies stay ``SameSite=Lax``. ``TESTING`` is on
only for a cheaper scrypt cost (real hashing on a busy 2-core machine is most of the time) and
the rate limiter is off (a visitor signs in more than 3 times in 10 s).

Every test runs twice:

* **same-origin**: the page is the one the app serves (``/``, ``/reset-password``,
  ``/email-verified``), calling ``/api/auth``;
* **cross-origin**: the same template, rendered with the API's full URL, is served by a tiny
  static server on a second port. The API lists that origin in ``BETTER_AUTH_CORS_ORIGINS`` and
  its reset page is there; the page's ``fetch`` calls send ``credentials: "include"``. Two
  ports of 127.0.0.1 are the same *site*, so the Lax session cookie goes along.

One browser for the module, a fresh context (cookie jar) per visitor. Chromium is the
distribution's (``/usr/bin/chromium``, or ``FBA_TEST_CHROMIUM``); without it the module is
skipped, or fails when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from jinja2 import Environment, FileSystemLoader
from processes import stop_process

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "examples" / "quickstart"
SECRET = "browser-test-secret-0123456789-abcdefghijklmnop"
PASSWORD = "correct-horse-1"
NEW_PASSWORD = "brand-new-horse-2"
RESET_MESSAGE = "If this email exists in our system, check your email for the reset link"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 30.0
MAIL_TIMEOUT = 10.0
_emails = iter(range(1_000_000))


def _missing(reason: str) -> None:
    """Skip outside CI; under CI a missing browser is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _chromium() -> str:
    candidates = [
        os.environ.get("FBA_TEST_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _missing("Chromium not found (apt-get install chromium, or set FBA_TEST_CHROMIUM)")
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except OSError:
        return None


@dataclass(frozen=True)
class Site:
    """Where the page is (``page_origin``), where the API is, and the API's outbox."""

    mode: str
    page_origin: str
    api_origin: str
    outbox: Path
    log: Path

    def url(self, path: str = "/") -> str:
        return self.page_origin + path

    def mails(self) -> list[dict[str, Any]]:
        if not self.outbox.exists():
            return []
        lines = self.outbox.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def mail(self, kind: str, to: str, after: int) -> dict[str, Any]:
        """The first ``kind`` message to ``to`` after the first ``after`` messages (waits)."""
        deadline = time.monotonic() + MAIL_TIMEOUT
        while time.monotonic() < deadline:
            found = [m for m in self.mails()[after:] if m["kind"] == kind and m["to"] == to]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {kind} mail to {to} in {self.outbox}: {self.mails()[after:]}")


@contextlib.contextmanager
def _example_app(workdir: Path, port: int, extra_env: dict[str, str]) -> Iterator[Path]:
    """``flask run`` of the example on ``port`` until the block exits; yields the log path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env.update(
        {
            "FLASK_BETTER_AUTH_SECRET": SECRET,
            "FLASK_BETTER_AUTH_BASE_URL": f"http://127.0.0.1:{port}",
            "FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'example.sqlite'}",
            "FLASK_BETTER_AUTH_COOKIE_SECURE": "false",
            "FLASK_BETTER_AUTH_EMAIL_OUTBOX": str(workdir / "outbox.jsonl"),
            # Production mode limits sign-ins to 3 per 10 s; these visitors sign in more.
            "FLASK_BETTER_AUTH_RATE_LIMIT_ENABLED": "false",
            # TESTING only to allow a cheaper scrypt (the routes answer the same either way).
            "FLASK_TESTING": "true",
            "FLASK_BETTER_AUTH_SCRYPT_N": "1024",
            "PYTHONUNBUFFERED": "1",
            **extra_env,
        }
    )
    command = [
        sys.executable, "-m", "flask", "--app", "examples/quickstart/app.py",
        "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload",
    ]  # fmt: skip
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while _status(f"http://127.0.0.1:{port}/api/auth/ok") != 200:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the example app did not start:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.1)
            yield log_path
        finally:
            stop_process(process)
    text = log_path.read_text(errors="replace")
    assert "Traceback" not in text, text[-4000:]


@contextlib.contextmanager
def _static_page(port: int, auth_url: str) -> Iterator[None]:
    """Serve the example's page, rendered with the API's full URL, on another port."""
    templates = Environment(loader=FileSystemLoader(EXAMPLE / "templates"), autoescape=True)
    body = templates.get_template("index.html").render(auth_url=auth_url).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = urlsplit(self.path).path in ("/", "/reset-password", "/email-verified")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module", params=["same-origin", "cross-origin"])
def site(
    request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp(request.param)
    api_port = _free_port()
    api_origin = f"http://127.0.0.1:{api_port}"
    if request.param == "same-origin":
        with _example_app(workdir, api_port, {}) as log:
            yield Site(request.param, api_origin, api_origin, workdir / "outbox.jsonl", log)
        return
    page_port = _free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    env = {
        "FLASK_BETTER_AUTH_CORS_ORIGINS": json.dumps([page_origin]),
        "FLASK_BETTER_AUTH_TRUSTED_ORIGINS": json.dumps([page_origin]),
        "FLASK_BETTER_AUTH_RESET_PASSWORD_PAGE": f"{page_origin}/reset-password",
    }
    with (
        _static_page(page_port, f"{api_origin}/api/auth"),
        _example_app(workdir, api_port, env) as log,
    ):
        yield Site(request.param, page_origin, api_origin, workdir / "outbox.jsonl", log)


@dataclass
class Tabs:
    """Browser tabs, each in a context (cookie jar) of its own, kept for the whole module.

    A context and its first page cost more than a test's clicks; clearing the cookies makes
    a tab a new visitor again.
    """

    pages: list[Any]
    script_errors: list[str]  # uncaught JavaScript errors of any tab


@pytest.fixture(scope="module")
def tabs(browser: Any) -> Iterator[Tabs]:
    tabs = Tabs(pages=[], script_errors=[])
    for _ in range(2):
        context = browser.new_context()
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda error: tabs.script_errors.append(str(error)))
        tabs.pages.append(page)
    yield tabs
    for page in tabs.pages:
        page.context.close()


@pytest.fixture
def visitor(tabs: Tabs) -> Iterator[Callable[[], Any]]:
    """Hands out a tab with an empty cookie jar: a visitor of their own (two per test)."""
    free = list(tabs.pages)
    tabs.script_errors.clear()

    def open_page() -> Any:
        page = free.pop(0)
        page.goto("about:blank")
        page.context.clear_cookies()
        return page

    yield open_page
    assert tabs.script_errors == []


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def new_email() -> str:
    return f"visitor{next(_emails)}@example.com"


def sign_up(site: Site, page: Any, email: str, name: str = "Ann") -> None:
    expect = _expect()
    page.goto(site.url("/"))
    expect(page.locator("#status")).to_have_text("Not signed in.")
    form = page.locator("#sign-up")
    form.locator("[name=name]").fill(name)
    form.locator("[name=email]").fill(email)
    form.locator("[name=password]").fill(PASSWORD)
    form.locator("button").click()
    expect(page.locator("#status")).to_have_text(f"Signed in as {name} ({email}).")


def sign_in(page: Any, email: str, password: str) -> None:
    form = page.locator("#sign-in")
    form.locator("[name=email]").fill(email)
    form.locator("[name=password]").fill(password)
    form.locator("button").click()


def test_sign_up_shows_the_signed_in_state(site: Site, visitor: Callable[[], Any]):
    expect = _expect()
    page = visitor()
    email = new_email()
    sign_up(site, page, email)
    expect(page.locator("#message")).to_have_text("Welcome! You are signed up and signed in.")
    expect(page.locator("#signed-out")).to_be_hidden()
    expect(page.locator("#signed-in")).to_be_visible()
    expect(page.locator("#user-email")).to_have_text(email)
    expect(page.locator("#user-verified")).to_have_text("not verified")
    expect(page.locator("#sessions tr.session.current")).to_have_count(1)
    expect(page.locator("#sessions tr.session")).to_have_count(1)

    # The session cookie as Better Auth sets it, for the API's host, kept over plain http.
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "better-auth.session-token"]
    assert cookie["domain"] == "127.0.0.1" and cookie["path"] == "/"
    assert cookie["httpOnly"] is True and cookie["secure"] is False
    assert cookie["sameSite"] == "Lax"

    # A reload asks the API again (the state is not kept in the page).
    page.reload()
    expect(page.locator("#status")).to_have_text(f"Signed in as Ann ({email}).")
    expect(page.locator("#sign-up")).to_be_hidden()
    # The app's own @login_required view, with the same cookie (CORS on /api/* cross-origin).
    page.locator("#call-me").click()
    expect(page.locator("#me")).to_contain_text(f'"email":"{email}"')
    expect(page.locator("#me")).to_contain_text("200")


def test_sign_in_revoke_a_session_and_sign_out(site: Site, visitor: Callable[[], Any]):
    expect = _expect()
    laptop, phone = visitor(), visitor()
    email = new_email()
    sign_up(site, laptop, email)

    phone.goto(site.url("/"))
    sign_in(phone, email, "wrong-password-1")
    expect(phone.locator("#message")).to_have_text(
        "INVALID_EMAIL_OR_PASSWORD: Invalid email or password"
    )
    expect(phone.locator("#status")).to_have_text("Not signed in.")
    sign_in(phone, email, PASSWORD)
    expect(phone.locator("#status")).to_have_text(f"Signed in as Ann ({email}).")
    sessions = phone.locator("#sessions tr.session")
    expect(sessions).to_have_count(2)
    expect(phone.locator("#sessions tr.current")).to_have_count(1)

    # The phone revokes the laptop's session: the laptop is signed out at its next look.
    phone.locator("#sessions tr.session:not(.current) button").click()
    expect(phone.locator("#message")).to_have_text("Session revoked.")
    expect(sessions).to_have_count(1)
    laptop.reload()
    expect(laptop.locator("#status")).to_have_text("Not signed in.")
    expect(laptop.locator("#sign-in")).to_be_visible()

    # Signing out ends the phone's session for good.
    phone.locator("#sign-out").click()
    expect(phone.locator("#message")).to_have_text("Signed out.")
    expect(phone.locator("#status")).to_have_text("Not signed in.")
    expect(phone.locator("#signed-in")).to_be_hidden()
    phone.reload()
    expect(phone.locator("#status")).to_have_text("Not signed in.")
    assert [c for c in phone.context.cookies() if c["name"] == "better-auth.session-token"] == []

    # Revoking this browser's own session signs it out too.
    sign_in(laptop, email, PASSWORD)
    expect(laptop.locator("#sessions tr.current")).to_have_count(1)
    laptop.locator("#sessions tr.current button").click()
    expect(laptop.locator("#message")).to_have_text(
        "This browser's session is revoked: you are signed out."
    )
    expect(laptop.locator("#status")).to_have_text("Not signed in.")


def test_forgot_password_through_the_outbox(site: Site, visitor: Callable[[], Any]):
    expect = _expect()
    email = new_email()
    sign_up(site, visitor(), email)

    page = visitor()
    page.goto(site.url("/"))
    before = len(site.mails())
    form = page.locator("#forgot-password")
    form.locator("[name=email]").fill(email)
    form.locator("button").click()
    expect(page.locator("#message")).to_have_text(RESET_MESSAGE)

    # The page sends no redirectTo: the link lands on BETTER_AUTH_RESET_PASSWORD_PAGE.
    mail = site.mail("reset-password", email, before)
    assert mail["url"].startswith(f"{site.api_origin}/api/auth/reset-password/")
    assert mail["url"].endswith("?callbackURL=")
    page.goto(mail["url"])
    expect(page.locator("#reset")).to_be_visible()
    # The page lands on its own origin, and takes the token out of the address bar.
    assert page.url == site.url("/reset-password")
    page.locator("#reset-password [name=newPassword]").fill(NEW_PASSWORD)
    page.locator("#reset-password button").click()
    expect(page.locator("#message")).to_have_text("Your password is changed: sign in with it.")
    expect(page.locator("#reset-password")).to_be_hidden()

    page.goto(site.url("/"))
    sign_in(page, email, PASSWORD)
    expect(page.locator("#message")).to_have_text(
        "INVALID_EMAIL_OR_PASSWORD: Invalid email or password"
    )
    sign_in(page, email, NEW_PASSWORD)
    expect(page.locator("#status")).to_have_text(f"Signed in as Ann ({email}).")

    # The link works once.
    page.goto(mail["url"])
    expect(page.locator("#message")).to_have_text(
        "This reset link is invalid, expired or already used: ask for a new one."
    )
    expect(page.locator("#reset-password")).to_be_hidden()


def test_email_verification_landing(site: Site, visitor: Callable[[], Any]):
    expect = _expect()
    page = visitor()
    email = new_email()
    sign_up(site, page, email)
    before = len(site.mails())
    page.locator("#send-verification").click()
    expect(page.locator("#message")).to_have_text("Verification link sent: check your email.")

    mail = site.mail("verification", email, before)
    assert re.match(rf"{re.escape(site.api_origin)}/api/auth/verify-email\?token=", mail["url"])
    page.goto(mail["url"])
    assert page.url == site.url("/email-verified")
    expect(page.locator("#verify-result")).to_have_text("Your email address is verified.")
    page.goto(site.url("/"))
    expect(page.locator("#user-verified")).to_have_text("verified")
    expect(page.locator("#send-verification")).to_be_hidden()

    # A broken link lands on the same page with the error.
    page.goto(mail["url"].replace("token=", "token=x", 1))
    expect(page.locator("#verify-result")).to_contain_text("did not work")

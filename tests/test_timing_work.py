"""Sign-in does the same work whether or not the email is known (no timing assertions).

An attacker who times ``/sign-in/email`` must not learn which emails have accounts. Rather than
measuring time (flaky), these tests count the expensive step: every path runs exactly one
``hashlib.scrypt`` with the same parameters. ``hashlib.scrypt`` is wrapped (the real function
still runs) to record each call. ``bench/signin_timing.py`` measures the latencies themselves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ORIGIN, PASSWORD, make_app, sign_in, sign_up
from flask import Flask
from sqlalchemy import delete

from flask_better_auth.models import Account

WRONG = "wrong-horse-111"  # as long as PASSWORD: the same bytes go into scrypt
assert len(WRONG) == len(PASSWORD)


@dataclass(frozen=True)
class ScryptCall:
    n: int
    r: int
    p: int
    dklen: int
    maxmem: int
    password_len: int
    salt_len: int


class ScryptRecorder:
    """Wraps ``hashlib.scrypt``: records the parameters of each call, then runs the real one."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[ScryptCall] = []

    def __call__(self, password: bytes, **kwargs: Any) -> bytes:
        self.calls.append(
            ScryptCall(
                n=kwargs["n"],
                r=kwargs["r"],
                p=kwargs["p"],
                dklen=kwargs["dklen"],
                maxmem=kwargs["maxmem"],
                password_len=len(password),
                salt_len=len(kwargs["salt"]),
            )
        )
        result: bytes = self.real(password, **kwargs)
        return result

    def take(self) -> list[ScryptCall]:
        calls, self.calls = self.calls, []
        return calls


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> ScryptRecorder:
    wrapper = ScryptRecorder(hashlib.scrypt)
    monkeypatch.setattr(hashlib, "scrypt", wrapper)
    return wrapper


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(f"sqlite:///{tmp_path / 'timing.sqlite'}")
    yield app
    with app.app_context():
        app.extensions["better_auth"].db.session.remove()
        app.extensions["better_auth"].db.engine.dispose()


def _remove_credential_account(app: Flask, user_id: str) -> None:
    with app.app_context():
        db = app.extensions["better_auth"].db
        db.session.execute(delete(Account).where(Account.user_id == user_id))
        db.session.commit()


def test_sign_in_runs_one_identical_scrypt_on_every_path(
    app: Flask, recorder: ScryptRecorder
) -> None:
    client = app.test_client()
    sign_up(client, "known@example.com")
    no_password = sign_up(app.test_client(), "social@example.com")
    _remove_credential_account(app, no_password.user["id"])  # a user without a password
    recorder.take()

    # The first unknown email comes first: a dummy hash built on first use (as this package
    # once did) would cost that request a second scrypt.
    paths = {
        "unknown email (first time)": ("nobody@example.com", PASSWORD, 401),
        "unknown email": ("nobody2@example.com", PASSWORD, 401),
        "known email, wrong password": ("known@example.com", WRONG, 401),
        "known email, no password": ("social@example.com", PASSWORD, 401),
        "known email, right password": ("known@example.com", PASSWORD, 200),
    }
    seen: dict[str, list[ScryptCall]] = {}
    for name, (email, password, status) in paths.items():
        response = sign_in(app.test_client(), email, password)
        assert response.status_code == status, (name, response.get_data(as_text=True))
        seen[name] = recorder.take()

    assert {name: len(calls) for name, calls in seen.items()} == dict.fromkeys(paths, 1)
    reference = seen["known email, right password"][0]
    assert reference.n == app.extensions["better_auth"].settings.password.scrypt_n
    assert (reference.r, reference.p, reference.dklen) == (16, 1, 64)
    assert {name: calls[0] for name, calls in seen.items()} == dict.fromkeys(paths, reference)


@pytest.mark.parametrize("verification", [False, True], ids=["auto-sign-in", "generic"])
def test_sign_up_runs_one_identical_scrypt_whether_or_not_the_email_is_taken(
    tmp_path: Path, recorder: ScryptRecorder, verification: bool
) -> None:
    app = make_app(
        f"sqlite:///{tmp_path / 'signup.sqlite'}", REQUIRE_EMAIL_VERIFICATION=verification
    )
    try:
        client = app.test_client()
        body = {"name": "Ann", "email": "taken@example.com", "password": PASSWORD}
        assert client.post("/api/auth/sign-up/email", json=body, headers=ORIGIN).status_code == 200
        new = recorder.take()
        again = client.post("/api/auth/sign-up/email", json=body, headers=ORIGIN)
        assert again.status_code == (200 if verification else 422)
        taken = recorder.take()
        assert len(new) == len(taken) == 1
        assert new == taken
    finally:
        with app.app_context():
            app.extensions["better_auth"].db.session.remove()
            app.extensions["better_auth"].db.engine.dispose()

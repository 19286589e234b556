"""``flask better-auth create-user / revoke-sessions / cleanup`` on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import ORIGIN, PASSWORD, sign_in, sign_up
from flask import Flask
from sqlalchemy import func, select

from flask_better_auth import cli as cli_module
from flask_better_auth import session_revoked
from flask_better_auth.crypto import generate_id
from flask_better_auth.models import Account, Session, User, Verification, utcnow


def run(app: Flask, *args: str, input: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=["better-auth", *args], input=input)


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        db = app.extensions["better_auth"].db
        return int(
            db.session.execute(select(func.count()).select_from(model).where(*where)).scalar()
        )


def test_create_user_then_sign_in_over_http(app: Flask) -> None:
    result = run(
        app, "create-user", "--email", "Root@Example.com", "--name", "Root", "--password", PASSWORD
    )
    assert result.exit_code == 0, result.output
    assert "Created user root@example.com" in result.output
    response = sign_in(app.test_client(), "root@example.com")
    assert response.status_code == 200, response.get_data(as_text=True)
    user = response.get_json()["user"]
    assert user["name"] == "Root" and user["emailVerified"] is False
    assert sign_in(app.test_client(), "root@example.com", "wrong-password-1").status_code == 401


def test_create_user_prompts_for_the_password_twice_hidden(app: Flask) -> None:
    result = run(
        app,
        "create-user",
        "--email",
        "ops@example.com",
        "--name",
        "Ops",
        "--verified",
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output
    assert PASSWORD not in result.output  # hidden input
    response = sign_in(app.test_client(), "ops@example.com")
    assert response.status_code == 200
    assert response.get_json()["user"]["emailVerified"] is True


def test_create_user_mismatched_confirmation_asks_again(app: Flask) -> None:
    result = run(
        app,
        "create-user",
        "--email",
        "ops@example.com",
        "--name",
        "Ops",
        input=f"{PASSWORD}\nsomething-else\n{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output
    assert sign_in(app.test_client(), "ops@example.com").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email", "--password", PASSWORD], "not an email address"),
        (["--email", "a@example.com", "--password", "short"], "must be 8 to 128 characters"),
        (["--email", "a@example.com", "--password", PASSWORD, "--name", " "], "must not be"),
    ],
)
def test_create_user_rejects_bad_input(app: Flask, args: list[str], message: str) -> None:
    name = [] if "--name" in args else ["--name", "A"]
    result = run(app, "create-user", *name, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert count(app, User) == 0


def test_create_user_with_a_taken_email_fails(app: Flask) -> None:
    sign_up(app.test_client(), "ann@example.com")
    result = run(
        app, "create-user", "--email", "ANN@example.com", "--name", "Ann", "--password", PASSWORD
    )
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert count(app, User) == 1 and count(app, Account) == 1


def test_revoke_sessions_signs_the_user_out_everywhere(app: Flask) -> None:
    laptop, phone, other = app.test_client(), app.test_client(), app.test_client()
    account = sign_up(laptop, "ann@example.com")
    assert sign_in(phone, "ann@example.com").status_code == 200
    sign_up(other, "bob@example.com")
    assert phone.get("/api/me").status_code == 200

    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    with session_revoked.connected_to(receiver, app):
        result = run(app, "revoke-sessions", "Ann@Example.com")
    assert result.exit_code == 0, result.output
    assert "Revoked 2 sessions of ann@example.com" in result.output
    assert received == [{"user_id": account.user["id"], "tokens": None}]
    assert laptop.get("/api/me").status_code == 401
    assert phone.get("/api/me", headers=ORIGIN).status_code == 401
    assert other.get("/api/me").status_code == 200  # another user's session stays

    again = run(app, "revoke-sessions", "ann@example.com")
    assert again.exit_code == 0 and "Revoked 0 sessions" in again.output


def test_revoke_sessions_of_an_unknown_email_fails(app: Flask) -> None:
    result = run(app, "revoke-sessions", "nobody@example.com")
    assert result.exit_code == 1
    assert "No user with the email nobody@example.com" in result.output


def _seed_expiring_rows(app: Flask) -> None:
    """7 expired and 3 live sessions, 4 expired and 2 live verifications."""
    now = utcnow()
    with app.app_context():
        db = app.extensions["better_auth"].db
        user = User(name="Ann", email="ann@example.com", email_verified=False)
        db.session.add(user)
        db.session.flush()
        for index in range(10):
            expires = now + (timedelta(hours=-index - 1) if index < 7 else timedelta(days=1))
            db.session.add(Session(token=generate_id(), user_id=user.id, expires_at=expires))
        for index in range(6):
            expires = now + (timedelta(minutes=-index - 1) if index < 4 else timedelta(hours=1))
            db.session.add(Verification(identifier=f"id-{index}", value="v", expires_at=expires))
        db.session.commit()


def test_cleanup_deletes_only_expired_rows_in_batches(app: Flask) -> None:
    _seed_expiring_rows(app)
    result = run(app, "cleanup", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert "Deleted 7 expired sessions in 3 batches." in result.output
    assert "Deleted 4 expired verifications in 2 batches." in result.output
    assert "Expired sessions" not in result.output  # no progress bar off a terminal
    now = utcnow()
    assert count(app, Session) == 3 and count(app, Session, Session.expires_at < now) == 0
    assert count(app, Verification) == 2
    assert count(app, Verification, Verification.expires_at < now) == 0

    again = run(app, "cleanup")
    assert "Deleted 0 expired sessions in 0 batches." in again.output


def test_cleanup_shows_a_progress_bar_on_a_terminal(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_expiring_rows(app)
    monkeypatch.setattr(cli_module, "_is_terminal", lambda: True)
    result = run(app, "cleanup", "--batch-size", "5")
    assert result.exit_code == 0, result.output
    assert "Expired sessions" in result.output and "Expired verifications" in result.output
    assert "Deleted 7 expired sessions in 2 batches." in result.output


def test_cleanup_rejects_a_batch_size_below_one(app: Flask) -> None:
    assert run(app, "cleanup", "--batch-size", "0").exit_code == 2


def test_the_signed_in_user_still_works_after_cleanup(app: Flask) -> None:
    client = app.test_client()
    sign_up(client)
    _ = run(app, "cleanup")
    assert client.get("/api/me").status_code == 200
    assert sign_in(app.test_client(), "ann@example.com", PASSWORD).status_code == 200

"""A small plugin living in the tests: it uses every part of the plugin seam.

Routes (with a rate-limit rule), a hook on sign-in standing in for a second factor, a user
column and a session column, a table of its own with its migration, an error code, a setting,
an email kind and a CLI command.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import ForeignKey, MetaData, Text, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_better_auth.config import ConfigReader, Keys
from flask_better_auth.context import auth_context
from flask_better_auth.crypto import generate_id
from flask_better_auth.endpoints import Endpoints, Hook, HookContext, json_response
from flask_better_auth.errors import AuthError
from flask_better_auth.models import Session, User, register_tables
from flask_better_auth.plugins import ExtraField, Migrations, Plugin
from flask_better_auth.ratelimit_rules import Rule
from flask_better_auth.schemas import Field
from flask_better_auth.state import plugin_settings, state, storage

HERE = Path(__file__).resolve().parent

notes_metadata = MetaData()
register_tables(notes_metadata)  # so ForeignKey("user.id") finds the core's table


class NotesBase(DeclarativeBase):
    metadata = notes_metadata


class Note(NotesBase):
    __tablename__ = "seamNote"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=generate_id)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, ForeignKey("user.id", ondelete="CASCADE"), nullable=False
    )


routes = Endpoints()


@routes.endpoint(
    "/seam-notes/add",
    fields=(Field("text", required=True),),
    auth="session",
    rate_limit=Rule(60, 2),
)
def seam_notes_add(body: dict[str, Any], user: User) -> Any:
    """Add a note for the signed-in user."""
    if len(body["text"]) > 10:
        raise AuthError(400, "NOTE_TOO_LONG")
    note = Note(text=body["text"], user_id=user.id)
    storage().records.add(note)
    storage().commit()
    count = storage().records.scalar(select(func.count()).select_from(Note))
    return {"id": note.id, "greeting": plugin_settings("seam-notes").greeting, "count": count}


@routes.endpoint("/seam-notes/set-color", fields=(Field("color", required=True),), auth="session")
def seam_notes_set_color(body: dict[str, Any], user: User) -> Any:
    """Change the user's plugin column (through every cache)."""
    row = storage().users.row(user)
    row.favorite_color = body["color"]  # type: ignore[attr-defined]
    storage().commit()
    storage().sessions.refresh_user(row)
    ctx = auth_context()
    ctx.user = row
    ctx.mark_set()
    return {"status": True}


@routes.endpoint("/seam-notes/mail", auth="session")
def seam_notes_mail(user: User) -> Any:
    """Email the user a note (the plugin's email kind)."""
    state().mailer.send("seam-note", user=user, url="https://example.com/n", token="")
    return {"status": True}


@routes.endpoint("/seam-notes/<note_id>", methods=("GET",), auth="session")
def seam_notes_get(note_id: str, session: Session, user: User) -> Any:
    """One note of the user."""
    note = storage().records.get(Note, note_id)
    if note is None or note.user_id != user.id:
        raise AuthError(404, "NOT_FOUND")
    return {"text": note.text, "sessionId": session.id}


def second_factor(ctx: HookContext) -> Any:
    """A stand-in for two-factor: a red user gets no session from a password alone."""
    ctx.response.headers["X-Seam-Hook"] = "after"  # type: ignore[union-attr]
    session = ctx.new_session
    if session is None:
        return None
    user = ctx.auth.user
    if user is not None and getattr(user, "favorite_color", None) == "red":
        storage().sessions.delete_token(session.token)
        storage().commit()
        ctx.auth.session = ctx.auth.user = None
        ctx.auth.mark_clear()
        # A new answer: what the hook set on the handler's (above) is its own to carry over.
        return json_response({"twoFactorRedirect": True}, headers={"X-Seam-Hook": "after"})
    return None


def refuse_secret(ctx: HookContext) -> Any:
    if isinstance(ctx.body, dict) and ctx.body.get("text") == "secret":
        return json_response({"refused": True}, status=403)
    return None


@click.command("seam-notes-count")
@with_appcontext
def count_command() -> None:
    """Print how many notes there are."""
    click.echo(str(storage().records.scalar(select(func.count()).select_from(Note))))


class NotesSettings:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting


class SeamNotes(Plugin):
    id = "seam-notes"
    keys = Keys({"SEAM_NOTES_GREETING": "hello"}, owner="seam-notes")
    endpoints = routes
    hooks = (
        Hook("/sign-in/*", second_factor, "after"),
        Hook("/seam-notes/add", refuse_secret, "before"),
    )
    error_codes: Mapping[str, str] = {"NOTE_TOO_LONG": "Note too long"}
    user_fields = (ExtraField("favoriteColor", Text(), default="blue"),)
    session_fields = (ExtraField("deviceLabel", Text()),)
    tables = notes_metadata
    migrations = Migrations(str(HERE / "migrations"), "seam-notes")
    email_kinds: Mapping[str, str] = {"seam-note": "A note from {app_name}"}
    template_folder = str(HERE / "templates")
    commands = (count_command,)

    def read_settings(self, cfg: ConfigReader) -> NotesSettings:
        return NotesSettings(cfg.str("SEAM_NOTES_GREETING"))

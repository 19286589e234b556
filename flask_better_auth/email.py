"""Email delivery: the app's callbacks, or a built-in backend (console, JSONL outbox, SMTP).

Messages are rendered from Jinja templates (``better_auth/email/<kind>.txt`` and ``.html``,
overridable from the app's own ``templates/`` folder) and sent after the database commit. A
failed delivery is logged and never undoes or half-writes what the request stored.
"""

from __future__ import annotations

import fcntl
import json
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol

from flask import render_template
from jinja2 import TemplateNotFound

from .models import User, iso, utcnow
from .settings import EmailSettings

logger = logging.getLogger("flask_better_auth.email")

#: The kinds of message the extension sends, and the Better Auth callback each replaces.
KINDS = {
    "verification": "sendVerificationEmail",
    "reset-password": "sendResetPassword",
    "change-email-confirmation": "sendChangeEmailConfirmation",
    "delete-account": "sendDeleteAccountVerification",
}


@dataclass(frozen=True)
class Email:
    """One message to send.

    :ivar kind: ``"verification"``, ``"reset-password"``, ``"change-email-confirmation"`` or
        ``"delete-account"``.
    :ivar user: the user it is about (for a change of email, ``to`` may differ from
        ``user.email``).
    """

    kind: str
    to: str
    subject: str
    text: str
    html: str | None
    url: str
    token: str
    user: User = field(repr=False)


class EmailBackend(Protocol):
    """What a backend does: deliver one :class:`Email` (raise on failure)."""

    def send(self, email: Email) -> None: ...


#: ``send_email=fn``: receives every :class:`Email`.
SendEmail = Callable[[Email], Any]
#: Per-kind callbacks, like Better Auth's: called as ``fn(user=…, url=…, token=…)``.
KindCallback = Callable[..., Any]


class ConsoleBackend:
    """Writes each message to the ``flask_better_auth.email`` logger: for development."""

    def send(self, email: Email) -> None:
        logger.warning(
            "email (%s) to %s: %s\n%s", email.kind, email.to, email.subject, email.text.strip()
        )


class OutboxBackend:
    """Appends one JSON object per message to a file (JSON Lines): for development and tests.

    Fields: ``to``, ``subject``, ``kind``, ``url``, ``token``, ``text``, ``html``,
    ``user_id``, ``sent_at``. Safe with several worker processes (an exclusive file lock).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def send(self, email: Email) -> None:
        record = {
            "to": email.to,
            "subject": email.subject,
            "kind": email.kind,
            "url": email.url,
            "token": email.token,
            "text": email.text,
            "html": email.html,
            "user_id": email.user.id,
            "sent_at": iso(utcnow()),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(line)
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class SMTPBackend:
    """Sends through an SMTP server with the standard library (STARTTLS or SSL, optional login)."""

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings

    def send(self, email: Email) -> None:
        conf = self.settings
        message = MimeMessage()
        message["Subject"] = email.subject
        message["From"] = conf.sender
        message["To"] = email.to
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=conf.sender.rpartition("@")[2] or None)
        message.set_content(email.text)
        if email.html:
            message.add_alternative(email.html, subtype="html")
        smtp_class = smtplib.SMTP_SSL if conf.smtp_use_ssl else smtplib.SMTP
        with smtp_class(conf.smtp_host, conf.smtp_port, timeout=conf.smtp_timeout) as smtp:
            if conf.smtp_use_tls and not conf.smtp_use_ssl:
                smtp.starttls(context=ssl.create_default_context())
            if conf.smtp_username:
                smtp.login(conf.smtp_username, conf.smtp_password or "")
            smtp.send_message(message)


def backend_for(settings: EmailSettings) -> EmailBackend | None:
    """The built-in backend ``BETTER_AUTH_EMAIL_BACKEND`` names, or ``None`` for none."""
    if settings.backend == "console":
        return ConsoleBackend()
    if settings.backend == "outbox":
        return OutboxBackend(settings.outbox or "outbox.jsonl")
    if settings.backend == "smtp":
        return SMTPBackend(settings)
    return None


@dataclass(frozen=True)
class Mailer:
    """Chooses how each kind of message goes out: its callback, ``send_email``, or the backend."""

    settings: EmailSettings
    send_email: SendEmail | None = None
    callbacks: dict[str, KindCallback] = field(default_factory=dict)
    backend: EmailBackend | None = None

    def can_send(self, kind: str) -> bool:
        """Whether anything delivers ``kind`` (Better Auth: whether the callback is configured)."""
        return kind in self.callbacks or self.send_email is not None or self.backend is not None

    def render(self, kind: str, *, user: User, to: str, url: str, token: str) -> Email:
        """Build the message from the templates (the app's own first)."""
        context = {
            "user": user,
            "url": url,
            "token": token,
            "to": to,
            "app_name": self.settings.app_name,
        }
        text = render_template(f"better_auth/email/{kind}.txt", **context)
        try:
            html: str | None = render_template(f"better_auth/email/{kind}.html", **context)
        except TemplateNotFound:
            html = None
        subject = self.settings.subjects.get(kind, kind).format(app_name=self.settings.app_name)
        return Email(kind, to, subject, text, html, url, token, user)

    def send(self, kind: str, *, user: User, url: str, token: str, to: str | None = None) -> bool:
        """Deliver one message now; failures are logged, never raised. Returns success."""
        try:
            callback = self.callbacks.get(kind)
            if callback is not None:
                callback(user=user, url=url, token=token)
                return True
            email = self.render(kind, user=user, to=to or user.email, url=url, token=token)
            if self.send_email is not None:
                self.send_email(email)
            elif self.backend is not None:
                self.backend.send(email)
            else:
                return False
        except Exception:
            # Never log the URL or token: they are credentials.
            logger.exception("sending the %s email for user %s failed", kind, user.id)
            return False
        return True

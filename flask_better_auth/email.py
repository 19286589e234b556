"""Email delivery: the app's callbacks, or a built-in backend (console, JSONL outbox, SMTP).

Messages are rendered from Jinja templates (``better_auth/email/<kind>.txt`` and ``.html``,
overridable from the app's own ``templates/`` folder) and delivered once the response has gone
out (WSGI ``close``), so the answer's timing does not tell whether a mail was sent; with
``app.testing`` they are delivered as the response is finalised, before the test client
returns. A failed delivery is logged and never undoes or half-writes what the request stored.
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
from email.utils import formatdate, make_msgid, parseaddr
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from flask import (
    Flask,
    Response,
    after_this_request,
    current_app,
    g,
    has_request_context,
    render_template,
)
from jinja2 import TemplateNotFound

from .models import User, iso, utcnow
from .settings.email import EmailSettings

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
        domain = parseaddr(conf.sender)[1].rpartition("@")[2]
        message["Message-ID"] = make_msgid(domain=domain or None)
        message.set_content(email.text)
        if email.html:
            message.add_alternative(email.html, subtype="html")
        context = ssl.create_default_context()  # both TLS modes verify the server's certificate
        smtp: smtplib.SMTP
        if conf.smtp_use_ssl:
            smtp = smtplib.SMTP_SSL(
                conf.smtp_host, conf.smtp_port, timeout=conf.smtp_timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(conf.smtp_host, conf.smtp_port, timeout=conf.smtp_timeout)
        with smtp:
            if conf.smtp_use_tls and not conf.smtp_use_ssl:
                smtp.starttls(context=context)
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


_USER_FIELDS = ("id", "name", "email", "email_verified", "image", "created_at", "updated_at")


def _addressed_to(user: User, email: str) -> User:
    """A detached copy of ``user`` with another address (never added to the database)."""
    return User(
        id=user.id,
        name=user.name,
        email=email,
        email_verified=user.email_verified,
        image=user.image,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


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

    def render(
        self, kind: str, *, user: User, to: str, url: str, token: str, new_email: str | None = None
    ) -> Email:
        """Build the message from the templates (the app's own first)."""
        context = {
            "user": user,
            "url": url,
            "token": token,
            "to": to,
            "new_email": new_email,
            "app_name": self.settings.app_name,
        }
        text = render_template(f"better_auth/email/{kind}.txt", **context)
        try:
            html: str | None = render_template(f"better_auth/email/{kind}.html", **context)
        except TemplateNotFound:
            html = None
        subject = self.settings.subjects.get(kind, kind).format(app_name=self.settings.app_name)
        return Email(kind, to, subject, text, html, url, token, user)

    def send(
        self,
        kind: str,
        *,
        user: User,
        url: str,
        token: str,
        to: str | None = None,
        new_email: str | None = None,
    ) -> None:
        """Hand one message over for delivery after the response (see :meth:`deliver`).

        In a request, the message is delivered once the response has been sent (the WSGI
        server closes it), in this request's order, within an app context (no request
        context); with ``app.testing``, when the response is finalised (so a test reads the
        outbox right after the test client returns). Outside a request (a CLI command, a
        job), it is delivered now.

        What happens here before the answer is kept small and fixed (the unknown-address
        paths skip it): rendering and delivery come after.
        """
        # The user's values, not the row: the request's database session is gone by then.
        values = {name: getattr(user, name) for name in _USER_FIELDS}
        job = partial(
            self._deliver_copy, kind, values, url=url, token=token, to=to, new_email=new_email
        )
        if not has_request_context():
            job()
            return
        pending: list[Callable[[], bool]] | None = g.get("_better_auth_mail")
        if pending is None:
            pending = g._better_auth_mail = []
            after_this_request(partial(_hand_over, pending))
        pending.append(job)

    def _deliver_copy(self, kind: str, values: dict[str, Any], **kwargs: Any) -> bool:
        return self.deliver(kind, user=User(**values), **kwargs)

    def deliver(
        self,
        kind: str,
        *,
        user: User,
        url: str,
        token: str,
        to: str | None = None,
        new_email: str | None = None,
    ) -> bool:
        """Deliver one message now; failures are logged, never raised. Returns success.

        :param to: the address, when not ``user.email`` (a change of email verifies the new
            one: callbacks then get the user with that address, as in Better Auth).
        :param new_email: the address a change-of-email confirmation asks to approve.
        """
        try:
            callback = self.callbacks.get(kind)
            if callback is not None:
                recipient = user if not to or to == user.email else _addressed_to(user, to)
                extra = {"new_email": new_email} if new_email is not None else {}
                callback(user=recipient, url=url, token=token, **extra)
                return True
            email = self.render(
                kind, user=user, to=to or user.email, url=url, token=token, new_email=new_email
            )
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


def _deliver_all(jobs: list[Callable[[], bool]]) -> None:
    for job in jobs:
        job()  # each logs its own failure


def _deliver_in(app: Flask, jobs: list[Callable[[], bool]]) -> None:
    with app.app_context():  # templates and callbacks see current_app as usual
        _deliver_all(jobs)


def _hand_over(jobs: list[Callable[[], bool]], response: Response) -> Response:
    """``after_this_request``: deliver the request's messages once the response is sent."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.testing:
        _deliver_all(jobs)
    else:
        response.call_on_close(partial(_deliver_in, app, jobs))
    return response

"""Email settings: the backend, sender, subjects, SMTP (Flask-Mail's ``MAIL_*`` as fallbacks)
and the email flows' options (Better Auth's ``emailVerification`` and ``emailAndPassword``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from email.utils import formataddr
from typing import Any

from ..config import ConfigError, ConfigReader, Keys, as_bool, as_int

#: Default subject lines; ``{app_name}`` is replaced by ``BETTER_AUTH_APP_NAME``.
EMAIL_SUBJECTS = {
    "verification": "Verify your email address for {app_name}",
    "reset-password": "Reset your {app_name} password",
    "change-email-confirmation": "Approve the change of your {app_name} email address",
    "delete-account": "Confirm the deletion of your {app_name} account",
}

_EMAIL_BACKENDS = ("console", "outbox", "smtp")


@dataclass(frozen=True)
class EmailSettings:
    """Email delivery and the email flows (verification, reset, change of email, deletion)."""

    backend: str | None
    outbox: str | None
    sender: str
    app_name: str
    subjects: Mapping[str, str]
    smtp_host: str
    smtp_port: int
    smtp_username: str | None
    smtp_password: str | None
    smtp_use_tls: bool
    smtp_use_ssl: bool
    smtp_timeout: float
    verification_expires_in: timedelta
    send_on_sign_up: bool
    send_on_sign_in: bool
    auto_sign_in_after_verification: bool
    reset_password_token_expires_in: timedelta
    revoke_sessions_on_password_reset: bool
    change_email_enabled: bool
    update_email_without_verification: bool
    send_change_email_confirmation: bool
    send_delete_account_verification: bool
    delete_token_expires_in: timedelta


#: The keys of email delivery and of the email flows.
KEYS = Keys(
    {
        "APP_NAME": "Better Auth",
        "EMAIL_BACKEND": None,
        "EMAIL_OUTBOX": None,
        "EMAIL_FROM": None,
        "EMAIL_SUBJECTS": {},
        "SMTP_HOST": None,
        "SMTP_PORT": None,
        "SMTP_USERNAME": None,
        "SMTP_PASSWORD": None,
        "SMTP_USE_TLS": None,
        "SMTP_USE_SSL": None,
        "SMTP_TIMEOUT": 10,
        "EMAIL_VERIFICATION_EXPIRES_IN": timedelta(hours=1),
        "SEND_VERIFICATION_EMAIL_ON_SIGN_UP": None,
        "SEND_VERIFICATION_EMAIL_ON_SIGN_IN": False,
        "AUTO_SIGN_IN_AFTER_VERIFICATION": False,
        "RESET_PASSWORD_TOKEN_EXPIRES_IN": timedelta(hours=1),
        "REVOKE_SESSIONS_ON_PASSWORD_RESET": False,
        "CHANGE_EMAIL_ENABLED": False,
        "UPDATE_EMAIL_WITHOUT_VERIFICATION": False,
        "SEND_CHANGE_EMAIL_CONFIRMATION": False,
        "SEND_DELETE_ACCOUNT_VERIFICATION": False,
        "DELETE_TOKEN_EXPIRES_IN": timedelta(days=1),
    },
    owner="email",
)


def email_settings(
    cfg: ConfigReader, *, debug: bool, instance_path: str, kinds: Mapping[str, str] | None = None
) -> EmailSettings:
    """Read the email keys (and Flask-Mail's ``MAIL_*`` where ours are unset).

    :param kinds: the app's plugins' email kinds and their default subjects.

    Also reads the core's ``BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION``, which turns on sending on
    sign-up unless ``BETTER_AUTH_SEND_VERIFICATION_EMAIL_ON_SIGN_UP`` says otherwise.
    """
    backend = cfg.raw("EMAIL_BACKEND") or ("console" if debug else None)
    if backend is not None and backend not in _EMAIL_BACKENDS:
        raise ConfigError(
            f"BETTER_AUTH_EMAIL_BACKEND must be one of {', '.join(_EMAIL_BACKENDS)}"
            f" (or unset), not {backend!r}."
        )
    outbox = cfg.raw("EMAIL_OUTBOX")
    if outbox:
        outbox = os.path.join(instance_path, str(outbox))
    elif backend == "outbox":
        outbox = os.path.join(instance_path, "outbox.jsonl")
    subjects = cfg.raw("EMAIL_SUBJECTS") or {}
    if not isinstance(subjects, Mapping):
        raise ConfigError("BETTER_AUTH_EMAIL_SUBJECTS must be a mapping of kind to subject line.")
    defaults = {**EMAIL_SUBJECTS, **(kinds or {})}
    unknown = set(subjects) - set(defaults)
    if unknown:
        raise ConfigError(
            f"BETTER_AUTH_EMAIL_SUBJECTS has unknown kinds {sorted(unknown)}:"
            f" use {', '.join(defaults)}."
        )

    def smtp(name: str, mail_key: str, default: Any) -> Any:
        # Flask-Mail's MAIL_* keys are read when the BETTER_AUTH_SMTP_* key is unset.
        value = cfg.raw(f"SMTP_{name}")
        return value if value is not None else cfg.config.get(mail_key, default)

    use_ssl = as_bool("BETTER_AUTH_SMTP_USE_SSL", smtp("USE_SSL", "MAIL_USE_SSL", False))
    send_on_sign_up = cfg.optional_bool("SEND_VERIFICATION_EMAIL_ON_SIGN_UP")
    return EmailSettings(
        backend=backend,
        outbox=outbox,
        sender=_address(cfg.raw("EMAIL_FROM") or cfg.config.get("MAIL_DEFAULT_SENDER"))
        or "no-reply@localhost",
        app_name=cfg.str("APP_NAME"),
        subjects={**defaults, **subjects},
        smtp_host=str(smtp("HOST", "MAIL_SERVER", "localhost")),
        smtp_port=as_int(
            "BETTER_AUTH_SMTP_PORT", smtp("PORT", "MAIL_PORT", 465 if use_ssl else 25)
        ),
        smtp_username=smtp("USERNAME", "MAIL_USERNAME", None),
        smtp_password=smtp("PASSWORD", "MAIL_PASSWORD", None),
        smtp_use_tls=as_bool("BETTER_AUTH_SMTP_USE_TLS", smtp("USE_TLS", "MAIL_USE_TLS", False)),
        smtp_use_ssl=use_ssl,
        smtp_timeout=cfg.duration("SMTP_TIMEOUT").total_seconds(),
        verification_expires_in=cfg.duration("EMAIL_VERIFICATION_EXPIRES_IN"),
        send_on_sign_up=(
            cfg.bool("REQUIRE_EMAIL_VERIFICATION") if send_on_sign_up is None else send_on_sign_up
        ),
        send_on_sign_in=cfg.bool("SEND_VERIFICATION_EMAIL_ON_SIGN_IN"),
        auto_sign_in_after_verification=cfg.bool("AUTO_SIGN_IN_AFTER_VERIFICATION"),
        reset_password_token_expires_in=cfg.duration("RESET_PASSWORD_TOKEN_EXPIRES_IN"),
        revoke_sessions_on_password_reset=cfg.bool("REVOKE_SESSIONS_ON_PASSWORD_RESET"),
        change_email_enabled=cfg.bool("CHANGE_EMAIL_ENABLED"),
        update_email_without_verification=cfg.bool("UPDATE_EMAIL_WITHOUT_VERIFICATION"),
        send_change_email_confirmation=cfg.bool("SEND_CHANGE_EMAIL_CONFIRMATION"),
        send_delete_account_verification=cfg.bool("SEND_DELETE_ACCOUNT_VERIFICATION"),
        delete_token_expires_in=cfg.duration("DELETE_TOKEN_EXPIRES_IN"),
    )


def _address(value: Any) -> str:
    """A sender as a header value: Flask-Mail also allows a ``(name, address)`` pair."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return formataddr((str(value[0]), str(value[1])))
    return str(value or "")


__all__ = ["EMAIL_SUBJECTS", "KEYS", "EmailSettings", "email_settings"]

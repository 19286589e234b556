"""The links emails carry: the auth routes' public URL, and email verification links."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .models import User
from .state import settings, state
from .tokens import sign_jwt


def auth_url() -> str:
    """The full URL of the auth routes (base URL + base path), for links in emails.

    Only ever from ``BETTER_AUTH_BASE_URL``: the request's ``Host`` or ``X-Forwarded-Host`` is
    the client's to choose, and a reset link pointing at an attacker's host leaks the token.
    """
    conf = settings()
    return conf.base_url + conf.base_path


def verification_link(claims: dict[str, Any], callback_url: str | None) -> tuple[str, str]:
    """A verification email's ``(url, token)``: ``…/verify-email?token=<jwt>&callbackURL=…``."""
    conf = settings()
    token = sign_jwt(claims, conf.secret, int(conf.email.verification_expires_in.total_seconds()))
    url = (
        f"{auth_url()}/verify-email?token={token}&callbackURL={quote(callback_url or '/', safe='')}"
    )
    return url, token


def send_verification(user: User, callback_url: str | None, *, to: str | None = None) -> None:
    """Email ``user`` (or ``to``) a link that verifies the address (after the response)."""
    address = (to or user.email).lower()
    url, token = verification_link({"email": address, "userId": user.id}, callback_url)
    state().mailer.send("verification", user=user, url=url, token=token, to=address)


__all__ = ["auth_url", "send_verification", "verification_link"]

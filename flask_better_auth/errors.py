"""AuthError and Better Auth's error-code table; errors render as ``{"message", "code"}``."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response

#: Better Auth 1.7's core error codes and their messages (``packages/core/src/error/codes.ts``),
#: plus the ad-hoc codes its core routes use.
ERROR_CODES: dict[str, str] = {
    "USER_NOT_FOUND": "User not found",
    "FAILED_TO_CREATE_USER": "Failed to create user",
    "FAILED_TO_CREATE_SESSION": "Failed to create session",
    "FAILED_TO_UPDATE_USER": "Failed to update user",
    "FAILED_TO_GET_SESSION": "Failed to get session",
    "INVALID_PASSWORD": "Invalid password",
    "INVALID_EMAIL": "Invalid email",
    "INVALID_EMAIL_OR_PASSWORD": "Invalid email or password",
    "INVALID_USER": "Invalid user",
    "SOCIAL_ACCOUNT_ALREADY_LINKED": "Social account already linked",
    "PROVIDER_NOT_FOUND": "Provider not found",
    "INVALID_TOKEN": "Invalid token",
    "ID_TOKEN_NOT_SUPPORTED": "id_token not supported",
    "FAILED_TO_GET_USER_INFO": "Failed to get user info",
    "USER_EMAIL_NOT_FOUND": "User email not found",
    "TOKEN_EXPIRED": "Token expired",
    "EMAIL_NOT_VERIFIED": "Email not verified",
    "PASSWORD_TOO_SHORT": "Password too short",
    "PASSWORD_TOO_LONG": "Password too long",
    "USER_ALREADY_EXISTS": "User already exists.",
    "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL": "User already exists. Use another email.",
    "EMAIL_CAN_NOT_BE_UPDATED": "Email can not be updated",
    "CHANGE_EMAIL_DISABLED": "Change email is disabled",
    "CREDENTIAL_ACCOUNT_NOT_FOUND": "Credential account not found",
    "SESSION_EXPIRED": "Session expired. Re-authenticate to perform this action.",
    "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED": (
        "Cross-site navigation login blocked. This request appears to be a CSRF attack."
    ),
    "FAILED_TO_UNLINK_LAST_ACCOUNT": "You can't unlink your last account",
    "ACCOUNT_NOT_FOUND": "Account not found",
    "REFRESH_TOKEN_NOT_FOUND": "Refresh token not found",
    "FAILED_TO_REFRESH_ACCESS_TOKEN": "Failed to refresh access token",
    "USER_ALREADY_HAS_PASSWORD": (
        "User already has a password. Provide that to delete the account."
    ),
    "VERIFICATION_EMAIL_NOT_ENABLED": "Verification email isn't enabled",
    "EMAIL_ALREADY_VERIFIED": "Email is already verified",
    "EMAIL_MISMATCH": "Email mismatch",
    "SESSION_NOT_FRESH": "Session is not fresh",
    "LINKED_ACCOUNT_ALREADY_EXISTS": "Linked account already exists",
    "INVALID_ORIGIN": "Invalid origin",
    "INVALID_CALLBACK_URL": "Invalid callbackURL",
    "INVALID_REDIRECT_URL": "Invalid redirectURL",
    "INVALID_ERROR_CALLBACK_URL": "Invalid errorCallbackURL",
    "INVALID_NEW_USER_CALLBACK_URL": "Invalid newUserCallbackURL",
    "MISSING_OR_NULL_ORIGIN": "Missing or null Origin",
    "CALLBACK_URL_REQUIRED": "callbackURL is required",
    "FAILED_TO_CREATE_VERIFICATION": "Unable to create verification",
    "FIELD_NOT_ALLOWED": "Field not allowed to be set",
    "ASYNC_VALIDATION_NOT_SUPPORTED": "Async validation is not supported",
    "VALIDATION_ERROR": "Validation Error",
    "MISSING_FIELD": "Field is required",
    "METHOD_NOT_ALLOWED_DEFER_SESSION_REQUIRED": (
        "POST method requires deferSessionRefresh to be enabled in session config"
    ),
    "BODY_MUST_BE_AN_OBJECT": "Body must be an object",
    "PASSWORD_ALREADY_SET": "User already has a password set",
    "RESET_PASSWORD_DISABLED": "Reset password isn't enabled",
    "UNAUTHORIZED": "Unauthorized",
    "EMAIL_PASSWORD_DISABLED": "Email and password is not enabled",
    "EMAIL_PASSWORD_SIGN_UP_DISABLED": "Email and password sign up is not enabled",
    "INTERNAL_SERVER_ERROR": "Internal Server Error",
    "NOT_FOUND": "Not found",
    "BAD_REQUEST": "Invalid JSON in request body",
    "UNSUPPORTED_MEDIA_TYPE": "Unsupported media type",
    "PAYLOAD_TOO_LARGE": "Request body is too large",
    "SERVICE_UNAVAILABLE": "Service temporarily unavailable",
}


class AuthError(Exception):
    """An error answered as Better Auth answers it: a status and ``{"message", "code"}``.

    :param status: the HTTP status code.
    :param code: a key of :data:`ERROR_CODES` (or any other code string).
    :param message: overrides the table's message for ``code``.
    :param body: ``False`` for the errors Better Auth answers with an empty body.
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str | None = None,
        *,
        body: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message if message is not None else ERROR_CODES.get(code or "", code or "")
        self.body = body
        self.headers = headers or {}
        super().__init__(f"{status} {code}: {self.message}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON body: ``message`` first, then ``code`` (when there is one)."""
        data: dict[str, Any] = {"message": self.message}
        if self.code is not None:
            data["code"] = self.code
        return data

    def to_response(self) -> Response:
        """Render as a Flask response."""
        body = json.dumps(self.to_dict(), separators=(",", ":")) if self.body else ""
        response = Response(body, status=self.status, mimetype="application/json")
        for key, value in self.headers.items():
            response.headers[key] = value
        return response


# The database's own words for "that table does not exist" (SQLite's OperationalError, and
# PostgreSQL's UndefinedTable, SQLSTATE 42P01, whose text may be translated: then the code says).
_NO_SUCH_TABLE = re.compile(
    r'^no such table: (?:\w+\.)?(\S+)|^relation "(?:\w+\.)?([^"]+)" does not exist'
)
_UNDEFINED_TABLE = "42P01"


def missing_table(error: BaseException) -> str | None:
    """What to log when a database error says a table is missing, else ``None``.

    A request against a database whose tables were never made fails this way; the message
    names the table and the command that makes it, instead of "database unavailable".

    :param error: a SQLAlchemy ``DBAPIError`` (its ``orig`` is the driver's error).
    """
    orig = getattr(error, "orig", None)
    if orig is None:
        return None
    match = _NO_SUCH_TABLE.match(str(orig))
    if match is None and getattr(orig, "sqlstate", None) != _UNDEFINED_TABLE:
        return None
    table = next((name for name in match.groups() if name), "") if match else ""
    return f"table {table or '(unnamed)'} is missing: run `flask better-auth migrate`"

"""Every error the package raises has Better Auth's message for its code."""

from __future__ import annotations

import re
from pathlib import Path

from flask_better_auth.errors import ERROR_CODES, AuthError

PACKAGE = Path(__file__).resolve().parent.parent / "flask_better_auth"


def test_every_raised_code_has_a_message_in_the_table() -> None:
    raised: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        # AuthError(status, "CODE") without an explicit message takes the table's.
        raised |= set(re.findall(r'AuthError\(\s*\d+,\s*"([A-Z_]+)"\s*[,)]', source))
    assert raised, "no AuthError found: the pattern is stale"
    assert sorted(code for code in raised if code not in ERROR_CODES) == []


def test_core_codes_match_better_auth() -> None:
    # Spot checks against packages/core/src/error/codes.ts (better-auth 1.7.25).
    assert ERROR_CODES["EMAIL_ALREADY_VERIFIED"] == "Email is already verified"
    assert ERROR_CODES["VERIFICATION_EMAIL_NOT_ENABLED"] == "Verification email isn't enabled"
    assert ERROR_CODES["USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL"] == (
        "User already exists. Use another email."
    )


def test_error_body_key_order_is_message_then_code() -> None:
    response = AuthError(400, "EMAIL_MISMATCH").to_response()
    assert response.get_data() == b'{"message":"Email mismatch","code":"EMAIL_MISMATCH"}'
    assert AuthError(400, None, "No fields to update").to_response().get_data() == (
        b'{"message":"No fields to update"}'
    )

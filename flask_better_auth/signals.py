"""Blinker signals, sent with ``sender=app``.

Connect with ``user_signed_in.connect(fn, app)``; receivers get the keyword arguments listed
for each signal.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A user was created by sign-up. Keyword arguments: ``user``.
user_signed_up = _signals.signal("user-signed-up")
#: A session was created for a user (sign-in, or sign-up with auto sign-in): ``user``, ``session``.
user_signed_in = _signals.signal("user-signed-in")
#: Sign-out with a session token: ``user_id`` (``None`` when that session no longer existed).
user_signed_out = _signals.signal("user-signed-out")
#: Sessions were deleted (sign-out, revoke-session, revoke-sessions, revoke-other-sessions,
#: change-password with ``revokeOtherSessions``): ``user_id``, ``tokens`` (the revoked tokens,
#: or ``None`` for "every session" / "every other session"). Not sent by delete-user.
session_revoked = _signals.signal("session-revoked")
#: A user's email address was verified by following the emailed link: ``user``.
email_verified = _signals.signal("email-verified")
#: A user set a new password with a reset link: ``user``.
password_reset = _signals.signal("password-reset")
#: A provider's account was linked to a user (implicitly at sign-in, or by ``/link-social``):
#: ``user``, ``provider_id``.
account_linked = _signals.signal("account-linked")
#: An account was removed by ``/unlink-account``: ``user``, ``provider_id``.
account_unlinked = _signals.signal("account-unlinked")

"""Blinker signals, sent with ``sender=app``.

Connect with ``user_signed_in.connect(fn, app)``; receivers get ``user`` (and ``session``).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A user was created by sign-up. Keyword arguments: ``user``.
user_signed_up = _signals.signal("user-signed-up")
#: A session was created for a user (sign-in, or sign-up with auto sign-in): ``user``, ``session``.
user_signed_in = _signals.signal("user-signed-in")
#: The request's session was ended by sign-out: ``user`` (or ``None``), ``session`` (or ``None``).
user_signed_out = _signals.signal("user-signed-out")
#: Sessions were revoked (revoke-session(s), password change, deletion): ``user``, ``tokens``.
session_revoked = _signals.signal("session-revoked")

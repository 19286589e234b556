"""Passwords (Better Auth's scrypt format), random ids and tokens, HMAC signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Iterable

#: Better Auth's scrypt cost. Hashes made with another N do not verify anywhere else.
SCRYPT_N = 16384

_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_SCRYPT_R = 16
_SCRYPT_P = 1
_SCRYPT_DKLEN = 64


def generate_id(length: int = 32, alphabet: str = _ALPHANUMERIC) -> str:
    """A cryptographically random string, 32 characters of ``[A-Za-z0-9]`` by default."""
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _scrypt(password: str, salt_hex: str, n: int) -> bytes:
    return hashlib.scrypt(
        unicodedata.normalize("NFKC", password).encode(),
        salt=salt_hex.encode(),
        n=n,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=128 * n * _SCRYPT_R * 2 + 1024 * 1024,
        dklen=_SCRYPT_DKLEN,
    )


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    """Hash a password exactly as Better Auth does: ``"<32 hex salt>:<128 hex key>"``.

    The salt is 16 random bytes written as hex, and the hex string itself is the scrypt salt.

    :param password: the password (NFKC-normalised before hashing).
    :param n: the scrypt cost; only tests lower it.
    """
    salt_hex = secrets.token_hex(16)
    return f"{salt_hex}:{_scrypt(password, salt_hex, n).hex()}"


def verify_password(password_hash: str, password: str, *, n: int = SCRYPT_N) -> bool:
    """Check a password against a Better Auth hash, in constant time.

    :param password_hash: ``"<salt>:<key>"`` as stored in the credential account.
    :param password: the password to check.
    """
    salt_hex, sep, key_hex = (password_hash or "").partition(":")
    if not sep or not salt_hex or not key_hex:
        return False
    try:
        candidate = _scrypt(password, salt_hex, n).hex()
    except (ValueError, UnicodeError):
        return False
    return hmac.compare_digest(candidate.encode(), key_hex.lower().encode())


def burn_password_check(password: str, *, n: int = SCRYPT_N) -> None:
    """Spend the time of one password check, so a missing user answers as slowly as a real one.

    Exactly one scrypt with the real parameters, as :func:`verify_password` runs for a real
    user. The key compared with is all zeros (which no password matches in practice) rather
    than a hash made on first use: that would cost the first call of a process a second scrypt.
    """
    verify_password(f"{secrets.token_hex(16)}:{'0' * 2 * _SCRYPT_DKLEN}", password, n=n)


def hmac_signature(secret: str, value: str) -> str:
    """Standard base64 (padded) HMAC-SHA256 of ``value``: the signature Better Auth appends."""
    digest = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign_value(secret: str, value: str) -> str:
    """``value + "." + signature`` (not yet URL-encoded)."""
    return f"{value}.{hmac_signature(secret, value)}"


def unsign_value(signed: str, secrets_: Iterable[str]) -> str | None:
    """Return the value of a ``value.signature`` string if any secret verifies it, else ``None``.

    Like Better Auth, the signature is what follows the last ``.`` and must be 44 characters
    ending in ``=``; every secret (current first, then fallbacks) is tried in constant time.
    """
    value, sep, signature = signed.rpartition(".")
    if not sep or not value or len(signature) != 44 or not signature.endswith("="):
        return None
    valid = False
    for secret in secrets_:
        # No early exit: the time does not tell which key matched.
        valid |= hmac.compare_digest(hmac_signature(secret, value).encode(), signature.encode())
    return value if valid else None

"""``BETTER_AUTH_ENCRYPT_OAUTH_TOKENS``: Better Auth's ``symmetricEncrypt`` format, so a
database shared with a JavaScript deployment stays readable both ways.

The value is hex of ``nonce (24 bytes) || ciphertext || tag``: XChaCha20-Poly1305 (noble's
``managedNonce(xchacha20poly1305)``) under the key SHA-256(secret), no associated data. The
cipher is libsodium's (PyNaCl's ``crypto_aead_xchacha20poly1305_ietf_*``): nothing of it is
written here.
"""

from __future__ import annotations

import hashlib
import os
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
NONCE_SIZE = 24
TAG_SIZE = 16


def _key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def encrypt(secret: str, data: str) -> str:
    """Better Auth's ``symmetricEncrypt({key: secret, data})``."""
    nonce = os.urandom(NONCE_SIZE)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(data.encode(), None, nonce, _key(secret))
    return (nonce + sealed).hex()


def purpose_key(secret: str, purpose: str) -> str:
    """Better Auth's ``derivePurposeKey``: an isolated key per ciphertext purpose, so a value
    sealed for one use (a link's session token) cannot be replayed as another (an OAuth token).

    HKDF-SHA256 over the secret, salt ``better-auth:oauth-encryption:v1``, info
    ``better-auth:<purpose>:v1``, 32 bytes, as hex (then used as a ``symmetricEncrypt`` key).
    """
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"better-auth:oauth-encryption:v1",
        info=f"better-auth:{purpose}:v1".encode(),
    )
    return hkdf.derive(secret.encode()).hex()


def open_sealed(secrets: tuple[str, ...], value: str) -> str | None:
    """Strict ``symmetricDecrypt``: the plaintext, or ``None`` when no key opens ``value``."""
    if not _HEX.fullmatch(value) or len(value) < 2 * (NONCE_SIZE + TAG_SIZE):
        return None
    raw = bytes.fromhex(value)
    nonce, sealed = raw[:NONCE_SIZE], raw[NONCE_SIZE:]
    for secret in secrets:
        try:
            plain = crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, None, nonce, _key(secret))
            return plain.decode()
        except (CryptoError, UnicodeDecodeError):
            continue
    return None


def decrypt(secrets: tuple[str, ...], value: str) -> str:
    """Better Auth's ``symmetricDecrypt``, trying each secret (current first).

    A value that is not hex is returned as is: a token stored before encryption was turned on
    (Better Auth's ``isLikelyEncrypted``).
    """
    plain = open_sealed(secrets, value)
    return value if plain is None else plain


__all__ = ["decrypt", "encrypt", "open_sealed", "purpose_key"]

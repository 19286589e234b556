"""``BETTER_AUTH_ENCRYPT_OAUTH_TOKENS``: Better Auth's ``symmetricEncrypt`` format, so a
database shared with a JavaScript deployment stays readable both ways.

The value is hex of ``nonce (24 bytes) || ciphertext || tag``: XChaCha20-Poly1305 (noble's
``managedNonce(xchacha20poly1305)``) under the key SHA-256(secret). XChaCha20 is HChaCha20 (a
sub-key from the key and the nonce's first 16 bytes) then the IETF ChaCha20-Poly1305 of
``cryptography`` with the nonce ``0000 || nonce[16:]`` (draft-irtf-cfrg-xchacha).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

_MASK = 0xFFFFFFFF
_SIGMA = struct.unpack("<4I", b"expand 32-byte k")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) & _MASK) | (value >> (32 - shift))


def _quarter(s: list[int], a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & _MASK
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & _MASK
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & _MASK
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & _MASK
    s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """The HChaCha20 sub-key of ``key`` (32 bytes) and ``nonce16`` (16 bytes)."""
    state = [*_SIGMA, *struct.unpack("<8I", key), *struct.unpack("<4I", nonce16)]
    for _ in range(10):
        _quarter(state, 0, 4, 8, 12)
        _quarter(state, 1, 5, 9, 13)
        _quarter(state, 2, 6, 10, 14)
        _quarter(state, 3, 7, 11, 15)
        _quarter(state, 0, 5, 10, 15)
        _quarter(state, 1, 6, 11, 12)
        _quarter(state, 2, 7, 8, 13)
        _quarter(state, 3, 4, 9, 14)
    return struct.pack("<8I", *state[0:4], *state[12:16])


def _aead(secret: str, nonce: bytes) -> tuple[ChaCha20Poly1305, bytes]:
    key = hashlib.sha256(secret.encode()).digest()
    return ChaCha20Poly1305(hchacha20(key, nonce[:16])), b"\0\0\0\0" + nonce[16:]


def encrypt(secret: str, data: str) -> str:
    """Better Auth's ``symmetricEncrypt({key: secret, data})``."""
    nonce = os.urandom(24)
    aead, inner = _aead(secret, nonce)
    return (nonce + aead.encrypt(inner, data.encode(), None)).hex()


def decrypt(secrets: tuple[str, ...], value: str) -> str:
    """Better Auth's ``symmetricDecrypt``, trying each secret (current first).

    A value that is not hex is returned as is: a token stored before encryption was turned on
    (Better Auth's ``isLikelyEncrypted``).
    """
    if not _HEX.fullmatch(value) or len(value) < 2 * (24 + 16):
        return value
    raw = bytes.fromhex(value)
    for secret in secrets:
        aead, inner = _aead(secret, raw[:24])
        try:
            return aead.decrypt(inner, raw[24:], None).decode()
        except (InvalidTag, UnicodeDecodeError):
            continue
    return value


__all__ = ["decrypt", "encrypt", "hchacha20"]

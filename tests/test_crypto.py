"""Passwords and signatures are Better Auth's, byte for byte (vectors from the real JS server)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path

import pytest

from flask_better_auth.cookies import encode_signed
from flask_better_auth.crypto import (
    generate_id,
    hash_password,
    hmac_signature,
    unsign_value,
    verify_password,
)
from flask_better_auth.settings import SCRYPT_N

PEER = json.loads((Path(__file__).parent / "fixtures" / "peer-better-auth.json").read_text())


def test_js_hash_verifies_with_real_scrypt_parameters() -> None:
    # A hash written by better-auth 1.7.25 (N=16384, r=16, p=1, dkLen=64, hex salt as bytes).
    assert verify_password(PEER["passwordHash"], PEER["password"], n=SCRYPT_N)
    assert not verify_password(PEER["passwordHash"], PEER["password"] + "x", n=SCRYPT_N)


def _scrypt_hex(password: str, salt_hex: str, n: int) -> str:
    """Better Auth's key derivation, written out with the standard library: NFKC password, the
    salt's hex *string* as the salt, r=16, p=1, 64 bytes."""
    password = unicodedata.normalize("NFKC", password)
    key = hashlib.scrypt(
        password.encode(), salt=salt_hex.encode(), n=n, r=16, p=1, dklen=64, maxmem=64 * 2**20
    )
    return key.hex()


def test_js_hash_is_the_known_scrypt_vector() -> None:
    salt, key = PEER["passwordHash"].split(":")
    assert _scrypt_hex(PEER["password"], salt, SCRYPT_N) == key


def test_our_hash_has_better_auths_format_and_round_trips() -> None:
    stored = hash_password("pässwörd-ﬁ", n=SCRYPT_N)
    assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]{128}", stored), stored
    salt, key = stored.split(":")
    # The key is scrypt's over the salt as written, for the NFKC form ("ﬁ" ligature → "fi").
    assert key == _scrypt_hex("pässwörd-fi", salt, SCRYPT_N)
    assert verify_password(stored, "pässwörd-ﬁ", n=SCRYPT_N)
    # NFKC: the "ﬁ" ligature and "fi" are the same password, as in Better Auth.
    assert verify_password(stored, "pässwörd-fi", n=SCRYPT_N)
    assert not verify_password(stored, "password", n=SCRYPT_N)
    # A fresh random salt every time.
    assert hash_password("pässwörd-ﬁ", n=1024).split(":")[0] != salt


@pytest.mark.parametrize("bad", ["", "nocolon", ":", "zz:zz", "abc:"])
def test_malformed_hashes_never_verify(bad: str) -> None:
    assert not verify_password(bad, "anything", n=1024)


def test_cookie_signatures_match_the_js_server() -> None:
    for session in PEER["sessions"]:
        assert hmac_signature(PEER["secret"], session["token"]) == session["signature"]
        assert encode_signed(PEER["secret"], session["token"]) == session["cookieValue"]
        assert unsign_value(session["cookieValueDecoded"], [PEER["secret"]]) == session["token"]


def test_unsign_rejects_other_keys_and_shapes() -> None:
    signed = f"tok.{hmac_signature('a' * 32, 'tok')}"
    assert unsign_value(signed, ["b" * 32]) is None
    assert unsign_value(signed, ["b" * 32, "a" * 32]) == "tok"
    assert unsign_value("tok.short=", ["a" * 32]) is None
    assert unsign_value("no-dot", ["a" * 32]) is None


def test_generate_id_alphabet_and_length() -> None:
    ids = {generate_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 32 and i.isalnum() and i.isascii() for i in ids)


def test_verification_jwt_has_better_auths_shape() -> None:
    import base64

    from flask_better_auth.tokens import sign_jwt, verify_jwt

    secret = "s" * 40
    token = sign_jwt({"email": "ann@example.com", "userId": "u1"}, secret, 3600)
    header, payload, _ = token.split(".")

    def decode(part: str) -> dict[str, object]:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    assert decode(header) == {"alg": "HS256"}
    claims = decode(payload)
    assert claims["exp"] == claims["iat"] + 3600  # type: ignore[operator]
    assert verify_jwt(token, ["other" * 8, secret])["email"] == "ann@example.com"

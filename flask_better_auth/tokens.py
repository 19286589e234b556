"""Email-verification JWTs (HS256 with the secret, as Better Auth signs them) and URLs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import OctKey

from .errors import AuthError


def sign_jwt(claims: dict[str, Any], secret: str, expires_in: int) -> str:
    """A compact HS256 JWT over ``claims`` plus ``iat`` and ``exp`` (seconds).

    Byte for byte what Better Auth's ``signJWT`` writes: header ``{"alg":"HS256"}``, no ``typ``.
    """
    now = int(time.time())
    payload = json.dumps({**claims, "iat": now, "exp": now + expires_in}, separators=(",", ":"))
    return jws.serialize_compact({"alg": "HS256"}, payload, OctKey.import_key(secret.encode()))


def verify_jwt(token: str, secrets: Iterable[str]) -> dict[str, Any]:
    """The claims of a token signed with any of ``secrets``.

    :raises AuthError: ``TOKEN_EXPIRED`` when expired, ``INVALID_TOKEN`` otherwise.
    """
    registry = jwt.JWTClaimsRegistry(exp={"essential": True})
    for secret in secrets:
        try:
            decoded = jwt.decode(token, OctKey.import_key(secret.encode()), algorithms=["HS256"])
        except (JoseError, ValueError, TypeError):
            continue
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise AuthError(401, "TOKEN_EXPIRED") from None
        except JoseError:
            break
        return dict(decoded.claims)
    raise AuthError(401, "INVALID_TOKEN")

"""Request-body parsing and validation with Better Auth's error messages.

Validation errors read like Better Auth's (zod's): ``[body.email] Invalid email address``,
joined with ``"; "``, answered as ``400 VALIDATION_ERROR``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from flask import Request

from .errors import AuthError

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

# zod 4's email pattern. JavaScript's ``^…$`` (no ``m`` flag) spans the whole string, while
# Python's ``$`` also matches before a final "\n": the match must be ``fullmatch`` and ASCII
# only, so "ann@example.com\n" or a look-alike letter never names a second account.
EMAIL_RE = re.compile(
    r"(?!\.)(?!.*\.\.)([A-Za-z0-9_'+\-\.]*)[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9\-]*\.)+[A-Za-z]{2,}",
    re.ASCII,
)


def is_email(value: str) -> bool:
    """Whether ``value`` is an email address by zod's rule (what Better Auth accepts).

    Only ASCII letters, digits and ``_'+-.`` before the ``@``: no control character, space or
    Unicode look-alike, so lower-casing (as Better Auth stores emails) is the only
    normalisation two spellings of one address can need.
    """
    return len(value) <= 320 and EMAIL_RE.fullmatch(value) is not None


def js_type(value: Any) -> str:
    """The JavaScript type name zod reports for a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass(frozen=True)
class Field:
    """One body field: its name, JSON type, whether it is required, and an extra check."""

    name: str
    type: str = "string"  # "string" | "boolean" | "email"
    required: bool = False
    nullable: bool = False
    non_empty: bool = False


_MISSING = object()


def validate(body: Any, fields: tuple[Field, ...], where: str = "body") -> dict[str, Any]:
    """Check ``body`` against ``fields``; return only the known fields (others are ignored).

    :raises AuthError: ``400 VALIDATION_ERROR`` listing every problem.
    """
    if not isinstance(body, dict):
        raise AuthError(
            400,
            "VALIDATION_ERROR",
            f"[{where}] Invalid input: expected object, received {js_type(body)}",
        )
    issues: list[str] = []
    clean: dict[str, Any] = {}
    for spec in fields:
        value = body.get(spec.name, _MISSING)
        path = f"[{where}.{spec.name}]"
        if value is _MISSING:
            if spec.required:
                expected = "boolean" if spec.type == "boolean" else "string"
                issues.append(f"{path} Invalid input: expected {expected}, received undefined")
            continue
        if value is None and spec.nullable:
            clean[spec.name] = None
            continue
        expected = "boolean" if spec.type == "boolean" else "string"
        if js_type(value) != expected:
            issues.append(f"{path} Invalid input: expected {expected}, received {js_type(value)}")
            continue
        if spec.type == "email" and not is_email(value):
            issues.append(f"{path} Invalid email address")
            continue
        if spec.non_empty and value == "":
            issues.append(f"{path} Too small: expected string to have >=1 characters")
            continue
        clean[spec.name] = value
    if issues:
        raise AuthError(400, "VALIDATION_ERROR", "; ".join(issues))
    return clean


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _well_formed(value: Any) -> Any:
    """Replace lone surrogates (``"\\ud800"`` is valid JSON) by U+FFFD, as JavaScript's UTF-8
    encoding of such a string does; Python cannot encode them at all."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    if isinstance(value, dict):
        return {_well_formed(key): _well_formed(item) for key, item in value.items()}
    return value


def parse_body(request: Request, *, allow_form: bool, max_size: int) -> Any:
    """Parse the request body as Better Auth's router does.

    No body ⇒ ``{}``. A body needs an allowed content type (415), valid JSON (400
    ``BAD_REQUEST``) and at most ``max_size`` bytes (413).
    """
    if request.content_length is not None and request.content_length > max_size:
        raise AuthError(413, "PAYLOAD_TOO_LARGE")
    raw = (
        request.stream.read(max_size + 1) if request.content_length is None else request.get_data()
    )
    if len(raw) > max_size:
        raise AuthError(413, "PAYLOAD_TOO_LARGE")
    if not raw.strip():
        return {}
    allowed = [FORM, JSON] if allow_form else [JSON]
    mimetype = request.mimetype
    if not mimetype:
        raise AuthError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Type is required. Allowed types: {', '.join(allowed)}",
        )
    if mimetype not in allowed and not (mimetype.endswith("+json") and JSON in allowed):
        raise AuthError(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f'Content-Type "{mimetype}" is not allowed. Allowed types: {", ".join(allowed)}',
        )
    try:
        text = raw.decode("utf-8")
        if mimetype == FORM:
            return dict(parse_qsl(text, keep_blank_values=True))
        data = json.loads(text, parse_constant=_reject_constant)
        return _well_formed(data) if "\\u" in text else data
    except (ValueError, RecursionError):
        raise AuthError(400, "BAD_REQUEST", "Invalid JSON in request body") from None

"""``GET /ok`` (health) and ``GET /error`` (the error page OAuth flows land on)."""

from __future__ import annotations

import re
from html import escape
from typing import Any

from flask import Response, request

from ..endpoints import Endpoints

routes = Endpoints()

_ERROR_CODE = re.compile(r"^['A-Za-z0-9_-]+$")


@routes.endpoint("/ok", methods=("GET",))
def ok() -> Any:
    """Health check: ``{"ok": true}``."""
    return {"ok": True}


@routes.endpoint("/error", methods=("GET",))
def error_page() -> Response:
    """A small HTML page naming the error (``?error=&error_description=``)."""
    code = request.args.get("error", "")
    if not _ERROR_CODE.match(code):
        code = "UNKNOWN"
    description = escape(request.args.get("error_description", ""))
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Authentication error</title>"
        "</head><body><h1>Authentication error</h1>"
        f"<p>Error code: <code>{escape(code)}</code></p>"
        + (f"<p>{description}</p>" if description else "")
        + "</body></html>"
    )
    return Response(html, mimetype="text/html")

"""Sphinx configuration for flask-better-auth. Builds offline: no intersphinx, no network."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # import the package from the checkout when not installed

project = "flask-better-auth"
author = "flask-better-auth contributors"
copyright = "flask-better-auth contributors"

try:
    from flask_better_auth import __version__ as release
except ImportError:  # pragma: no cover - autodoc will report the real problem
    release = "0.1.0"
version = release

extensions = ["sphinx.ext.autodoc"]  # sphinx.ext.intersphinx stays off: builds run offline

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

nitpicky = False
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
pygments_style = "sphinx"

html_theme = "alabaster"
html_title = f"flask-better-auth {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Better Auth 1.7's HTTP API, sessions and cookies on Flask",
    "fixed_sidebar": True,
}

logger = logging.getLogger(__name__)


def _check_every_setting_is_documented(app: Sphinx) -> None:
    """Warn (an error under ``-W``) when a key of ``settings.DEFAULTS`` is missing from the docs.

    Keeps configuration.rst in step with the code as keys are added.
    """
    try:
        from flask_better_auth.settings import DEFAULTS
    except ImportError as exc:
        logger.warning("cannot import flask_better_auth.settings: %s", exc)
        return
    text = (HERE / "configuration.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"``(BETTER_AUTH_[A-Z0-9_]+)``", text))
    for key in DEFAULTS:
        if key not in documented:
            logger.warning("configuration.rst does not document %s (settings.DEFAULTS)", key)


def setup(app: Sphinx) -> None:
    app.connect("builder-inited", _check_every_setting_is_documented)

"""Page rendering shared by this app's routes.

Pages are rendered with vibetuner's templates, which look in this package's
``templates/`` first: a file there with the name of a framework template
(``base.html``, ``auth/login.html``, ``email/magic_link.txt`` ...) replaces the framework's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from vibetuner import render_page

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Built by `vibetuner css build` from styles/app.css (and by `vibetuner run dev` as you edit).
STATIC_DIR = Path(__file__).parent / "static"
# This app's translations (domain "messages"), on top of vibetuner's own.
LOCALES_DIR = Path(__file__).parent / "locales"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    *,
    block: str | None = None,
) -> HTMLResponse:
    """Render template ``name``; for an htmx request, only its ``block`` when given."""
    return render_page(request, name, context, status_code, block=block)

"""Page rendering shared by this app's routes.

Pages are rendered with vibetuner's templates, which look in this package's
``templates/`` first: a file there with the name of a framework template
(``auth/login.html``, ``email/magic_link.txt`` ...) replaces the framework's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from vibetuner import render_page

TEMPLATES_DIR = Path(__file__).parent / "templates"


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render template ``name`` with the request, the app name and ``context``."""
    return render_page(request, name, context, status_code)

"""Page rendering shared by this app's routes.

Pages are rendered with vibetuner's template environment, which looks in this
package's ``templates/`` first: a file there with the name of a framework template
(``auth/login.html``, ``email/magic_link.txt`` ...) replaces the framework's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from vibetuner.templating import app_environment

TEMPLATES_DIR = Path(__file__).parent / "templates"


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render template ``name`` with the request, the app name and ``context``."""
    values = {
        "request": request,
        "app_name": request.app.state.settings.app_name,
        **(context or {}),
    }
    html = app_environment(request.app).get_template(name).render(values)
    return HTMLResponse(html, status_code=status_code)

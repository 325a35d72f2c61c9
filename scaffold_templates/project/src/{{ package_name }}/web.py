"""Page rendering shared by this app's routes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """Render template ``name`` with the app name and ``context``."""
    values = {"app_name": request.app.state.settings.app_name, **(context or {})}
    return templates.TemplateResponse(request, name, values, status_code=status_code)

"""Pages and error answers: a rendered page for browsers, ``{"detail", "code"}`` for API clients."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from vibetuner.web.context import get_context
from vibetuner.web.session_auth import login_path, wants_html


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render the template ``name`` as a page (``app_name`` and ``title`` are always set)."""
    values = {"title": "", **(context or {})}
    return get_context(request).templates.render(request, name, values, status_code, headers)


def problem(
    request: Request,
    status_code: int,
    title: str,
    message: str,
    *,
    code: str | None = None,
    html: bool | None = None,
    headers: dict[str, str] | None = None,
    link: tuple[str, str] | None = None,
) -> Response:
    """An error answer: a page for browsers, ``{"detail": message, "code": code}`` otherwise.

    ``link`` is the page's way onward (default: back to the sign-in page, else home).
    """
    if html if html is not None else wants_html(request):
        if link is None:
            sign_in = login_path(request)
            link = (sign_in, "Back to sign-in") if sign_in else ("/", "Back to the home page")
        return render(
            request,
            "auth/message.html",
            {"title": title, "message": message, "link_url": link[0], "link_text": link[1]},
            status_code,
            headers,
        )
    body: dict[str, Any] = {"detail": message}
    if code is not None:
        body["code"] = code
    return JSONResponse(body, status_code=status_code, headers=headers)

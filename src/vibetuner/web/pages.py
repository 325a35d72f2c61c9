"""Pages and error answers: a rendered page for browsers, ``{"detail", "code"}`` for API clients.

htmx requests get what htmx can swap: :func:`render` with ``block=`` sends only that
block of the template (plus any waiting flash messages, out of band), and
:func:`problem` sends the error as a message in the page's ``#flashes`` region.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup

from vibetuner.i18n import N_, gettext
from vibetuner.request_id import current_request_id
from vibetuner.web.context import get_context
from vibetuner.web.flash import has_flashes
from vibetuner.web.htmx import htmx_details, is_htmx
from vibetuner.web.identity import login_path, wants_html

FLASH_REGION = "#flashes"
BACK_TO_SIGN_IN = N_("Back to sign-in")
BACK_HOME = N_("Back to the home page")


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    *,
    block: str | None = None,
) -> HTMLResponse:
    """Render the template ``name`` as a page (``app_name`` and ``title`` are always set).

    ``block`` names the part of the page an htmx request swaps in: such a request gets
    that block alone (a boosted or full-page htmx request still gets the page).
    """
    values = {"title": "", **(context or {})}
    templates = get_context(request).templates
    if block is not None and htmx_details(request).wants_fragment:
        response = templates.render(request, name, values, status_code, headers, blocks=[block])
        return with_flashes(request, response)
    return templates.render(request, name, values, status_code, headers)


def with_flashes(request: Request, response: HTMLResponse) -> HTMLResponse:
    """``response`` followed by the waiting flash messages, swapped out of band."""
    if not has_flashes(request):
        return response
    extra = get_context(request).templates.env.get_template("vibetuner/flashes_oob.html")
    html = Markup(extra.render(request=request))
    body = bytes(response.body) + str(html).encode()
    fresh = HTMLResponse(body, status_code=response.status_code, background=response.background)
    for key, value in response.headers.items():
        if key.lower() not in ("content-length", "content-type"):
            fresh.headers.append(key, value)
    return fresh


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
    values: dict[str, Any] | None = None,
) -> Response:
    """An error answer: a page for browsers, ``{"detail": message, "code": code}`` otherwise.

    People read ``title``, ``message`` and the link text in their language (each is
    looked up in the catalogs; ``%(name)s`` placeholders are filled from ``values``);
    API clients get the English ``message``. An htmx request gets the message in the
    page's flash region (``HX-Retarget``), keeping its status, so a failed swap never
    leaves a half-replaced page. ``link`` is the page's way onward (default: back to the
    sign-in page, else home).
    """
    if html if html is not None else wants_html(request):
        title = gettext(title)
        message = gettext(message) % values if values else gettext(message)
        if is_htmx(request):
            fragment = render(
                request,
                "vibetuner/error_flash.html",
                {"title": title, "message": message, "status_code": status_code},
                status_code,
                headers,
            )
            fragment.headers["HX-Retarget"] = FLASH_REGION
            fragment.headers["HX-Reswap"] = "beforeend"
            return fragment
        if link is None:
            sign_in = login_path(request)
            link = (sign_in, BACK_TO_SIGN_IN) if sign_in else ("/", BACK_HOME)
        link = (link[0], gettext(link[1]))
        return render(
            request,
            "error.html",
            {
                "title": title,
                "message": message,
                "link_url": link[0],
                "link_text": link[1],
                "status_code": status_code,
                "request_id": current_request_id(),
            },
            status_code,
            headers,
        )
    body: dict[str, Any] = {"detail": message % values if values else message}
    if code is not None:
        body["code"] = code
    request_id = current_request_id()
    if status_code >= 500 and request_id is not None:
        body["request_id"] = request_id  # for the client to quote when reporting it
    return JSONResponse(body, status_code=status_code, headers=headers)

"""HTMX in routes: what the request says about itself, and the response headers htmx reads.

Request side (a dependency)::

    @router.get("/notes")
    async def notes(request: Request, htmx: Htmx) -> Response:
        if htmx:  # an htmx request, not a normal navigation
            ...

Response side: each helper sets one ``HX-*`` header on a response and returns it, so
they chain: ``hx_trigger(hx_reswap(response, "outerHTML"), "saved", {"id": 3})``.
Header names and values follow htmx 4 (``HX-Source`` is the element that sent the
request, written ``tag#id``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

from fastapi import Depends, Request
from starlette.responses import Response

R = TypeVar("R", bound=Response)


@dataclass(frozen=True)
class HtmxDetails:
    """What an htmx request says about itself; falsy for a normal request."""

    request: bool = False
    boosted: bool = False
    #: ``tag#id`` of the element the response will be swapped into.
    target: str | None = None
    #: ``tag#id`` of the element that sent the request.
    source: str | None = None
    current_url: str | None = None
    #: ``"partial"`` or ``"full"`` (the whole body is the target).
    request_type: str | None = None
    history_restore: bool = False

    def __bool__(self) -> bool:
        return self.request

    @property
    def wants_fragment(self) -> bool:
        """True when only part of a page should be sent (not boosted, not a full swap)."""
        return (
            self.request
            and not self.boosted
            and not self.history_restore
            and self.request_type != "full"
        )

    @property
    def target_id(self) -> str | None:
        """The target element's id (``div#notes`` -> ``notes``), or None."""
        if self.target and "#" in self.target:
            return unquote(self.target.split("#", 1)[1])
        return None


def htmx_details(request: Request) -> HtmxDetails:
    """The ``HX-*`` request headers of ``request``."""
    headers = request.headers
    if headers.get("hx-request") != "true":
        return HtmxDetails()
    return HtmxDetails(
        request=True,
        boosted=headers.get("hx-boosted") == "true",
        target=headers.get("hx-target"),
        source=headers.get("hx-source"),
        current_url=headers.get("hx-current-url"),
        request_type=headers.get("hx-request-type"),
        history_restore=headers.get("hx-history-restore-request") == "true",
    )


def is_htmx(request: Request) -> bool:
    """True for a request sent by htmx."""
    return request.headers.get("hx-request") == "true"


Htmx = Annotated[HtmxDetails, Depends(htmx_details)]


def hx_redirect(url: str, response: Response | None = None) -> Response:
    """Make htmx load ``url`` as a full page (``HX-Redirect``); a 303 would be swapped in."""
    target = response if response is not None else Response(status_code=200)
    target.headers["HX-Redirect"] = url
    return target


def hx_location(
    url: str, response: Response | None = None, *, target: str | None = None, **options: Any
) -> Response:
    """Make htmx fetch ``url`` and swap it without a full reload (``HX-Location``).

    ``target`` and other ``options`` (``swap``, ``select`` ...) become the JSON form.
    """
    out = response if response is not None else Response(status_code=200)
    if target is None and not options:
        out.headers["HX-Location"] = url
    else:
        spec: dict[str, Any] = {"path": url, **options}
        if target is not None:
            spec["target"] = target
        out.headers["HX-Location"] = json.dumps(spec)
    return out


def hx_refresh(response: Response | None = None) -> Response:
    """Make htmx reload the whole page (``HX-Refresh``)."""
    out = response if response is not None else Response(status_code=200)
    out.headers["HX-Refresh"] = "true"
    return out


def hx_trigger(response: R, event: str, detail: Any = None) -> R:
    """Fire ``event`` in the browser after the response (``HX-Trigger``), with ``detail``.

    Several calls add several events; the header is always the JSON form.
    """
    current = response.headers.get("HX-Trigger")
    events: dict[str, Any] = json.loads(current) if current else {}
    events[event] = detail
    response.headers["HX-Trigger"] = json.dumps(events, separators=(",", ":"))
    return response


def hx_retarget(response: R, selector: str) -> R:
    """Swap the response into ``selector`` instead of the request's target (``HX-Retarget``)."""
    response.headers["HX-Retarget"] = selector
    return response


def hx_reswap(response: R, swap: str) -> R:
    """Swap the response with ``swap`` (``innerHTML``, ``outerHTML`` ...) (``HX-Reswap``)."""
    response.headers["HX-Reswap"] = swap
    return response

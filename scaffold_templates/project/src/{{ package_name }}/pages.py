"""Pages that are not tied to one feature: the home page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from vibetuner import CurrentUser
from vibetuner.cache import cache_page

from .notes import note_summary
from .web import render

router = APIRouter(tags=["pages"])


# Signed out, the home page is the same for everyone: it is rendered once every five
# minutes and served from the cache in between (never to a signed-in user).
@router.get(
    "/",
    response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(cache_page(ttl=300))],
)
async def home(request: Request, user: CurrentUser) -> HTMLResponse:
    """The home page: a sign-in link, or the way to the user's notes and their summary."""
    summary = await note_summary(user) if user else None
    return render(request, "home.html", {"user": user, "summary": summary})

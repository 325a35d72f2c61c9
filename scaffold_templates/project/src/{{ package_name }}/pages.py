"""Pages that are not tied to one feature: the home page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from vibetuner import CurrentUser

from .web import render

router = APIRouter(tags=["pages"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, user: CurrentUser) -> HTMLResponse:
    """The home page: a sign-in link, or the way to the user's notes."""
    return render(request, "home.html", {"user": user})

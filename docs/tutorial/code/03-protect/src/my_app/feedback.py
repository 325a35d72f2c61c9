"""The feedback page: people tell the team what they think of the app."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from vibetuner import RequireUser

from .web import render

router = APIRouter(prefix="/feedback", tags=["feedback"])


@router.get("", response_class=HTMLResponse, name="feedback_form")
async def feedback_form(request: Request, user: RequireUser) -> HTMLResponse:
    """The feedback page, for signed-in users only."""
    return render(request, "feedback.html", {"user": user})

"""The feedback page: people tell the team what they think of the app."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from vibetuner import CurrentUser

from .web import render

router = APIRouter(prefix="/feedback", tags=["feedback"])


@router.get("", response_class=HTMLResponse, name="feedback_form")
async def feedback_form(request: Request, user: CurrentUser) -> HTMLResponse:
    """The feedback page."""
    return render(request, "feedback.html", {"user": user})

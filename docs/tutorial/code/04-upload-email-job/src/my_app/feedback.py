"""The feedback page: people tell the team what they think, with a screenshot if they like.

The form is kept as a ``Feedback`` document; the screenshot goes to the blob store, and
the email to the team is sent by a background job, so a slow mail server never slows
the page down (and a failed send is retried).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from vibetuner import BlobStore, Context, RequireUser, flash
from vibetuner.i18n import gettext as _
from vibetuner.web.body_limits import body_limit

from .jobs import email_feedback
from .models import Feedback
from .web import render

MAX_MESSAGE = 5_000
# --8<-- [start:limit]
MAX_SCREENSHOT = 5 * 2**20
# Bodies over this are refused (413) before the form is read: the screenshot plus room
# for the message and the multipart framing.
router = APIRouter(
    prefix="/feedback",
    tags=["feedback"],
    route_class=body_limit(lambda request: MAX_SCREENSHOT + 64 * 1024),
)
# --8<-- [end:limit]


@router.get("", response_class=HTMLResponse, name="feedback_form")
async def feedback_form(request: Request, user: RequireUser) -> HTMLResponse:
    """The feedback page, for signed-in users only."""
    return render(request, "feedback.html", {"user": user})


# --8<-- [start:post]
@router.post("", name="send_feedback", status_code=303)
async def send_feedback(
    request: Request,
    context: Context,
    user: RequireUser,
    message: Annotated[str, Form(max_length=MAX_MESSAGE)],
    screenshot: Annotated[UploadFile | None, File()] = None,
) -> RedirectResponse:
    """Keep the feedback and its screenshot, and have the team told by email."""
    if not message.strip():
        raise HTTPException(status_code=422, detail=_("Write a few words first."))
    feedback = Feedback(author=user, message=message.strip())
    if screenshot is not None and screenshot.filename:
        # Streamed to the store (local disk or S3); over BLOB_MAX_SIZE it is a 413.
        feedback.screenshot = await context.get(BlobStore).put(
            screenshot,
            filename=screenshot.filename,
            uploaded_by=user,
            namespace="feedback",
        )
    await feedback.insert()
    # In this process, or on Redis for `vibetuner run worker` when REDIS_URL is set.
    await email_feedback.enqueue(context, feedback)
    flash(request, _("Thank you! The team will read it."))
    return RedirectResponse(request.url_for("feedback_form"), status_code=303)


# --8<-- [end:post]

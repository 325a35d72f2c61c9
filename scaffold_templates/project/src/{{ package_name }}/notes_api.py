"""The notes as a JSON API for scripts: list, create and delete, with a personal API token.

A user makes a token on the account page with the scopes ``notes:read`` and/or
``notes:write`` (or the general ``read`` / ``write``) and sends it as
``Authorization: Bearer <token>``. ``require_scope`` checks the token and its scope and
counts its requests; cookies are ignored on such requests, so a browser's session never
stands in for a token, and the CSRF check does not concern them. ``/docs`` shows these
routes with the bearer scheme.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, Field
from vibetuner import UserModel, require_scope
from vibetuner.models.mixins import utcnow
from vibetuner.web.body_limits import body_limit
from vibetuner.web.responses import documented_problem

from .models import Note
from .notes import (
    MAX_BODY,
    MAX_TITLE,
    ONE_LINE_NOT_BLANK,
    PAGE_SIZE,
    notes_changed,
    notes_page,
    owned_note,
)

# A note's JSON is its title and text: 64 KiB is room enough.
API_BODY_LIMIT = 64 * 1024

router = APIRouter(prefix="/api/notes", tags=["notes API"], route_class=body_limit(API_BODY_LIMIT))
TOKEN_PROBLEMS = {
    401: documented_problem("No token, or an unknown, revoked or expired one"),
    403: documented_problem("The token lacks the scope this route needs"),
    429: documented_problem("Too many requests with this token; see Retry-After"),
}

Reader = Annotated[UserModel, Depends(require_scope("notes:read"))]
Writer = Annotated[UserModel, Depends(require_scope("notes:write"))]


class NoteIn(BaseModel):
    """A new note."""

    title: str = Field(min_length=1, max_length=MAX_TITLE, pattern=ONE_LINE_NOT_BLANK)
    body: str = Field(default="", max_length=MAX_BODY)


class NoteOut(BaseModel):
    """A note as the API shows it (attachments are counted, not sent)."""

    id: str
    title: str
    body: str
    created_at: datetime | None
    attachments: int

    @classmethod
    def of(cls, note: Note) -> NoteOut:
        return cls(
            id=str(note.id),
            title=note.title,
            body=note.body,
            created_at=note.db_insert_dt,
            attachments=len(note.attachments),
        )


class NotePage(BaseModel):
    """One page of the user's notes, newest first."""

    notes: list[NoteOut]
    page: int
    total: int
    page_size: int


@router.get("", response_model=NotePage, responses=TOKEN_PROBLEMS)
async def api_list_notes(
    user: Reader, page: Annotated[int, Query(ge=1, le=100_000)] = 1
) -> NotePage:
    """The token owner's notes, newest first, ``PAGE_SIZE`` a page."""
    total, notes = await notes_page(user, page)
    return NotePage(
        notes=[NoteOut.of(note) for note in notes], page=page, total=total, page_size=PAGE_SIZE
    )


@router.post(
    "",
    response_model=NoteOut,
    status_code=status.HTTP_201_CREATED,
    responses={**TOKEN_PROBLEMS, 400: documented_problem("A body that is not JSON")},
)
async def api_create_note(note: NoteIn, user: Writer) -> NoteOut:
    """Write a note (without attachments: those are uploaded from the notes page)."""
    created = Note(title=note.title, body=note.body, owner=user)
    await created.insert()
    await notes_changed(user)  # the cached summary, and the user's open notes pages
    return NoteOut.of(created)


@router.delete(
    "/{note_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **TOKEN_PROBLEMS,
        404: documented_problem("No such note, or it belongs to someone else"),
    },
)
async def api_delete_note(note_id: str, user: Writer) -> Response:
    """Delete a note; as on the notes page, it (and its files) goes for good after the undo
    window."""
    note = await owned_note(note_id, user)
    await note.set({Note.deleted_at: utcnow()})
    await notes_changed(user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

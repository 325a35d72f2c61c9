"""Notes with file attachments: the example feature, end to end.

A signed-in user writes notes and attaches files. The files go to vibetuner's blob
store (local disk or S3, by setting) and are served by its ``/blobs`` routes, which
check ownership, so a note only links to ``/blobs/{id}/content``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import HTMLResponse, RedirectResponse
from vibetuner import (
    BlobStorageError,
    BlobStore,
    BlobTooLarge,
    Context,
    RequireUser,
    app_context,
    parse_object_id,
)
from vibetuner.models import Blob, UserModel
from vibetuner.web.body_limits import body_limit
from vibetuner.web.responses import SIGN_IN_REQUIRED, problem, redirect

from .models import Note
from .web import render

logger = logging.getLogger(__name__)

MAX_ATTACHMENTS = 10
# Room for the title, the text (up to 20,000 characters) and the multipart framing.
FORM_ROOM = 256 * 1024


def max_note_body(request: Request) -> int:
    """The largest note form: every attachment at BLOB_MAX_SIZE, plus the text fields."""
    return MAX_ATTACHMENTS * app_context(request.app).settings.blob_max_size + FORM_ROOM


# Bodies over max_note_body are refused (413) before FastAPI reads and spools the form.
router = APIRouter(prefix="/notes", tags=["notes"], route_class=body_limit(max_note_body))
# A title is one line of text: no control characters (NUL, CR, LF ...), not only spaces.
ONE_LINE_NOT_BLANK = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
NOT_FOUND = {404: problem("No such note, or it belongs to someone else")}


async def owned_note(note_id: str, user: UserModel) -> Note:
    """The user's note ``note_id``; 404 when it does not exist or belongs to someone else."""
    oid = parse_object_id(note_id)
    if oid is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Note not found.")
    note = await Note.find_one(Note.id == oid, Note.owner.id == user.id)
    if note is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Note not found.")
    return note


@router.get("", response_class=HTMLResponse, responses=SIGN_IN_REQUIRED)
async def list_notes(request: Request, user: RequireUser) -> HTMLResponse:
    """The user's notes, newest first, and the form to write one."""
    notes = await Note.find(Note.owner.id == user.id).sort(-Note.db_insert_dt).to_list()
    return render(request, "notes/index.html", {"user": user, "notes": notes})


@router.post(
    "",
    response_class=RedirectResponse,
    status_code=status.HTTP_303_SEE_OTHER,
    responses={
        **SIGN_IN_REQUIRED,
        303: redirect("Created: sent to the new note"),
        400: problem("A malformed form"),
        413: problem("A file is larger than BLOB_MAX_SIZE, or the whole form too large"),
        503: problem("A file could not be stored"),
    },
)
async def create_note(
    request: Request,
    context: Context,
    user: RequireUser,
    title: Annotated[str, Form(min_length=1, max_length=200, pattern=ONE_LINE_NOT_BLANK)],
    body: Annotated[str, Form(max_length=20_000)] = "",
    files: Annotated[list[UploadFile], File(max_length=MAX_ATTACHMENTS)] = [],  # noqa: B006
) -> RedirectResponse:
    """Create a note and store its attachments; redirect to the new note."""
    # (FastAPI copies the default list for each request.)
    uploads = [f for f in files if f.filename]
    title = title.strip()
    blobs: list[Blob] = []
    store = context.require_blobs()
    try:
        for upload in uploads:
            blob = await store.put(
                upload,
                filename=upload.filename,
                content_type=upload.content_type,
                uploaded_by=user,
                namespace="notes",
            )
            blobs.append(blob)
        note = Note(title=title, body=body, owner=user, attachments=blobs)
        await note.insert()
    except BaseException as exc:
        # Never leave files behind that no note points to, even when the request is
        # cancelled; a failing clean-up is logged and must not hide the first error.
        await asyncio.shield(discard(store, blobs))
        if isinstance(exc, BlobTooLarge):
            raise HTTPException(413, str(exc)) from None
        if isinstance(exc, BlobStorageError):
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "The file could not be stored; try again."
            ) from None
        raise
    target = request.app.url_path_for("show_note", note_id=str(note.id))
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


async def discard(store: BlobStore, blobs: list[Blob]) -> None:
    """Delete ``blobs`` that no note points to, logging (not raising) failures."""
    for blob in blobs:
        try:
            await store.delete(blob)
        except Exception:
            logger.exception("could not remove attachment %s of a note that was not saved", blob.id)


@router.get(
    "/{note_id}",
    response_class=HTMLResponse,
    responses={**SIGN_IN_REQUIRED, **NOT_FOUND},
)
async def show_note(request: Request, note_id: str, user: RequireUser) -> HTMLResponse:
    """One note with links to its attachments."""
    note = await owned_note(note_id, user)
    await note.fetch_all_links()
    return render(request, "notes/detail.html", {"user": user, "note": note})


@router.post(
    "/{note_id}/delete",
    response_class=RedirectResponse,
    status_code=status.HTTP_303_SEE_OTHER,
    responses={**SIGN_IN_REQUIRED, **NOT_FOUND, 303: redirect("Deleted: sent to the list")},
)
async def delete_note(
    request: Request, context: Context, note_id: str, user: RequireUser
) -> RedirectResponse:
    """Delete a note and its stored files; redirect to the list."""
    note = await owned_note(note_id, user)
    await note.fetch_all_links()
    store = context.require_blobs()
    for blob in note.attachments:
        if isinstance(blob, Blob):
            await store.delete(blob)
    await note.delete()
    target = request.app.url_path_for("list_notes")
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)

"""Notes with file attachments: the example feature, end to end.

Every route answers a normal browser request with a full page (or a redirect), so the
app works without JavaScript, and an htmx request with just the part of the page that
changed: ``render(..., block="note_list")`` renders one block of the same template.

Files go to vibetuner's blob store (local disk or S3, by setting) and are served by its
``/blobs`` routes, which check ownership, so a note only links to ``/blobs/{id}/content``.
A deleted note can be brought back for ``jobs.UNDO_WINDOW``; after that it is purged with
its files.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from vibetuner import (
    AppContext,
    BlobStorageError,
    BlobStore,
    BlobTooLarge,
    Context,
    FlashAction,
    ImageTooLarge,
    JobQueueUnavailable,
    RequireUser,
    app_context,
    flash,
    hx_reswap,
    hx_retarget,
    is_htmx,
    parse_object_id,
    rate_limit,
)
from vibetuner.cache import cached, invalidate_tags
from vibetuner.i18n import N_
from vibetuner.i18n import gettext as _
from vibetuner.models import Blob, UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.web.body_limits import body_limit
from vibetuner.web.identity import wants_html
from vibetuner.web.pages import with_flashes
from vibetuner.web.responses import (
    SIGN_IN_REQUIRED,
    ValidationProblem,
    documented_problem,
    redirect,
)

from .jobs import discard, is_picture, make_thumbnail, purge_deleted, tell_open_pages
from .models import Note
from .web import render

logger = logging.getLogger(__name__)

PAGE_SIZE = 10
MAX_ATTACHMENTS = 10
MAX_TITLE = 200
MAX_BODY = 20_000
# Room for the title, the text (up to 20,000 characters) and the multipart framing.
FORM_ROOM = 256 * 1024
# A title is one line of text: no control characters (NUL, CR, LF ...).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
ONE_LINE_NOT_BLANK = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"

# The form fields are read leniently (a browser gets the form back with its errors, not
# a 422 JSON list), so the schema of a valid note form is written out for the API docs.
NOTE_FIELDS = {
    "title": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TITLE,
        "pattern": ONE_LINE_NOT_BLANK,
    },
    "body": {"type": "string", "maxLength": MAX_BODY},
}
NOTE_FORM = {"type": "object", "required": ["title"], "properties": NOTE_FIELDS}
NOTE_UPLOAD_FORM = {
    **NOTE_FORM,
    "properties": {
        **NOTE_FIELDS,
        "files": {
            "type": "array",
            "maxItems": MAX_ATTACHMENTS,
            "items": {"type": "string", "format": "binary"},
        },
    },
}


def form_body(schema: dict[str, Any], *media_types: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a required form body of ``schema``."""
    content = {media_type: {"schema": schema} for media_type in media_types}
    return {"requestBody": {"required": True, "content": content}}


def max_note_body(request: Request) -> int:
    """The largest note form: every attachment at BLOB_MAX_SIZE, plus the text fields."""
    return MAX_ATTACHMENTS * app_context(request.app).settings.blob_max_size + FORM_ROOM


# Per user, on top of the app-wide RATE_LIMIT_* defaults: writing a note stores files, so
# it gets a tighter budget; changing, deleting and restoring notes share another.
CREATE_LIMIT = rate_limit("2/second;30/minute", key="user", name="notes.create")
CHANGE_LIMIT = rate_limit("5/second;120/minute", key="user", name="notes.change")
TOO_FAST = {429: problem("Too many changes in a short time; see Retry-After", html=True)}

# Bodies over max_note_body are refused (413) before FastAPI reads and spools the form.
router = APIRouter(prefix="/notes", tags=["notes"], route_class=body_limit(max_note_body))
NOT_FOUND = {404: documented_problem("No such note, or it belongs to someone else", html=True)}
INVALID = {
    "model": ValidationProblem,
    "content": {"text/html": {}},
    "description": "A missing or invalid field (browsers: the form again, with the errors)",
}
PAGE_OR_FRAGMENT = {
    "content": {"text/html": {}},
    "description": "The page, or for htmx the part that changed",
}


# What is wrong with a field: a message (translated for people, English for API
# clients) and the values of its placeholders.
Problem = tuple[str, dict[str, Any]]


def check_note(title: str, body: str) -> dict[str, Problem]:
    """What is wrong with a note's fields, by field name (empty when nothing is)."""
    errors: dict[str, Problem] = {}
    if not title.strip():
        errors["title"] = (N_("Give the note a title."), {})
    elif len(title) > MAX_TITLE:
        errors["title"] = (N_("Keep the title under %(max)d characters."), {"max": MAX_TITLE})
    elif CONTROL_CHARACTERS.search(title):
        errors["title"] = (N_("The title must be a single line."), {})
    if len(body) > MAX_BODY:
        errors["body"] = (N_("Keep the text under %(max)d characters."), {"max": MAX_BODY})
    return errors


def shown(errors: dict[str, Problem]) -> dict[str, str]:
    """The problems in the reader's language, by field name."""
    return {field: _(message, **values) for field, (message, values) in errors.items()}


async def owned_note(note_id: str, user: UserModel, *, deleted: bool = False) -> Note:
    """The user's note ``note_id``; 404 when it does not exist or belongs to someone else."""
    oid = parse_object_id(note_id)
    if oid is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Note not found.")
    note = await Note.find_one(
        Note.id == oid, Note.owner.id == user.id, {"deleted_at": {"$ne": None} if deleted else None}
    )
    if note is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Note not found.")
    return note


async def list_values(user: UserModel, page: int) -> dict[str, Any]:
    """One page of the user's notes, newest first, with what the pager needs.

    One query: the page and the total come back together (``$facet``); each note's
    attachment count is the length of its list of links, so no file is read.
    """
    page = max(page, 1)
    total, notes = await notes_page(user, page)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if page > pages:  # past the end (a stale link): show the last page
        page = pages
        total, notes = await notes_page(user, page)
    return {"notes": notes, "page": page, "pages": pages, "total": total}


async def notes_page(user: UserModel, page: int) -> tuple[int, list[Note]]:
    """How many live notes ``user`` has, and the notes of ``page``."""
    pipeline: list[dict[str, Any]] = [
        {"$match": {"owner.$id": user.id, "deleted_at": None}},
        {
            "$facet": {
                "total": [{"$count": "n"}],
                "notes": [
                    {"$sort": {"db_insert_dt": -1}},
                    {"$skip": (page - 1) * PAGE_SIZE},
                    {"$limit": PAGE_SIZE},
                ],
            }
        },
    ]
    cursor = await Note.get_pymongo_collection().aggregate(pipeline)
    [found] = await cursor.to_list(1)
    total = found["total"][0]["n"] if found["total"] else 0
    return total, [Note.model_validate(raw) for raw in found["notes"]]


@cached(ttl=600, key="note-summary:{user.id}", tags=["notes:{user.id}"])
async def note_summary(user: UserModel) -> dict[str, Any]:
    """How many live notes user has and the newest one's title (the home page shows it).

    Cached until one of the user's notes changes: every route that changes a note calls
    ``notes_changed``, which invalidates the tag in every worker.
    """
    total, notes = await notes_page(user, 1)
    return {"total": total, "newest": notes[0].title if notes else None}


async def notes_changed(user: UserModel) -> None:
    """Drop what is cached about user's notes (the home page's summary), and tell the
    user's open notes pages, in every browser, to fetch their list again."""
    await invalidate_tags(f"notes:{user.id}")
    await tell_open_pages(user.id)


async def delete_notes_of(user: UserModel) -> None:
    """Remove every note of ``user``, whose account is being deleted (vibetuner removes files)."""
    await Note.find(Note.owner.id == user.id).delete()
    await notes_changed(user)


@router.get("", responses={**SIGN_IN_REQUIRED, 200: PAGE_OR_FRAGMENT})
async def list_notes(request: Request, user: RequireUser, page: int = 1) -> Response:
    """The user's notes, newest first, ten to a page, and the form to write one."""
    values = await list_values(user, page)
    return render(request, "notes/index.html", {"title": _("Notes"), **values}, block="note_list")


@router.post(
    "",
    responses={
        **TOO_FAST,
        **SIGN_IN_REQUIRED,
        303: redirect("Created: back to the list"),
        200: PAGE_OR_FRAGMENT,
        400: documented_problem("A malformed form"),
        413: documented_problem("A file is larger than BLOB_MAX_SIZE, or the whole form too large"),
        422: INVALID,  # also a picture of more than IMAGE_MAX_PIXELS
        503: documented_problem("A file could not be stored"),
    },
    openapi_extra=form_body(NOTE_UPLOAD_FORM, "multipart/form-data"),
)
@CREATE_LIMIT
async def create_note(
    request: Request,
    context: Context,
    user: RequireUser,
    title: Annotated[str, Form(max_length=10 * MAX_TITLE)] = "",
    body: Annotated[str, Form(max_length=2 * MAX_BODY)] = "",
    files: Annotated[list[UploadFile], File(max_length=MAX_ATTACHMENTS)] = [],  # noqa: B006
) -> Response:
    """Create a note and store its attachments."""
    # (FastAPI copies the default list for each request.)
    errors = check_note(title, body)
    if errors:
        return await form_with_errors(request, user, title, body, errors)
    uploads = [f for f in files if f.filename]
    blobs: list[Blob] = []
    store = context.get(BlobStore)
    try:
        for upload in uploads:
            blob = await store.put(
                upload,
                filename=upload.filename or "file",
                content_type=upload.content_type,
                uploaded_by=user,
                namespace="notes",
            )
            blobs.append(blob)
        note = Note(title=title.strip(), body=body, owner=user, attachments=blobs)
        await note.insert()
        await notes_changed(user)
    except BaseException as exc:
        # Never leave files behind that no note points to, even when the request is
        # cancelled; a failing clean-up is logged and must not hide the first error.
        await asyncio.shield(discard(store, blobs))
        if isinstance(exc, ImageTooLarge):
            # Refused from its header, before anything decoded it (a decompression bomb).
            # (The picture refused is the upload after those stored.)
            refused = picture_too_large(uploads[len(blobs)].filename or "file", exc)
            return await form_with_errors(request, user, title, body, {"files": refused})
        if isinstance(exc, BlobTooLarge):
            raise HTTPException(413, str(exc)) from None
        if isinstance(exc, BlobStorageError):
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, N_("The file could not be stored; try again.")
            ) from None
        raise
    await queue_thumbnails(context, note, blobs)
    flash(request, _("Saved “%(title)s”.", title=note.title))
    if is_htmx(request):
        values = await list_values(user, 1)
        return render(
            request, "notes/index.html", {"title": _("Notes"), **values}, block="note_list"
        )
    return RedirectResponse(request.app.url_path_for("list_notes"), status_code=303)


def picture_too_large(name: str, exc: ImageTooLarge) -> Problem:
    """The form error for a picture with more pixels than ``IMAGE_MAX_PIXELS``."""
    width, height = (exc.size.width, exc.size.height) if exc.size else (0, 0)
    message = N_("“%(name)s” is %(width)d × %(height)d pixels; the limit is %(max)s megapixels.")
    return message, {
        "name": name,
        "width": width,
        "height": height,
        "max": f"{exc.max_pixels / 1e6:g}",
    }


def invalid_fields(errors: dict[str, Problem]) -> JSONResponse:
    """A 422 for API clients, in FastAPI's validation-error shape (in English)."""
    detail = [
        {"loc": ["body", field], "msg": message % values, "type": "value_error"}
        for field, (message, values) in errors.items()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def form_with_errors(
    request: Request, user: UserModel, title: str, body: str, errors: dict[str, Problem]
) -> Response:
    """The new-note form again with the user's input and what to fix (422)."""
    if not wants_html(request):
        return invalid_fields(errors)
    values = {"title": _("Notes"), "form": {"title": title, "body": body}, "errors": shown(errors)}
    if is_htmx(request):
        fragment = render(request, "notes/index.html", values, 422, block="note_form")
        return hx_reswap(hx_retarget(fragment, "#note-form"), "outerHTML")
    return render(request, "notes/index.html", {**values, **await list_values(user, 1)}, 422)


async def queue_thumbnails(context: AppContext, note: Note, blobs: list[Blob]) -> None:
    """Ask for a thumbnail of each picture; the note is saved even if the queue is down."""
    for blob in blobs:
        if not is_picture(blob):
            continue
        try:
            await make_thumbnail.enqueue(context, note, str(blob.id), key=f"thumbnail:{blob.id}")
        except JobQueueUnavailable:
            logger.warning("no thumbnail for %s: the job queue is unavailable", blob.id)


@router.get("/{note_id}", responses={**SIGN_IN_REQUIRED, **NOT_FOUND, 200: PAGE_OR_FRAGMENT})
async def show_note(request: Request, note_id: str, user: RequireUser) -> Response:
    """One note with its attachments (pictures shown inline)."""
    note = await owned_note(note_id, user)
    await note.fetch_all_links()
    return render(request, "notes/detail.html", {"title": note.title, "note": note})


@router.get("/{note_id}/edit", responses={**SIGN_IN_REQUIRED, **NOT_FOUND, 200: PAGE_OR_FRAGMENT})
async def edit_note_form(request: Request, note_id: str, user: RequireUser) -> Response:
    """The edit form: in place of the note for htmx, as a page otherwise."""
    note = await owned_note(note_id, user)
    values = {
        "title": _("Edit “%(title)s”", title=note.title),
        "note": note,
        "form": note.model_dump(),
        "errors": {},
    }
    return render(request, "notes/edit.html", values, block="note_edit")


@router.post(
    "/{note_id}",
    responses={
        **TOO_FAST,
        **SIGN_IN_REQUIRED,
        **NOT_FOUND,
        303: redirect("Saved: back to the note"),
        200: PAGE_OR_FRAGMENT,
        422: INVALID,
    },
    openapi_extra=form_body(NOTE_FORM, "application/x-www-form-urlencoded"),
)
@CHANGE_LIMIT
async def update_note(
    request: Request,
    note_id: str,
    user: RequireUser,
    title: Annotated[str, Form(max_length=10 * MAX_TITLE)] = "",
    body: Annotated[str, Form(max_length=2 * MAX_BODY)] = "",
) -> Response:
    """Change a note's title and text."""
    note = await owned_note(note_id, user)
    errors = check_note(title, body)
    if errors and not wants_html(request):
        return invalid_fields(errors)
    if errors:
        values = {"title": _("Edit note"), "note": note, "form": {"title": title, "body": body}}
        return render(
            request, "notes/edit.html", {**values, "errors": shown(errors)}, 422, block="note_edit"
        )
    await note.set({Note.title: title.strip(), Note.body: body})
    await notes_changed(user)
    if is_htmx(request):
        return render(request, "notes/card.html", {"note": note}, block="note_card")
    flash(request, _("Changes saved."))
    return RedirectResponse(request.app.url_path_for("show_note", note_id=note_id), status_code=303)


@router.post(
    "/{note_id}/delete",
    responses={
        **TOO_FAST,
        **SIGN_IN_REQUIRED,
        **NOT_FOUND,
        303: redirect("Deleted: back to the list"),
        200: PAGE_OR_FRAGMENT,
    },
)
@CHANGE_LIMIT
async def delete_note(
    request: Request, context: Context, note_id: str, user: RequireUser
) -> Response:
    """Delete a note, with an "Undo" in the message; its files go when the undo window closes."""
    note = await owned_note(note_id, user)
    await note.set({Note.deleted_at: utcnow()})
    await notes_changed(user)
    # Notes deleted earlier whose undo window has closed go now, with their files (the
    # periodic job does it too); reading the list never writes.
    await purge_deleted(context.get(BlobStore), user)
    restore = request.app.url_path_for("restore_note", note_id=note_id)
    flash(
        request,
        _("Deleted “%(title)s”.", title=note.title),
        action=FlashAction(_("Undo"), restore, target="#note-list", swap="outerHTML"),
    )
    if is_htmx(request):
        # The card removes itself (hx-swap="delete"); the message comes out of band.
        return with_flashes(request, HTMLResponse(""))
    return RedirectResponse(request.app.url_path_for("list_notes"), status_code=303)


@router.post(
    "/{note_id}/restore",
    responses={
        **TOO_FAST,
        **SIGN_IN_REQUIRED,
        **NOT_FOUND,
        303: redirect("Restored: back to the list"),
        200: PAGE_OR_FRAGMENT,
    },
)
@CHANGE_LIMIT
async def restore_note(request: Request, note_id: str, user: RequireUser) -> Response:
    """Undo a delete within ``UNDO_WINDOW``."""
    note = await owned_note(note_id, user, deleted=True)
    await note.set({Note.deleted_at: None})
    await notes_changed(user)
    flash(request, _("Restored “%(title)s”.", title=note.title))
    if is_htmx(request):
        values = await list_values(user, 1)
        return render(
            request, "notes/index.html", {"title": _("Notes"), **values}, block="note_list"
        )
    return RedirectResponse(request.app.url_path_for("list_notes"), status_code=303)

"""Blob routes: upload, metadata, download (ranges, ETag) and delete, for signed-in users.

* ``POST /blobs`` -- multipart field ``file``; 201 with the blob's JSON.
* ``GET /blobs/{id}`` -- the JSON again.
* ``GET /blobs/{id}/content`` -- the bytes (``Range``, ``If-None-Match``, ``ETag``).
* ``DELETE /blobs/{id}`` -- 204.
* ``GET /blobs/{id}/signed?token=...`` -- the bytes through a signed, expiring link
  (``BlobStore.url`` on local disk); no session needed.

A blob of another user answers 404 everywhere, exactly like a blob that does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from vibetuner import errors
from vibetuner.auth.session_auth import RequireUser
from vibetuner.blobs.backend import BlobBackend
from vibetuner.blobs.jobs import JOBS
from vibetuner.blobs.store import BlobStore, content_disposition
from vibetuner.context import AppContext
from vibetuner.errors import (
    BlobError,
    BlobNotFound,
    BlobTooLarge,
    UploadError,
    UploadTooLarge,
    VibetunerError,
)
from vibetuner.features import ErrorAnswer, Feature
from vibetuner.i18n import N_
from vibetuner.jobs.registry import JobTask
from vibetuner.models.blob import Blob
from vibetuner.models.ids import parse_object_id
from vibetuner.models.user import UserModel
from vibetuner.web.body_limits import declared_length
from vibetuner.web.context import get_context
from vibetuner.web.multipart import MultipartFileReader, multipart_boundary
from vibetuner.web.responses import (
    ANY_CONTENT,
    SIGN_IN_REQUIRED,
    OpenAPIResponses,
    documented_problem,
    redirect,
)

if TYPE_CHECKING:
    from beanie import Document

    from vibetuner.jobs.registry import JobTask

logger = logging.getLogger("vibetuner.blobs")

FILE_FIELD = "file"
# Room for the multipart framing and small form fields around the file.
MULTIPART_OVERHEAD = 64 * 1024
NOT_FOUND = "Blob not found."

router = APIRouter(prefix="/blobs", tags=["blobs"])


class BlobOut(BaseModel):
    """A blob as the API shows it."""

    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    url: str


def get_blob_store(request: Request) -> BlobStore:
    """The app's ``BlobStore``, opened at startup by ``BlobsFeature``."""
    store = get_context(request).find(BlobStore)
    if store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "Blob storage is not running.")
    return store


Store = Annotated[BlobStore, Depends(get_blob_store)]


def blob_json(request: Request, blob: Blob) -> BlobOut:
    """The API representation of ``blob``; ``url`` is its content route."""
    return BlobOut(
        id=str(blob.id),
        filename=blob.filename,
        content_type=blob.content_type,
        size=blob.size,
        sha256=blob.sha256 or "",
        url=str(request.url_for("blob_content", blob_id=str(blob.id))),
    )


async def find_blob(blob_id: str) -> Blob | None:
    """The available blob with this id; None for malformed ids, missing or unfinished blobs."""
    object_id = parse_object_id(blob_id)
    if object_id is None:
        return None
    blob = await Blob.get(object_id)
    if blob is None or not blob.is_available:
        return None
    return blob


async def owned_blob(blob_id: str, user: UserModel) -> Blob:
    """The user's available blob, else 404 (the same for blobs of other users)."""
    blob = await find_blob(blob_id)
    owner = blob.uploaded_by if blob is not None else None
    owner_id = getattr(owner, "id", None) or getattr(getattr(owner, "ref", None), "id", None)
    if blob is None or owner_id is None or owner_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return blob


NOT_FOUND_RESPONSE = documented_problem("No such blob, or it belongs to someone else")
UNAVAILABLE_RESPONSE = documented_problem("The storage backend failed; try again later")
# Download answers: the bytes, a part of them, or a cache hit.
CONTENT_RESPONSES: OpenAPIResponses = {
    200: {"content": dict(ANY_CONTENT), "description": "The bytes, with the blob's content type"},
    206: {"content": dict(ANY_CONTENT), "description": "The range asked for with `Range`"},
    304: {"description": "Not modified (`If-None-Match` names the current ETag)"},
    404: NOT_FOUND_RESPONSE,
    416: {"description": "The range is outside the file"},
    503: UNAVAILABLE_RESPONSE,
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BlobOut,
    summary="Upload a file (multipart field 'file')",
    responses={
        **SIGN_IN_REQUIRED,
        400: documented_problem("Malformed multipart body, or the upload ended early"),
        413: documented_problem("Larger than BLOB_MAX_SIZE"),
        422: documented_problem(
            "Not multipart/form-data, no 'file' field, or an image over IMAGE_MAX_PIXELS"
        ),
        503: UNAVAILABLE_RESPONSE,
    },
    # The body is streamed by hand (not parsed by FastAPI), so it is described here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": [FILE_FIELD],
                        "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_blob(request: Request, user: RequireUser, store: Store) -> BlobOut | Response:
    """Stream the ``file`` field of a multipart body into blob storage."""
    max_body = store.max_size + MULTIPART_OVERHEAD
    declared = declared_length(request)
    if declared is not None and declared > max_body:
        raise refused(BlobTooLarge(store.max_size))
    boundary = multipart_boundary(request.headers.get("content-type"))
    if boundary is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Send the file as multipart/form-data in a field named '{FILE_FIELD}'.",
        )
    reader = MultipartFileReader(request.stream(), boundary, field=FILE_FIELD, max_body=max_body)
    try:
        part = await reader.file()
        if part is None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"No file: send it in the field '{FILE_FIELD}'.",
            )
        blob = await store.put(
            reader.chunks(),
            filename=part.filename,
            content_type=part.content_type,
            uploaded_by=user,
        )
    except UploadTooLarge:
        # Past the file limit plus the form's framing: what the client must hear is the
        # file's limit, not the body's.
        raise refused(BlobTooLarge(store.max_size)) from None
    except (BlobError, UploadError) as exc:
        # Too large, not an image it can take, a broken body, storage down: the error
        # table answers (413, 422, 400, 503).
        raise refused(exc) from None
    except ClientDisconnect:
        # Nothing was stored; the client is gone and will not read an answer.
        return Response(status_code=status.HTTP_400_BAD_REQUEST)
    return blob_json(request, blob)


def refused(error: VibetunerError) -> VibetunerError:
    """``error``, answered with ``Connection: close``: the rest of the upload is not read."""
    error.close_connection = True
    return error


@router.get(
    "/{blob_id}",
    response_model=BlobOut,
    summary="A blob's metadata",
    responses={**SIGN_IN_REQUIRED, 404: NOT_FOUND_RESPONSE},
)
async def get_blob(blob_id: str, request: Request, user: RequireUser) -> BlobOut:
    """The blob's JSON; 404 when it does not exist or belongs to someone else."""
    return blob_json(request, await owned_blob(blob_id, user))


@router.get(
    "/{blob_id}/content",
    name="blob_content",
    summary="A blob's bytes",
    response_class=Response,
    responses={
        **CONTENT_RESPONSES,
        **SIGN_IN_REQUIRED,
        307: redirect("To a presigned S3 URL (BLOB_REDIRECT_TO_PRESIGNED)"),
    },
)
@router.head(
    "/{blob_id}/content",
    name="blob_content_head",
    summary="A blob's headers",
    response_class=Response,
    responses={**CONTENT_RESPONSES, **SIGN_IN_REQUIRED, 307: redirect("To a presigned S3 URL")},
)
async def blob_content(blob_id: str, request: Request, user: RequireUser, store: Store) -> Response:
    """The bytes, with ``Range``/``If-None-Match`` support; optionally a presigned redirect."""
    blob = await owned_blob(blob_id, user)
    if store.settings.blob_redirect_to_presigned and store.backend.name == "s3":
        target = await store.url(blob)
        return RedirectResponse(
            target,
            status_code=status.HTTP_307_TEMPORARY_REDIRECT,
            headers={"Cache-Control": "no-store"},
        )
    return await serve_blob(request, store, blob)


SIGNED_RESPONSES: OpenAPIResponses = {
    **CONTENT_RESPONSES,
    403: documented_problem("The link is invalid or has expired"),
}


@router.get(
    "/{blob_id}/signed",
    name="blob_signed",
    summary="A blob's bytes through a signed link",
    response_class=Response,
    responses=SIGNED_RESPONSES,
)
@router.head(
    "/{blob_id}/signed",
    name="blob_signed_head",
    summary="A blob's headers through a signed link",
    response_class=Response,
    responses=SIGNED_RESPONSES,
)
async def blob_signed(blob_id: str, request: Request, store: Store, token: str = "") -> Response:
    """The bytes for anyone holding a valid, unexpired link made by ``BlobStore.url``."""
    if not token or not store.check_token(blob_id, token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "This link is invalid or has expired.")
    blob = await find_blob(blob_id)
    if blob is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return await serve_blob(request, store, blob)


@router.delete(
    "/{blob_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a blob",
    responses={**SIGN_IN_REQUIRED, 404: NOT_FOUND_RESPONSE, 503: UNAVAILABLE_RESPONSE},
)
async def delete_blob(blob_id: str, user: RequireUser, store: Store) -> Response:
    """Remove the bytes and the metadata."""
    blob = await owned_blob(blob_id, user)
    await store.delete(blob)  # BlobStorageError: 503 from the error table
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- serving bytes -------------------------------------------------------------------


async def serve_blob(request: Request, store: BlobStore, blob: Blob) -> Response:
    """A response with the blob's bytes, honouring ``If-None-Match``, ``Range``, ``If-Range``."""
    etag = f'"{blob.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "Content-Type": blob.content_type,
        "Content-Disposition": content_disposition(blob.filename, blob.content_type),
        # Uploaded HTML or SVG must never run as the app's own page.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=_cache_headers(headers))

    start, end, code = 0, blob.size - 1, status.HTTP_200_OK
    wanted = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if wanted and (if_range is None or if_range.strip() == etag):
        byte_range = parse_range(wanted, blob.size)
        if byte_range == "unsatisfiable":
            return Response(
                status_code=status.HTTP_416_RANGE_NOT_SATISFIABLE,
                headers={"Content-Range": f"bytes */{blob.size}", "ETag": etag},
            )
        if isinstance(byte_range, tuple):
            start, end = byte_range
            code = status.HTTP_206_PARTIAL_CONTENT
            headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    length = max(end - start + 1, 0)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=code, headers=headers)

    chunks = store.open(blob, start=start, end=end) if length else store.open(blob)
    try:
        first = await anext(chunks, b"")
    except BlobNotFound:
        logger.error("blob %s has metadata but no stored object", blob.id)
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from None
    return StreamingResponse(_send(first, chunks), status_code=code, headers=headers)


async def _send(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


def _cache_headers(headers: dict[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in ("ETag", "Cache-Control")}


def etag_matches(header: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` value names ``etag`` (weak comparison) or is ``*``."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range as ``(start, end)``; ``"unsatisfiable"``; None to send it all.

    Several ranges or malformed values are ignored (RFC 9110 allows serving the whole
    representation); a well-formed range outside the file is unsatisfiable (416).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (_is_digits(first) or _is_digits(last)):
        return None
    if (first and not _is_digits(first)) or (last and not _is_digits(last)):
        return None
    if not first:
        suffix = _bounded_int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(size - suffix, 0), size - 1
    start = _bounded_int(first)
    if last and _bounded_int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(_bounded_int(last), size - 1) if last else size - 1


# Beyond any file size; parsing thousands of digits would fail (int's 4,300-digit limit).
HUGE = 10**18


def _bounded_int(digits: str) -> int:
    digits = digits.lstrip("0")
    return int(digits or "0") if len(digits) <= 18 else HUGE


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


class BlobsFeature(Feature):
    """File storage: the ``/blobs`` routes and the ``BlobStore`` opened at startup.

    ``backend`` plugs in a storage backend object; without it ``BLOB_BACKEND`` names one
    (``local``, ``s3`` or a dotted path to a class).
    """

    name = "blobs"
    # Files belong to users: the routes need a signed-in one.
    requires = ("auth",)

    def __init__(self, backend: BlobBackend | None = None) -> None:
        self.backend = backend

    def models(self) -> Sequence[type[Document]]:
        return [Blob]

    def jobs(self) -> Sequence[JobTask]:
        """The hourly orphan check and background file deletion."""
        return JOBS

    def errors(self) -> Mapping[type[errors.VibetunerError], ErrorAnswer]:
        return {
            errors.BlobTooLarge: ErrorAnswer(413, N_("Too large")),
            errors.BlobNotFound: ErrorAnswer(404, N_("Not found")),
            errors.BlobUnavailable: ErrorAnswer(404, N_("Not found")),
            errors.BlobStorageError: ErrorAnswer(
                503, N_("Storage unavailable"), N_("Storage is unavailable; try again later.")
            ),
        }

    def routers(self) -> Sequence[APIRouter]:
        return [router]

    @asynccontextmanager
    async def lifespan(self, context: AppContext) -> AsyncIterator[None]:
        store = BlobStore.from_settings(context.settings, self.backend)
        async with store:
            context.provide(store)
            try:
                yield
            finally:
                context.withdraw(BlobStore)

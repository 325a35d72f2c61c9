"""``BlobStore``: store user files on local disk or S3 and keep ``Blob`` metadata consistent.

    store = BlobStore.from_settings(settings)
    async with store:
        blob = await store.put(upload_file, filename="report.pdf", uploaded_by=user)
        async for chunk in store.open(blob):
            ...
        link = await store.url(blob, expires_in=600)
        await store.delete(blob)

In an app ``BlobsFeature`` opens one store at startup: ``context.get(BlobStore)``.

Every upload is streamed: size and SHA-256 are computed on the way through and
memory does not grow with the file. A ``Blob`` is inserted as ``pending``, the bytes
are stored, and only then is it marked ``available``; when storing fails the object
and the ``Blob`` are removed again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import logging
import mimetypes
import re
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer

from vibetuner.blobs.backend import DEFAULT_NAMESPACE, NAMESPACE_PATTERN, BlobBackend
from vibetuner.config import Settings
from vibetuner.errors import (
    BlobError,
    BlobNotFound,
    BlobStorageError,
    BlobTooLarge,
    BlobUnavailable,
    ConfigurationError,
)
from vibetuner.models.blob import Blob, BlobStatus
from vibetuner.models.user import UserModel
from vibetuner.services.images import ImageProbe, check_pixels
from vibetuner.services.keys import derive_key
from vibetuner.services.plugins import build_backend

__all__ = [
    "BlobStore",
    "BlobError",
    "BlobNotFound",
    "BlobStorageError",
    "BlobTooLarge",
    "BlobUnavailable",
    "content_disposition",
    "resolve_content_type",
    "safe_filename",
]

logger = logging.getLogger("vibetuner.blobs")

MAX_FILENAME_LENGTH = 255
FALLBACK_FILENAME = "download"
URL_SALT = "vibetuner.blobs.signed-url"
BLOB_BACKENDS = {
    "local": "vibetuner.blobs.local:LocalBackend",
    "s3": "vibetuner.blobs.s3:S3Backend",
}
_THREAD_HASH_MIN = 256 * 1024
# type/subtype with optional parameters (RFC 9110 tokens), e.g. "text/plain; charset=utf-8".
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_CONTENT_TYPE = re.compile(
    rf"^{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\r\n]*\"))*$"
)
# Types a browser may show inline; everything else downloads as an attachment.
_INLINE_TYPES = re.compile(
    r"^(image/(png|jpeg|gif|webp|avif|bmp)|text/plain|application/pdf|audio/[a-z0-9.+-]+|"
    r"video/[a-z0-9.+-]+)$"
)

Source = bytes | bytearray | memoryview | Any


class BlobStore:
    """Blob storage: one backend, metadata in ``Blob`` documents."""

    def __init__(self, backend: BlobBackend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
        self.max_size = settings.blob_max_size
        self.chunk_size = settings.blob_chunk_size
        self._signer = URLSafeSerializer(derive_key(settings, "blob links"), salt=URL_SALT)

    @classmethod
    def from_settings(cls, settings: Settings, backend: BlobBackend | None = None) -> BlobStore:
        """The store on ``backend``, else on the backend ``BLOB_BACKEND`` names.

        ``BLOB_BACKEND`` is ``local``, ``s3`` or a dotted path to an app's own class;
        bad settings raise ``ConfigurationError``.

        Nothing is opened yet: use ``async with store`` (or ``start``/``close``).
        """
        if backend is not None:
            return cls(backend, settings)

        backend = build_backend("BLOB_BACKEND", settings.blob_backend, BLOB_BACKENDS, settings)
        return cls(backend, settings)

    async def start(self) -> None:
        """Open the backend (the S3 client; the optional bucket creation)."""
        try:
            await self.backend.start()
        except ConfigurationError:
            raise
        except Exception as exc:
            raise ConfigurationError(
                f"the {self.backend.name} blob backend could not start: {_describe(exc)}"
            ) from exc

    async def close(self) -> None:
        """Close the backend."""
        await self.backend.close()

    async def __aenter__(self) -> BlobStore:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- writing -------------------------------------------------------------------

    async def put(
        self,
        data: Source,
        *,
        filename: str,
        content_type: str | None = None,
        uploaded_by: UserModel | None = None,
        namespace: str | None = None,
        max_size: int | None = None,
        max_pixels: int | None = None,
    ) -> Blob:
        """Store ``data`` and return its ``available`` ``Blob``.

        ``data`` is bytes, a file object (sync or async ``read``), an async iterator of
        byte chunks, or an ``UploadFile``. ``filename`` is the client's name, kept for
        display only; the storage key is generated here. Raises ``BlobTooLarge`` above
        ``max_size`` (default ``BLOB_MAX_SIZE``), ``ImageTooLarge`` for a PNG, JPEG, GIF
        or WebP whose header states more than ``max_pixels`` (default
        ``IMAGE_MAX_PIXELS``), whatever its declared type, and ``BlobStorageError`` when
        the backend fails; an error raised by ``data`` itself propagates unchanged. On every
        failure the object is removed and the ``Blob`` deleted (or, when even the removal
        fails, kept as ``failed`` for ``vibetuner blobs check``); it is never ``available``.
        """
        space = namespace or DEFAULT_NAMESPACE
        if not NAMESPACE_PATTERN.fullmatch(space):
            raise ValueError(
                f"invalid blob namespace {namespace!r}: use 1-64 of a-z, 0-9, '_' and '-'"
            )
        name = safe_filename(filename)
        blob = Blob(
            key=f"{space}/{uuid.uuid4().hex}",
            backend=self.backend.name,
            content_type=resolve_content_type(content_type, name),
            filename=name,
            namespace=namespace,
            uploaded_by=uploaded_by,
            status=BlobStatus.PENDING,
        )
        await blob.insert()
        meter = _Meter(max_size or self.max_size)
        try:
            pixels = max_pixels or self.settings.image_max_pixels
            chunks = meter.count(_image_checked(_chunks(data, self.chunk_size), pixels))
            await self.backend.write(blob.key, chunks, content_type=blob.content_type)
            blob.size = meter.size
            blob.sha256 = meter.hexdigest()
            blob.status = BlobStatus.AVAILABLE
            await blob.save()
        except BaseException as exc:
            # Shielded: a cancelled request must still clean up after itself.
            await asyncio.shield(self._discard(blob))
            if exc is meter.source_error or isinstance(exc, (BlobError, ValueError, TypeError)):
                raise
            if isinstance(exc, Exception):
                raise self._storage_error("store", exc) from exc
            raise
        return blob

    async def _discard(self, blob: Blob) -> None:
        """Remove what a failed upload left: the object, then the ``Blob``.

        If the object cannot be removed the ``Blob`` is kept, marked ``failed``, so that
        ``vibetuner blobs check --delete`` can remove both later.
        """
        try:
            await self.backend.delete(blob.key)
        except Exception:
            logger.exception("could not remove the object of failed upload %s", blob.key)
            blob.status = BlobStatus.FAILED
            try:
                await blob.save()
            except Exception:
                logger.exception("could not mark failed upload %s", blob.key)
            return
        try:
            await blob.delete()
        except Exception:
            logger.exception("could not remove the metadata of failed upload %s", blob.key)

    # --- reading -------------------------------------------------------------------

    def open(self, blob: Blob, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Chunks of the blob's bytes, optionally only ``start`` to ``end`` (inclusive).

        Raises ``BlobUnavailable`` for a blob that is not ``available``; iteration raises
        ``BlobNotFound`` when the object is missing from the backend.
        """
        if not blob.is_available:
            raise BlobUnavailable(f"blob {blob.id} is {blob.status.value}, not available")
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}-{end}")
        if blob.size == 0:
            return _empty()
        last = blob.size - 1
        end = last if end is None else min(end, last)
        if start > last:
            raise ValueError(f"byte range starts at {start}, after the end of the blob")
        if start == 0 and end == last:
            return self._reading(self.backend.read(blob.key))
        return self._reading(self.backend.read(blob.key, start, end))

    async def _reading(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
        except BlobError:
            raise
        except Exception as exc:
            raise self._storage_error("read", exc) from exc
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    async def exists(self, blob: Blob) -> bool:
        """True when the blob's bytes are in the backend."""
        try:
            return await self.backend.exists(blob.key)
        except Exception as exc:
            raise self._storage_error("check", exc) from exc

    async def delete(self, blob: Blob) -> None:
        """Remove the stored object and then the ``Blob``.

        Raises ``BlobStorageError`` (and keeps the ``Blob``) when the object cannot be removed.
        """
        try:
            await self.backend.delete(blob.key)
        except Exception as exc:
            raise self._storage_error("delete", exc) from exc
        await blob.delete()

    def _storage_error(self, action: str, exc: BaseException) -> BlobStorageError:
        return BlobStorageError(
            f"the {self.backend.name} blob backend could not {action} the file: {_describe(exc)}"
        )

    # --- links ---------------------------------------------------------------------

    async def url(self, blob: Blob, *, expires_in: int | None = None) -> str:
        """A URL that serves the blob without a session, valid for ``expires_in`` seconds.

        On S3 a presigned URL; on local disk a signed app URL
        (``{BASE_URL}/blobs/{id}/signed?token=...``). Default: ``BLOB_URL_TTL_SECONDS``.
        """
        ttl = self.settings.blob_url_ttl_seconds if expires_in is None else int(expires_in)
        if ttl < 1:
            raise ValueError("expires_in must be at least 1 second")
        if not blob.is_available:
            raise BlobUnavailable(f"blob {blob.id} is {blob.status.value}, not available")
        presigned = await self.backend.presigned_url(
            blob.key,
            expires_in=ttl,
            content_type=blob.content_type,
            content_disposition=content_disposition(blob.filename, blob.content_type),
        )
        if presigned is not None:
            return presigned
        return self.signed_url(blob, expires_at=int(time.time()) + ttl)

    def signed_url(self, blob: Blob, *, expires_at: int) -> str:
        """The app URL of ``blob`` signed to work until ``expires_at`` (a Unix time)."""
        token = self._signer.dumps([str(blob.id), int(expires_at)])
        base = self.settings.base_url.rstrip("/")
        return f"{base}/blobs/{blob.id}/signed?token={token}"

    def check_token(self, blob_id: str, token: str) -> bool:
        """True when ``token`` was signed by this app for ``blob_id`` and has not expired."""
        try:
            signed_id, expires_at = self._signer.loads(token)
        except (BadSignature, ValueError, TypeError):
            return False
        if not isinstance(expires_at, int) or not isinstance(signed_id, str):
            return False
        return hmac.compare_digest(signed_id, str(blob_id)) and expires_at >= time.time()


# --- file names and types ------------------------------------------------------------


def safe_filename(name: Any) -> str:
    """The client's file name reduced to something safe to display and send back.

    Directory parts (``/`` and ``\\``), control and format characters (NUL, CR/LF,
    bidi overrides) are removed, Unicode is NFC-normalised and the result is cut to
    255 characters keeping the extension. Empty results become ``"download"``.
    """
    text = name if isinstance(name, str) else ""
    text = unicodedata.normalize("NFC", text)
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp"))
    text = text.strip()
    if text in ("", ".", ".."):
        return FALLBACK_FILENAME
    if len(text) > MAX_FILENAME_LENGTH:
        stem, dot, ext = text.rpartition(".")
        if dot and 0 < len(ext) <= 16 and stem:
            text = stem[: MAX_FILENAME_LENGTH - len(ext) - 1].rstrip() + "." + ext
        else:
            text = text[:MAX_FILENAME_LENGTH]
    return text


def resolve_content_type(value: str | None, filename: str) -> str:
    """The client's content type when it is well-formed, else guessed from the name.

    ``application/octet-stream`` from a client means "unknown", so the name is tried
    first; the last resort is ``application/octet-stream``.
    """
    if isinstance(value, str):
        candidate = value.strip()
        if len(candidate) <= 255 and _CONTENT_TYPE.fullmatch(candidate):
            kind, _, params = candidate.partition(";")
            kind = kind.strip().lower()
            if kind != "application/octet-stream":
                return f"{kind}; {params.strip()}" if params.strip() else kind
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"


def content_disposition(filename: str, content_type: str) -> str:
    """A ``Content-Disposition`` value (RFC 6266) with an ASCII and a UTF-8 name.

    Types a browser could run (HTML, SVG, scripts) are always attachments.
    """
    name = safe_filename(filename)
    kind = "inline" if _INLINE_TYPES.fullmatch(content_type.split(";")[0].strip()) else "attachment"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r"[^A-Za-z0-9._ ()+-]", "_", ascii_name).strip() or FALLBACK_FILENAME
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


# --- streaming helpers ---------------------------------------------------------------


class _Meter:
    """Counts size and SHA-256 of the chunks passing through; enforces the size limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()
        self.source_error: BaseException | None = None

    async def count(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        # Large chunks are hashed in a worker thread (hashlib releases the GIL) while the
        # consumer stores this chunk and the loop receives the next one; updates stay in
        # order because each waits for the one before.
        loop = asyncio.get_running_loop()
        hashing: asyncio.Future[None] | None = None
        try:
            async for chunk in chunks:
                self.size += len(chunk)
                if self.size > self.limit:
                    raise BlobTooLarge(self.limit)
                if hashing is not None:
                    await hashing
                    hashing = None
                if len(chunk) >= _THREAD_HASH_MIN:
                    hashing = loop.run_in_executor(None, self._hash.update, chunk)
                else:
                    self._hash.update(chunk)
                yield chunk
            if hashing is not None:
                await hashing
        except BlobError:
            raise
        except BaseException as exc:
            self.source_error = exc
            raise

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


async def _image_checked(chunks: AsyncIterator[bytes], max_pixels: int) -> AsyncIterator[bytes]:
    """The chunks, refused with ``ImageTooLarge`` as soon as an image header says too big.

    The check is on the bytes, not the declared type: a browser shows an image in an
    ``<img>`` whatever type it was served as. Bytes that are no image pass unchanged.
    """
    probe = ImageProbe()
    async for chunk in chunks:
        if not probe.done:
            probe.feed(chunk)
            if probe.done:
                check_pixels(probe.size, max_pixels)
        yield chunk


async def _chunks(data: Source, chunk_size: int) -> AsyncIterator[bytes]:
    """Any supported source as chunks of about ``chunk_size`` bytes."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data).cast("B")
        for offset in range(0, len(view), chunk_size):
            yield bytes(view[offset : offset + chunk_size])
        return
    if isinstance(data, str):
        raise TypeError("blob data must be bytes, not str; encode it first")
    read = getattr(data, "read", None)
    if read is not None:
        while True:
            if inspect.iscoroutinefunction(read):
                chunk = await read(chunk_size)
            else:
                chunk = await asyncio.to_thread(read, chunk_size)
            if not chunk:
                return
            if isinstance(chunk, str):
                raise TypeError("blob data must be bytes; open the file in binary mode")
            yield bytes(chunk)
    if hasattr(data, "__aiter__"):
        # Regroup small chunks (a network stream gives ~64 KiB) so each backend write is
        # about chunk_size: fewer thread hops on disk, fewer calls on S3.
        pieces: list[bytes | bytearray | memoryview] = []
        pending = 0
        async for chunk in data:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"blob chunks must be bytes, got {type(chunk).__name__}")
            if not pieces and len(chunk) >= chunk_size:
                yield bytes(chunk)
                continue
            pieces.append(chunk)
            pending += len(chunk)
            if pending >= chunk_size:
                yield b"".join(pieces)
                pieces, pending = [], 0
        if pieces:
            yield b"".join(pieces)
        return
    raise TypeError(
        "blob data must be bytes, a file object, an async iterator of bytes or an UploadFile, "
        f"not {type(data).__name__}"
    )


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

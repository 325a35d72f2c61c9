"""Read one file out of a ``multipart/form-data`` request body as it arrives.

Starlette's ``request.form()`` spools the whole upload to a temporary file before the
route runs, so a size limit trips only at the end and every byte is written twice.
``MultipartFileReader`` drives python-multipart's streaming parser over
``request.stream()`` instead and hands the file's bytes on chunk by chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from vibetuner.errors import UploadError, UploadTooLarge

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks


@dataclass(frozen=True)
class FilePart:
    """The headers of the file part: the client's name and content type."""

    filename: str
    content_type: str | None


def multipart_boundary(content_type: str | None) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type, else None."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        return None
    return boundary


class PartHeaders:
    """python-multipart callbacks that collect the headers of each part (names lower-cased).

    Readers subclass it, pass :meth:`header_callbacks` to ``MultipartParser`` and act
    in their own ``on_headers_finished`` callback on ``self._headers``.
    """

    def __init__(self) -> None:
        self._headers: dict[bytes, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()

    def header_callbacks(self) -> MultipartCallbacks:
        """The callbacks that fill ``self._headers`` part by part."""
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
        }

    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()


class MultipartFileReader(PartHeaders):
    """Finds the part named ``field`` and yields its bytes; counts every body byte.

    ``max_body`` bounds the whole body (parts before the file included): going over it
    raises ``UploadTooLarge`` at once, without reading further.
    """

    def __init__(
        self, stream: AsyncIterator[bytes], boundary: bytes, *, field: str, max_body: int
    ) -> None:
        super().__init__()
        self._stream = stream
        self._field = field.encode("ascii")
        self._max_body = max_body
        self.received = 0
        self._eof = False
        self._in_file = False
        self._file: FilePart | None = None
        self._file_done = False
        self._pending: list[bytes] = []
        self._parser = MultipartParser(
            boundary,
            {
                **self.header_callbacks(),
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    async def file(self) -> FilePart | None:
        """Read until the file part's headers; None when the body has no such part."""
        while self._file is None and not self._eof:
            await self._feed()
        return self._file

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes, as they arrive. Call after ``file()`` found the part."""
        if self._file is None:
            raise RuntimeError("call file() first")
        while True:
            if self._pending:
                pending, self._pending = self._pending, []
                for piece in pending:
                    yield piece
            if self._file_done:
                return
            if self._eof:
                raise UploadError("The upload ended before the end of the file.")
            await self._feed()

    async def _feed(self) -> None:
        try:
            chunk = await anext(self._stream)
        except StopAsyncIteration:
            chunk = b""
            self._eof = True
        self.received += len(chunk)
        if self.received > self._max_body:
            raise UploadTooLarge("The upload is larger than the size limit.")
        try:
            if chunk:
                self._parser.write(chunk)
            if self._eof:
                self._parser.finalize()
        except MultipartParseError as exc:
            raise UploadError(f"Malformed multipart body: {exc}") from None

    # python-multipart callbacks -----------------------------------------------------

    def _on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"").decode("latin-1")
        _, options = parse_options_header(disposition)
        if self._file is not None or options.get(b"name") != self._field:
            return
        raw_name = options.get(b"filename")
        if raw_name == b"":
            # Browsers send an empty file name when no file was chosen.
            return
        content_type = self._headers.get(b"content-type")
        self._file = FilePart(
            filename=(raw_name or b"").decode("utf-8", errors="replace"),
            content_type=content_type.decode("latin-1") if content_type else None,
        )
        self._in_file = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file and end > start:
            # Most network chunks are file data only: keep them without a copy.
            self._pending.append(data if start == 0 and end == len(data) else data[start:end])

    def _on_part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True

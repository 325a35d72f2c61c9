"""The pixel size of a PNG, JPEG, GIF or WebP image, read from its header alone.

A decoder needs width x height x 4 bytes whatever the file's size: a 400 KB PNG of
20,000 x 20,000 zeros becomes 1.6 GB in memory. Uploads are therefore checked from the
few bytes of the header that state the size (PNG ``IHDR``, JPEG ``SOFn``, GIF screen and
first frame, WebP ``VP8``/``VP8L``/``VP8X``), before anything decodes them, and refused
past ``IMAGE_MAX_PIXELS``. Nothing here decodes pixels, and nothing needs Pillow.

:class:`ImageProbe` takes the bytes as they stream past (``feed``), keeps at most one
small field in memory and skips JPEG segments without holding them; :func:`image_size`
does the same for bytes already in memory.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from dataclasses import dataclass

from vibetuner.errors import ImageTooLarge

# A parser asks for bytes with (skip, count): pass `skip` bytes, then hand over the next
# `count` (fewer at the end of the file). It returns the size, or None when it gives up.
Request = tuple[int, int]
Parser = Generator[Request, bytes, "ImageSize | None"]

# Bounded work for a hostile file: a real header is found within a few dozen requests
# (one per JPEG segment); 4,096 also leaves room for a few stray bytes between segments.
MAX_STEPS = 4096

# JPEG start-of-frame markers (SOF0-SOF15 without DHT, JPG and DAC): they hold the size.
JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers with no length field after them.
JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


@dataclass(frozen=True)
class ImageSize:
    """An image's format (``png``, ``jpeg``, ``gif``, ``webp``) and size in pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        """Width times height."""
        return self.width * self.height

    def __str__(self) -> str:
        return f"{self.width} x {self.height} pixels"


class ImageProbe:
    """Finds an image's size in bytes fed to it as they arrive.

    ``done`` is True once the header was read or the bytes turned out not to be one
    of the four formats; ``size`` is then the answer (None: not a readable image).
    """

    def __init__(self) -> None:
        self._parser: Parser = _parse()
        self._skip, self._want = next(self._parser)
        self._buffer = bytearray()
        self._steps = 0
        self.done = False
        self.size: ImageSize | None = None

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Read ``chunk``, the bytes that follow those fed before."""
        data = memoryview(chunk).cast("B")
        while data and not self.done:
            if self._skip:
                passed = min(self._skip, len(data))
                self._skip -= passed
                data = data[passed:]
                continue
            taken = data[: self._want - len(self._buffer)]
            self._buffer += taken
            data = data[len(taken) :]
            if len(self._buffer) == self._want:
                self._answer(bytes(self._buffer))

    def finish(self) -> ImageSize | None:
        """The end of the file: the size, or None when the header was not complete."""
        if not self.done:
            self._answer(bytes(self._buffer) if not self._skip else b"")
        if not self.done:  # a parser that asks again past the end has given up
            self.done = True
        return self.size

    def _answer(self, data: bytes) -> None:
        self._steps += 1
        try:
            if self._steps > MAX_STEPS:
                raise StopIteration(None)
            self._skip, self._want = self._parser.send(data)
        except StopIteration as stop:
            self.done = True
            self.size = stop.value
            self._parser.close()
        self._buffer = bytearray()


def image_size(data: bytes | bytearray | memoryview) -> ImageSize | None:
    """The size stated in the header of the image ``data``; None when it is not one."""
    probe = ImageProbe()
    probe.feed(data)
    return probe.finish()


def check_pixels(size: ImageSize | None, max_pixels: int) -> None:
    """Raise ``ImageTooLarge`` when ``size`` has more than ``max_pixels`` pixels."""
    if size is not None and size.pixels > max_pixels:
        raise ImageTooLarge(
            f"the image is {size} ({size.pixels / 1e6:.1f} megapixels); images of up to "
            f"{max_pixels / 1e6:g} megapixels are accepted",
            size=size,
            max_pixels=max_pixels,
        )


# --- the parsers -------------------------------------------------------------------------


def _parse() -> Parser:
    head = yield (0, 2)
    if head == b"\xff\xd8":
        return (yield from _jpeg())
    head += yield (0, 10)
    if len(head) < 12:
        return None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return (yield from _png(head))
    if head.startswith((b"GIF87a", b"GIF89a")):
        return (yield from _gif(head))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return (yield from _webp())
    return None


def _png(head: bytes) -> Parser:
    # Signature (8), then the first chunk, which must be IHDR: length, type, width, height.
    rest = yield (0, 12)
    data = head[8:] + rest
    if len(data) < 16 or data[4:8] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[8:16])
    return ImageSize("png", width, height)


def _jpeg() -> Parser:
    # Segments: 0xFF, the marker (after any 0xFF fill bytes), a 2-byte length that counts
    # itself, the payload. Stray bytes before a marker are passed over, as decoders do.
    pending = b""
    skip = 0
    while True:
        if len(pending) < 2:
            more = yield (skip, 2 - len(pending))
            skip = 0
            if not more:
                return None
            pending += more
            continue
        if pending[0] != 0xFF or pending[1] in (0xFF, 0x00):
            pending = pending[1:]  # a stray byte, a fill byte, or 0xFF00 outside a scan
            continue
        marker, pending = pending[1], b""
        if marker == 0xD8 or marker in JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image, or the scan began: no frame header
            return None
        length_bytes = yield (0, 2)
        if len(length_bytes) < 2:
            return None
        (length,) = struct.unpack(">H", length_bytes)
        if length < 2:
            return None
        if marker in JPEG_SOF:
            frame = yield (0, 5)  # precision, height, width
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return ImageSize("jpeg", width, height)
        skip = length - 2  # the segment's payload, passed over with the next read


def _gif(head: bytes) -> Parser:
    # Signature (6), the logical screen's width and height, flags, background colour (12
    # bytes so far), aspect ratio, the global colour table; then blocks up to the first
    # image descriptor, which may reach past the screen: the decoder's canvas covers both.
    width, height = struct.unpack("<HH", head[6:10])
    flags = head[10]
    skip = 1 + (3 * 2 ** ((flags & 0x07) + 1) if flags & 0x80 else 0)
    while True:
        block = yield (skip, 1)
        if not block or block == b";":
            return ImageSize("gif", width, height)
        if block == b"!":  # extension: a label, then sub-blocks ending with a zero length
            label = yield (0, 2)
            if len(label) < 2:
                return None
            skip = label[1]
            while skip:
                length = yield (skip, 1)
                if not length:
                    return None
                skip = length[0]
            continue
        if block != b",":
            return None
        frame = yield (0, 8)  # left, top, width, height
        if len(frame) < 8:
            return None
        left, top, frame_width, frame_height = struct.unpack("<HHHH", frame)
        return ImageSize("gif", max(width, left + frame_width), max(height, top + frame_height))


def _webp() -> Parser:
    # The first chunk after "RIFF....WEBP": its type, its size, then the size fields.
    chunk = yield (0, 8)
    kind = chunk[:4]
    if kind == b"VP8X":
        canvas = yield (0, 10)  # flags (4), canvas width - 1 (3), canvas height - 1 (3)
        if len(canvas) < 10:
            return None
        width = int.from_bytes(canvas[4:7], "little") + 1
        height = int.from_bytes(canvas[7:10], "little") + 1
        return ImageSize("webp", width, height)
    if kind == b"VP8L":
        bits = yield (0, 5)  # signature 0x2F, then 14 bits width - 1, 14 bits height - 1
        if len(bits) < 5 or bits[0] != 0x2F:
            return None
        value = int.from_bytes(bits[1:5], "little")
        return ImageSize("webp", (value & 0x3FFF) + 1, ((value >> 14) & 0x3FFF) + 1)
    if kind == b"VP8 ":
        frame = yield (0, 10)  # frame tag (3), start code 9D 01 2A, 14-bit width, height
        if len(frame) < 10 or frame[3:6] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", frame[6:10])
        return ImageSize("webp", width & 0x3FFF, height & 0x3FFF)
    return None

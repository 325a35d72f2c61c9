"""Images for tests, decompression bombs included, made here rather than shipped.

``png_bomb`` is a real PNG: a decoder given it allocates every pixel. Its rows of zeros
are compressed as they are made, so building a 20,000 x 20,000 one never holds the
400 MB of raw pixels (a few hundred KB come out).
"""

from __future__ import annotations

import io
import struct
import zlib
from functools import lru_cache


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@lru_cache(maxsize=4)
def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """An all-black 8-bit greyscale PNG of ``width`` x ``height``, compressed to the hilt."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte "none" and the row's zeros
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def picture(fmt: str, width: int = 64, height: int = 48, **options: object) -> bytes:
    """A real ``fmt`` (PNG, JPEG, GIF, WEBP) image made by Pillow."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(out, format=fmt, **options)
    return out.getvalue()


def with_jpeg_size(jpeg: bytes, width: int, height: int) -> bytes:
    """``jpeg`` with its frame header (SOF) stating ``width`` x ``height`` instead."""
    offset = 2
    while True:
        marker, length = jpeg[offset + 1], struct.unpack(">H", jpeg[offset + 2 : offset + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            start = offset + 5
            return jpeg[:start] + struct.pack(">HH", height, width) + jpeg[start + 4 :]
        offset += 2 + length

"""Image sizes read from headers, checked against Pillow's own reading of the same files."""

from __future__ import annotations

import io
import struct
import time
from typing import Any

import pytest
from PIL import Image

from tests.images import picture, png_bomb, with_jpeg_size
from vibetuner.services.images import ImageProbe, ImageSize, image_size

FILES = {
    "png": picture("PNG", 321, 123),
    "png-rgba-interlaced": picture("PNG", 77, 1000, interlace=1),
    "jpeg": picture("JPEG", 640, 480),
    "jpeg-progressive-exif": picture(
        "JPEG", 1000, 3, progressive=True, exif=b"Exif\x00\x00" + b"x" * 30_000
    ),
    "gif": picture("GIF", 5, 600),
    "gif-with-extensions": picture("GIF", 70, 7, comment=b"c" * 700, loop=0, duration=50),
    "webp-lossy": picture("WEBP", 1234, 567),
    "webp-lossless": picture("WEBP", 99, 16383, lossless=True),
    "webp-extended": picture("WEBP", 300, 200, exif=b"Exif\x00\x00" + b"x" * 100),
}


def fed_in_pieces(data: bytes, size: int) -> ImageSize | None:
    probe = ImageProbe()
    for start in range(0, len(data), size):
        probe.feed(data[start : start + size])
    return probe.finish()


@pytest.mark.parametrize("name", FILES)
def test_sizes_match_pillow(name: str) -> None:
    data = FILES[name]
    with Image.open(io.BytesIO(data)) as image:
        expected = image.size
    found = image_size(data)
    assert found is not None and (found.width, found.height) == expected
    assert found.format == name.split("-")[0]
    # However the bytes arrive: one at a time, or in network-sized pieces.
    assert fed_in_pieces(data, 1) == found
    assert fed_in_pieces(data, 1000) == found


def test_a_real_bomb_is_measured_from_its_first_bytes() -> None:
    bomb = png_bomb()
    probe = ImageProbe()
    probe.feed(bomb[:64])
    assert probe.done and probe.size == ImageSize("png", 20_000, 20_000)
    assert probe.size.pixels == 400_000_000


def test_a_gif_frame_larger_than_its_screen_counts() -> None:
    small = bytearray(picture("GIF", 10, 10))
    # The first image descriptor (after the 13-byte header and the colour table):
    # make the frame 5,000 x 4,000 while the screen stays 10 x 10.
    descriptor = small.index(b",", 13)
    small[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 5_000, 4_000)
    assert image_size(bytes(small)) == ImageSize("gif", 5_000, 4_000)


def test_a_jpeg_with_fill_and_stray_bytes_before_the_frame_header() -> None:
    jpeg = picture("JPEG", 40, 30)
    after_app0 = 4 + struct.unpack(">H", jpeg[4:6])[0]
    messy = jpeg[:after_app0] + b"junk\xff\xff\xff" + jpeg[after_app0:]
    with Image.open(io.BytesIO(messy)) as image:
        assert image.size == (40, 30)
    assert image_size(messy) == ImageSize("jpeg", 40, 30)
    assert image_size(with_jpeg_size(jpeg, 65_535, 65_535)) == ImageSize("jpeg", 65_535, 65_535)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plain text, not an image",
        b"\x89PNG\r\n\x1a\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00",  # cut inside IHDR
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,  # no IHDR first
        b"\xff\xd8\xff\xda\x00\x08",  # the scan starts before any frame header
        b"\xff\xd8\xff\xe1\x00\x01",  # a segment length shorter than itself
        b"\xff\xd8\xff\xe1\xff\xff" + b"x" * 100,  # cut inside a segment
        b"GIF89a\x0a\x00",
        b"RIFF\x00\x00\x00\x00WEBPVP8 \x10\x00\x00\x00\x00\x00\x00BAD",
        b"RIFF\x00\x00\x00\x00WEBPJUNK",
    ],
)
def test_what_is_not_a_readable_image_has_no_size(data: bytes) -> None:
    assert image_size(data) is None
    assert fed_in_pieces(data, 1) is None


def test_hostile_files_cost_bounded_work() -> None:
    # Megabytes of stray bytes after the JPEG start, or thousands of tiny segments:
    # the probe gives up after a bounded number of steps instead of walking them all.
    garbage = b"\xff\xd8" + b"\x00" * 20_000_000
    segments = b"\xff\xd8" + b"\xff\xfe\x00\x02" * 5_000_000 + picture("JPEG")[2:]
    for data in (garbage, segments):
        started = time.perf_counter()
        probe = ImageProbe()
        for offset in range(0, len(data), 1024 * 1024):
            probe.feed(data[offset : offset + 1024 * 1024])
            if probe.done:
                break
        assert probe.finish() is None
        assert time.perf_counter() - started < 1.0


async def test_the_store_refuses_a_bomb_on_every_backend(store: Any) -> None:
    from tests.blobs.conftest import stored_keys
    from vibetuner.errors import ImageTooLarge
    from vibetuner.models import Blob

    async def network_pieces() -> Any:  # as an upload arrives: 64 KiB at a time
        bomb = png_bomb()
        for start in range(0, len(bomb), 64 * 1024):
            yield bomb[start : start + 64 * 1024]

    with pytest.raises(ImageTooLarge) as refused:
        await store.put(network_pieces(), filename="bomb.png", content_type="image/png")
    assert refused.value.size == ImageSize("png", 20_000, 20_000)
    assert await Blob.count() == 0 and await stored_keys(store) == []
    # Under a larger limit (as before there was one) the same bytes are stored.
    kept = await store.put(png_bomb(), filename="bomb.png", max_pixels=400_000_000)
    assert kept.size == len(png_bomb())

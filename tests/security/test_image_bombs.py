"""Decompression bombs: an image whose header states more pixels than ``IMAGE_MAX_PIXELS``
is refused before anything decodes it, however small the file.

The bombs are real files: a 20,000 x 20,000 PNG of about 390 KB that a decoder (a
browser showing the picture, the admin's preview, Pillow) would expand to 400 MB or more.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.admin.conftest import admin_app, browser_for, make_user  # noqa: F401
from tests.images import picture, png_bomb, with_jpeg_size
from vibetuner.blobs.store import BlobStore
from vibetuner.models import Blob, UserModel
from vibetuner.testing import app_context

HTML = {"Accept": "text/html"}


async def stored_objects(app: Any) -> list[str]:
    return [key async for key in app_context(app).get(BlobStore).backend.keys()]


async def test_a_bomb_is_refused_as_a_profile_picture(
    app: Any, signed_in_client: Any, user: Any
) -> None:
    bomb = png_bomb()
    assert len(bomb) < 400 * 1024
    answer = await signed_in_client.post(
        "/account/picture", files={"picture": ("me.png", bomb, "image/png")}
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "image_too_large"
    assert "20000 x 20000 pixels" in answer.json()["detail"]
    assert "50 megapixels" in answer.json()["detail"]
    page = await signed_in_client.post(
        "/account/picture", files={"picture": ("me.png", bomb, "image/png")}, headers=HTML
    )
    assert page.status_code == 422 and "Image too large" in page.text
    assert (await UserModel.get(user.id)).picture is None
    assert await Blob.count() == 0 and await stored_objects(app) == []


async def test_a_picture_whose_size_cannot_be_read_is_refused(signed_in_client: Any) -> None:
    # The PNG signature, then no IHDR: nothing says how large it would be.
    answer = await signed_in_client.post(
        "/account/picture",
        files={"picture": ("me.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")},
    )
    assert answer.status_code == 415 and answer.json()["code"] == "unsupported_picture"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
async def test_pictures_under_the_limit_are_accepted(signed_in_client: Any, fmt: str) -> None:
    answer = await signed_in_client.post(
        "/account/picture", files={"picture": ("me", picture(fmt, 1600, 1200), "image/x")}
    )
    assert answer.status_code == 303


@pytest.mark.parametrize("declared", ["image/png", "application/octet-stream", "text/plain"])
async def test_a_bomb_is_refused_by_the_blob_api_whatever_its_declared_type(
    app: Any, signed_in_client: Any, declared: str
) -> None:
    answer = await signed_in_client.post(
        "/blobs", files={"file": ("notes.txt", png_bomb(), declared)}
    )
    assert answer.status_code == 422
    assert answer.json()["code"] == "image_too_large"
    assert "20000 x 20000" in answer.json()["detail"]
    assert await Blob.count() == 0 and await stored_objects(app) == []


async def test_a_jpeg_stating_its_size_behind_large_metadata_is_refused(
    app: Any, signed_in_client: Any
) -> None:
    # 60 KB of EXIF before the frame header, which states 30,000 x 20,000.
    metadata = b"Exif\x00\x00" + b"x" * 60_000
    bomb = with_jpeg_size(picture("JPEG", exif=metadata), 30_000, 20_000)
    answer = await signed_in_client.post("/blobs", files={"file": ("a.jpg", bomb, "image/jpeg")})
    assert answer.status_code == 422 and "30000 x 20000" in answer.json()["detail"]
    assert await Blob.count() == 0


@pytest.fixture
def vibetuner_settings(vibetuner_settings: Any, request: pytest.FixtureRequest) -> Any:
    """The plugin's settings; a test may set ``IMAGE_MAX_PIXELS`` by parametrizing this."""
    limit = getattr(request, "param", None)
    if limit is None:
        return vibetuner_settings
    return vibetuner_settings.model_copy(update={"image_max_pixels": limit})


@pytest.mark.parametrize("vibetuner_settings", [64 * 48 - 1], indirect=True)
async def test_the_pixel_limit_is_a_setting(signed_in_client: Any) -> None:
    refused = await signed_in_client.post(
        "/blobs", files={"file": ("a.gif", picture("GIF", 64, 48), "image/gif")}
    )
    assert refused.status_code == 422
    assert "images of up to 0.003071 megapixels" in refused.json()["detail"]
    accepted = await signed_in_client.post(
        "/blobs", files={"file": ("a.gif", picture("GIF", 63, 48), "image/gif")}
    )
    assert accepted.status_code == 201
    # Files that are not images are not affected.
    other = await signed_in_client.post("/blobs", files={"file": ("a.txt", b"x" * 10_000)})
    assert other.status_code == 201


async def test_the_admin_does_not_preview_a_stored_bomb(
    admin_app: Any,  # noqa: F811
    browser_for: Any,  # noqa: F811
) -> None:
    admin = await make_user(roles=["admin"])
    store = app_context(admin_app).get(BlobStore)
    # As stored before the limit existed (or under a larger one).
    bomb = await store.put(
        png_bomb(),
        filename="bomb.png",
        content_type="image/png",
        uploaded_by=admin,
        max_pixels=10**9,
    )
    small = await store.put(
        picture("PNG"), filename="cat.png", content_type="image/png", uploaded_by=admin
    )
    http = await browser_for(admin)
    for page in ("/admin/blobs/list", f"/admin/blobs/detail?pk={bomb.id}"):
        listing = (await http.get(page)).text
        assert f'<img src="/admin/_vt/blobs/{bomb.id}/content"' not in listing
        assert "No preview: 20000 x 20000 pixels" in listing
    listing = (await http.get("/admin/blobs/list")).text
    assert f'<img src="/admin/_vt/blobs/{small.id}/content"' in listing

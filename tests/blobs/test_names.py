"""Hostile file names: keys never come from them, files never land outside BLOB_DIR,
and names sent back in headers are sanitised."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from vibetuner.blobs.backend import KEY_PATTERN
from vibetuner.blobs.store import content_disposition, safe_filename

HOSTILE_NAMES = [
    "../../etc/passwd",
    "../../../../../../tmp/escape.txt",
    "/etc/passwd",
    "/absolute/path/file.txt",
    "C:\\Windows\\System32\\evil.dll",
    "..\\..\\evil.txt",
    "\\..\\..\\evil.txt",
    "\\\\server\\share\\evil.txt",
    "a\x00b.txt",
    "nul\x00/../../x",
    "..",
    ".",
    "",
    "   ",
    "%2e%2e%2fescape",
    "résumé 履歴書 \U0001f600.pdf",
    "\u202egnp.exe",
    "line\r\nX-Injected: yes.txt",
    '"quoted"; filename=evil.txt',
    "x" * 5000 + ".txt",
    "ё" * 300,
]


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("blob_backend", ["local"], indirect=True)
async def test_hostile_names_cannot_escape_the_blob_directory(store: Any, tmp_path: Path) -> None:
    blob_dir = store.backend.root
    before = files_under(tmp_path)
    for name in HOSTILE_NAMES:
        blob = await store.put(b"payload", filename=name)
        assert KEY_PATTERN.fullmatch(blob.key), name
        path = store.backend.path(blob.key)
        assert path.is_file() and path.resolve().is_relative_to(blob_dir.resolve())
        assert path.relative_to(blob_dir).parts == ("blobs", blob.key[6:8], blob.key[6:])
    created = files_under(tmp_path) - before
    assert len(created) == len(HOSTILE_NAMES)
    assert all(path.is_relative_to(blob_dir) for path in created)
    assert not any_exists(Path("/tmp/escape.txt"), blob_dir.parent / "evil.txt")


def any_exists(*paths: Path) -> bool:
    return any(path.exists() for path in paths)


def test_keys_that_are_not_server_generated_are_refused(tmp_path: Path) -> None:
    from vibetuner.blobs.local import LocalBackend

    backend = LocalBackend(tmp_path)
    for key in ("../x", "blobs/../../etc/passwd", "/etc/passwd", "blobs/" + "a" * 31, "blobs\\x"):
        with pytest.raises(ValueError, match="not a blob storage key"):
            backend.path(key)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_safe_filename(name: str) -> None:
    safe = safe_filename(name)
    assert safe and len(safe) <= 255
    assert "/" not in safe and "\\" not in safe
    assert not re.search(r"[\x00-\x1f\x7f\u202e]", safe)
    assert safe not in (".", "..")


def test_safe_filename_keeps_ordinary_names_and_extensions() -> None:
    assert safe_filename("report 2024 (final).pdf") == "report 2024 (final).pdf"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\me\\photo.jpg") == "photo.jpg"
    long = safe_filename("n" * 400 + ".tar.gz")
    assert len(long) == 255 and long.endswith(".gz")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_content_disposition_is_well_formed(name: str) -> None:
    header = content_disposition(name, "application/octet-stream")
    assert header.isascii() and "\r" not in header and "\n" not in header
    match = re.fullmatch(
        r"attachment; filename=\"([^\"\\]*)\"; filename\*=UTF-8''([^\s;\"]+)", header
    )
    assert match, header
    assert unquote(match.group(2), errors="strict") == safe_filename(name)


def test_content_disposition_never_inline_for_active_content() -> None:
    for kind in ("text/html", "image/svg+xml", "application/javascript", "application/xhtml+xml"):
        assert content_disposition("x", kind).startswith("attachment;")
    assert content_disposition("x.png", "image/png").startswith("inline;")


async def test_hostile_names_through_the_route(
    signed_in_client: httpx.AsyncClient, store: Any
) -> None:
    for name in HOSTILE_NAMES:
        created = await signed_in_client.post(
            "/blobs", files={"file": (name, b"payload", "text/html")}
        )
        if len(name.encode()) > 4096:
            # Past python-multipart's part-header limit: a clear 400, nothing stored.
            assert created.status_code == 400, name
            assert "header" in created.json()["detail"]
            continue
        assert created.status_code == 201, (name, created.text)
        body = created.json()
        assert "/" not in body["filename"] and "\\" not in body["filename"]
        content = await signed_in_client.get(f"/blobs/{body['id']}/content")
        assert content.status_code == 200 and content.content == b"payload"
        disposition = content.headers["content-disposition"]
        assert disposition.startswith("attachment;")  # HTML never renders inline
        assert unquote(disposition.split("UTF-8''")[1]) == body["filename"]
    keys = [key async for key in store.backend.keys()]
    assert keys and all(KEY_PATTERN.fullmatch(key) for key in keys)

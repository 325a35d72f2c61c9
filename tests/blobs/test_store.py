"""BlobStore behaviour, the same on local disk and on S3 (moto's server over HTTP)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import resource
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import UploadFile

from tests.blobs.conftest import MiB, leftovers
from vibetuner.blobs.backend import KEY_PATTERN
from vibetuner.blobs.store import BlobStorageError, BlobStore, BlobTooLarge, BlobUnavailable
from vibetuner.models import Blob, BlobStatus


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def chunked(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


@pytest.mark.parametrize(
    "make_source",
    [
        pytest.param(lambda data: data, id="bytes"),
        pytest.param(lambda data: io.BytesIO(data), id="file"),
        pytest.param(lambda data: chunked(data), id="async-iterator"),
        pytest.param(lambda data: UploadFile(io.BytesIO(data), filename="x"), id="uploadfile"),
    ],
)
async def test_put_accepts_every_source_and_round_trips(
    store: BlobStore, user: Any, make_source
) -> None:
    data = os.urandom(700_000)
    blob = await store.put(make_source(data), filename="data.bin", uploaded_by=user)

    assert blob.status == BlobStatus.AVAILABLE
    assert blob.size == len(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert KEY_PATTERN.fullmatch(blob.key) and blob.key.startswith("blobs/")
    assert await read_all(store.open(blob)) == data
    assert await store.exists(blob)
    saved = await Blob.get(blob.id)
    assert saved is not None and saved.status == BlobStatus.AVAILABLE and saved.size == len(data)


async def test_large_file_streams_through_multipart_parts(store: BlobStore) -> None:
    # 11 MiB: three parts of 5 MiB on S3, many chunks on disk.
    data = os.urandom(11 * MiB)
    blob = await store.put(chunked(data, 1_000_003), filename="big.bin")
    assert blob.size == len(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert await read_all(store.open(blob)) == data
    assert await leftovers(store) == [blob.key]


async def test_empty_file(store: BlobStore) -> None:
    blob = await store.put(b"", filename="empty.txt")
    assert blob.size == 0 and blob.sha256 == hashlib.sha256(b"").hexdigest()
    assert await read_all(store.open(blob)) == b""
    assert await store.exists(blob)


async def test_open_byte_ranges(store: BlobStore) -> None:
    data = bytes(range(256)) * 4000
    blob = await store.put(data, filename="r.bin")
    assert await read_all(store.open(blob, start=10, end=19)) == data[10:20]
    assert await read_all(store.open(blob, start=len(data) - 5)) == data[-5:]
    assert await read_all(store.open(blob, start=0, end=len(data) + 100)) == data
    with pytest.raises(ValueError):
        store.open(blob, start=len(data))
    with pytest.raises(ValueError):
        store.open(blob, start=5, end=4)


async def test_delete_removes_object_and_metadata(store: BlobStore) -> None:
    blob = await store.put(b"bye", filename="bye.txt")
    await store.delete(blob)
    assert await Blob.get(blob.id) is None
    assert not await store.exists(blob)
    assert await leftovers(store) == []


async def test_namespace_goes_into_the_key_and_is_validated(store: BlobStore) -> None:
    blob = await store.put(b"a", filename="a.txt", namespace="avatars")
    assert blob.key.startswith("avatars/") and blob.namespace == "avatars"
    for bad in ("../x", "A", "a/b", "", "x" * 65, "a\x00"):
        if bad == "":
            continue  # empty means the default namespace
        with pytest.raises(ValueError, match="namespace"):
            await store.put(b"a", filename="a.txt", namespace=bad)
    assert await Blob.find(Blob.status != BlobStatus.AVAILABLE).count() == 0


@pytest.mark.parametrize(
    ("given", "filename", "expected"),
    [
        ("image/png", "a.bin", "image/png"),
        ("Text/Plain; charset=utf-8", "a.bin", "text/plain; charset=utf-8"),
        ("not a type", "photo.jpg", "image/jpeg"),
        ("text/html\r\nX-Evil: 1", "page.html", "text/html"),
        (None, "notes.txt", "text/plain"),
        (None, "mystery", "application/octet-stream"),
        ("application/octet-stream", "doc.pdf", "application/pdf"),
    ],
)
async def test_content_type(
    store: BlobStore, given: str | None, filename: str, expected: str
) -> None:
    blob = await store.put(b"x", filename=filename, content_type=given)
    assert blob.content_type == expected


async def test_too_large_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(BlobTooLarge, match="12 MiB"):
        await store.put(chunked(b"x" * (12 * MiB + 1), MiB), filename="huge.bin")
    with pytest.raises(BlobTooLarge):
        await store.put(b"x" * 101, filename="small.bin", max_size=100)
    assert await Blob.find_all().count() == 0
    assert await leftovers(store) == []


async def test_too_large_stops_reading_the_source(store: BlobStore) -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:
            produced += MiB
            yield b"\0" * MiB

    with pytest.raises(BlobTooLarge):
        await store.put(endless(), filename="endless.bin")
    assert produced <= 13 * MiB
    assert await leftovers(store) == []


async def test_stream_breaking_mid_upload_leaves_nothing(store: BlobStore) -> None:
    class Broken(Exception):
        pass

    async def breaks() -> AsyncIterator[bytes]:
        # Past two S3 parts, so a multipart upload is under way when it breaks.
        for _ in range(11):
            yield os.urandom(MiB)
        raise Broken("connection reset")

    with pytest.raises(Broken):
        await store.put(breaks(), filename="broken.bin")
    assert await Blob.find_all().count() == 0
    assert await leftovers(store) == []


async def test_upload_is_streamed_not_buffered(store: BlobStore) -> None:
    # While the source is still producing, the upload must already be under way in the
    # backend: bytes in the temporary file on disk, a multipart upload begun on S3.
    seen: list[Any] = []

    async def watched() -> AsyncIterator[bytes]:
        for index in range(11):
            if index == 10:
                seen.append(await upload_in_progress(store))
            yield b"\1" * MiB

    blob = await store.put(watched(), filename="watched.bin")
    assert blob.size == 11 * MiB
    if store.backend.name == "local":
        assert seen[0] >= 8 * MiB
    else:
        assert seen[0] == [blob.key]


async def upload_in_progress(store: BlobStore) -> Any:
    """Bytes in local temporary files, or the keys of unfinished S3 multipart uploads."""
    backend = store.backend
    if backend.name == "local":
        return sum(path.stat().st_size for path in backend.temp_files())
    uploads = await backend.client.list_multipart_uploads(Bucket=backend.bucket)
    return [upload["Key"] for upload in uploads.get("Uploads", [])]


async def test_backend_failure_leaves_nothing(store: BlobStore, tmp_path) -> None:
    backend = store.backend
    if backend.name == "local":
        # A real failure of the disk in the middle of the file: writes past 1 MiB fail with
        # EFBIG (the file size limit), after the first chunks were written.
        previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (MiB, hard))
        try:
            with pytest.raises(BlobStorageError, match="local blob backend could not store"):
                await store.put(chunked(os.urandom(3 * MiB), 256 * 1024), filename="disk.bin")
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            signal.signal(signal.SIGXFSZ, previous_handler)
    else:
        # The bucket disappears: S3 answers NoSuchBucket to the upload.
        await backend.client.delete_bucket(Bucket=backend.bucket)
        try:
            with pytest.raises(BlobStorageError, match="NoSuchBucket"):
                await store.put(os.urandom(MiB), filename="gone.bin")
        finally:
            await backend.client.create_bucket(Bucket=backend.bucket)
    # The object could not be removed from a missing bucket either, so the Blob stays,
    # marked failed, for `vibetuner blobs check --delete`; it is never available.
    assert await Blob.find(Blob.status == BlobStatus.AVAILABLE).count() == 0
    assert await Blob.find(Blob.status == BlobStatus.PENDING).count() == 0
    assert await leftovers(store) == []


async def test_unavailable_blob_cannot_be_opened(store: BlobStore) -> None:
    pending = Blob(key="blobs/" + "0" * 32, backend=store.backend.name, status=BlobStatus.PENDING)
    with pytest.raises(BlobUnavailable):
        store.open(pending)
    with pytest.raises(BlobUnavailable):
        await store.url(pending)


async def test_url_serves_the_bytes_without_a_session(
    store: BlobStore, client: httpx.AsyncClient
) -> None:
    data = b"shared file"
    blob = await store.put(data, filename="shared.txt")
    link = await store.url(blob, expires_in=60)
    if store.backend.name == "s3":
        # A presigned URL straight to the object store.
        assert link.startswith(store.settings.s3_endpoint_url)
        async with httpx.AsyncClient() as direct:
            answer = await direct.get(link)
        assert answer.status_code == 200 and answer.content == data
        # S3 answers with these headers; moto ignores them, so check the signed request.
        query = httpx.URL(link).params
        assert "shared.txt" in query["response-content-disposition"]
        assert query["response-content-type"] == "text/plain"
    else:
        assert link.startswith("http://testserver/blobs/")
        answer = await client.get(link)
        assert answer.status_code == 200 and answer.content == data


async def test_local_signed_url_rejects_tampering_and_expiry(store: BlobStore, client) -> None:
    blob = await store.put(b"secret", filename="s.txt")
    other = await store.put(b"other", filename="o.txt")
    link = store.signed_url(blob, expires_at=int(asyncio.get_running_loop().time()) + 10**10)
    assert (await client.get(link)).status_code == 200

    expired = store.signed_url(blob, expires_at=1)
    answer = await client.get(expired)
    assert answer.status_code == 403 and "expired" in answer.json()["detail"]

    # A valid token for one blob does not open another.
    token = link.split("token=")[1]
    assert (await client.get(f"/blobs/{other.id}/signed?token={token}")).status_code == 403
    assert (await client.get(link[:-2] + "xx")).status_code == 403
    assert (await client.get(f"/blobs/{blob.id}/signed")).status_code == 403
    assert (await client.get(f"/blobs/{blob.id}/signed?token=")).status_code == 403


async def test_store_as_context_manager(vibetuner_settings, vibetuner_db) -> None:
    async with BlobStore.from_settings(vibetuner_settings) as store:
        blob = await store.put(b"ctx", filename="c.txt")
        assert await read_all(store.open(blob)) == b"ctx"
        await store.delete(blob)

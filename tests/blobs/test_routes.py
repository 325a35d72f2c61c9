"""The blob HTTP routes, on local disk and on S3."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.blobs.conftest import MiB, leftovers
from vibetuner.models import Blob, BlobStatus, UserModel
from vibetuner.testing import app_context, send_csrf_token, signed_in_cookie


async def upload(
    client: httpx.AsyncClient,
    data: bytes,
    name: str = "file.bin",
    ctype: str = "application/octet-stream",
) -> httpx.Response:
    return await client.post("/blobs", files={"file": (name, data, ctype)})


async def test_upload_then_metadata_content_and_delete(
    signed_in_client: httpx.AsyncClient, store: Any
) -> None:
    data = os.urandom(300_000)
    created = await upload(signed_in_client, data, "report.pdf", "application/pdf")
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "filename", "content_type", "size", "sha256", "url"}
    assert body["filename"] == "report.pdf"
    assert body["content_type"] == "application/pdf"
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["url"] == f"http://testserver/blobs/{body['id']}/content"

    meta = await signed_in_client.get(f"/blobs/{body['id']}")
    assert meta.status_code == 200 and meta.json() == body

    content = await signed_in_client.get(body["url"])
    assert content.status_code == 200
    assert content.content == data
    assert content.headers["content-type"] == "application/pdf"
    assert content.headers["content-length"] == str(len(data))
    assert content.headers["etag"] == f'"{body["sha256"]}"'
    assert content.headers["accept-ranges"] == "bytes"
    assert content.headers["content-disposition"] == (
        "inline; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert content.headers["x-content-type-options"] == "nosniff"

    head = await signed_in_client.head(body["url"])
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))

    deleted = await signed_in_client.delete(f"/blobs/{body['id']}")
    assert deleted.status_code == 204
    assert (await signed_in_client.get(f"/blobs/{body['id']}")).status_code == 404
    assert (await signed_in_client.get(body["url"])).status_code == 404
    assert await Blob.find_all().count() == 0
    assert await leftovers(store) == []


async def test_range_requests(signed_in_client: httpx.AsyncClient) -> None:
    data = bytes(range(256)) * 10
    blob_id = (await upload(signed_in_client, data)).json()["id"]
    url = f"/blobs/{blob_id}/content"

    async def get(range_header: str, **headers: str) -> httpx.Response:
        return await signed_in_client.get(url, headers={"Range": range_header, **headers})

    part = await get("bytes=10-19")
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert part.headers["content-length"] == "10"

    assert (await get("bytes=2500-")).content == data[2500:]
    assert (await get("bytes=-7")).content == data[-7:]
    assert (await get("bytes=2550-99999")).content == data[2550:]

    unsatisfiable = await get(f"bytes={len(data)}-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(data)}"

    # Several ranges, nonsense and a stale If-Range all get the whole file.
    for whole in (await get("bytes=0-1,5-6"), await get("bytes=abc"), await get("bytes=5-2"),
                  await get("bytes=0-9", **{"If-Range": '"stale"'})):  # fmt: skip
        assert whole.status_code == 200 and whole.content == data
    etag = part.headers["etag"]
    assert (await get("bytes=0-9", **{"If-Range": etag})).status_code == 206


async def test_if_none_match(signed_in_client: httpx.AsyncClient) -> None:
    data = b"cache me"
    blob_id = (await upload(signed_in_client, data)).json()["id"]
    url = f"/blobs/{blob_id}/content"
    etag = (await signed_in_client.get(url)).headers["etag"]

    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        cached = await signed_in_client.get(url, headers={"If-None-Match": value})
        assert cached.status_code == 304, value
        assert cached.content == b"" and cached.headers["etag"] == etag
    fresh = await signed_in_client.get(url, headers={"If-None-Match": '"other"'})
    assert fresh.status_code == 200 and fresh.content == data


async def test_other_users_blobs_are_not_found(
    app: Any, signed_in_client: httpx.AsyncClient
) -> None:
    blob_id = (await upload(signed_in_client, b"mine")).json()["id"]
    stranger = UserModel(email="stranger@example.com")
    await stranger.insert()
    settings = app_context(app).settings
    cookie = await signed_in_cookie(settings, stranger)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies={settings.session_cookie: cookie}
    ) as other:
        send_csrf_token(other, settings.session_cookie)
        missing_id = "0" * 24
        for path in (f"/blobs/{blob_id}", f"/blobs/{blob_id}/content", f"/blobs/{missing_id}"):
            mine, theirs = await other.get(path), await other.get(path.replace(blob_id, missing_id))
            assert mine.status_code == theirs.status_code == 404
            assert mine.json() == theirs.json() == {"detail": "Blob not found."}
        assert (await other.delete(f"/blobs/{blob_id}")).status_code == 404
    # Still there for its owner.
    assert (await signed_in_client.get(f"/blobs/{blob_id}/content")).content == b"mine"


@pytest.mark.parametrize(
    "bad_id", ["not-an-id", "123", "zzzzzzzzzzzzzzzzzzzzzzzz", "%00", "..%2F..%2Fetc"]
)
async def test_malformed_ids_are_404(signed_in_client: httpx.AsyncClient, bad_id: str) -> None:
    for method, suffix in (("GET", ""), ("GET", "/content"), ("DELETE", "")):
        answer = await signed_in_client.request(method, f"/blobs/{bad_id}{suffix}")
        assert answer.status_code == 404, (method, suffix, answer.text)


async def test_signed_out_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.post("/blobs", files={"file": ("a.txt", b"a")})).status_code == 401
    assert (await client.get("/blobs/" + "0" * 24)).status_code == 401
    assert (await client.delete("/blobs/" + "0" * 24)).status_code == 401
    assert await Blob.find_all().count() == 0


async def test_missing_file_is_422(signed_in_client: httpx.AsyncClient) -> None:
    other_field = await signed_in_client.post("/blobs", files={"document": ("a.txt", b"a")})
    assert other_field.status_code == 422 and "file" in other_field.json()["detail"]
    form = await signed_in_client.post("/blobs", data={"file": "just text"})
    assert form.status_code == 422
    # What a browser sends for a form whose file input was left empty.
    empty_choice = await signed_in_client.post(
        "/blobs",
        content=b'--bb\r\nContent-Disposition: form-data; name="file"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n\r\n--bb--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=bb"},
    )
    assert empty_choice.status_code == 422
    json_body = await signed_in_client.post("/blobs", json={"file": "x"})
    assert json_body.status_code == 422
    assert await Blob.find_all().count() == 0


async def test_malformed_multipart_is_400(signed_in_client: httpx.AsyncClient, store: Any) -> None:
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nabc'
    answer = await signed_in_client.post(
        "/blobs", content=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
    )
    assert answer.status_code == 400
    assert await Blob.find_all().count() == 0
    assert await leftovers(store) == []


def multipart_stream(
    boundary: str, name: str, chunks: int, counter: list[int]
) -> AsyncIterator[bytes]:
    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for _ in range(chunks):
            counter[0] += 1
            yield b"\0" * MiB
        yield f"\r\n--{boundary}--\r\n".encode()

    return body()


async def test_too_large_by_content_length_is_413_before_reading(
    signed_in_client: httpx.AsyncClient, store: Any
) -> None:
    counter = [0]
    body = multipart_stream("b0undary", "big.bin", 40, counter)
    answer = await signed_in_client.post(
        "/blobs",
        content=body,
        headers={
            "Content-Type": "multipart/form-data; boundary=b0undary",
            "Content-Length": str(40 * MiB + 200),
        },
    )
    assert answer.status_code == 413
    assert "12 MiB" in answer.json()["detail"]
    assert counter[0] == 0
    assert await Blob.find_all().count() == 0
    assert await leftovers(store) == []


async def test_too_large_while_streaming_is_413_early(
    signed_in_client: httpx.AsyncClient, store: Any
) -> None:
    # No Content-Length (chunked): the limit trips while counting, long before the end.
    counter = [0]
    body = multipart_stream("b0undary", "big.bin", 40, counter)
    answer = await signed_in_client.post(
        "/blobs", content=body, headers={"Content-Type": "multipart/form-data; boundary=b0undary"}
    )
    assert answer.status_code == 413
    assert counter[0] <= 14
    assert await Blob.find_all().count() == 0
    assert await leftovers(store) == []


async def test_file_at_the_limit_is_accepted(signed_in_client: httpx.AsyncClient) -> None:
    data = os.urandom(12 * MiB)
    answer = await upload(signed_in_client, data)
    assert answer.status_code == 201 and answer.json()["size"] == len(data)


async def test_client_stream_breaking_mid_upload_leaves_nothing(
    signed_in_client: httpx.AsyncClient, store: Any
) -> None:
    class Broken(Exception):
        pass

    async def body() -> AsyncIterator[bytes]:
        yield b'--bb\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n\r\n'
        for _ in range(11):
            yield os.urandom(MiB)
        raise Broken("network gone")

    with pytest.raises(Broken):
        await signed_in_client.post(
            "/blobs", content=body(), headers={"Content-Type": "multipart/form-data; boundary=bb"}
        )
    assert await Blob.find(Blob.status != BlobStatus.FAILED).count() == 0
    assert await Blob.find_all().count() == 0
    assert await leftovers(store) == []


async def test_presigned_redirect_setting(
    app: Any, signed_in_client: httpx.AsyncClient, store: Any
) -> None:
    data = b"redirect me"
    blob_id = (await upload(signed_in_client, data)).json()["id"]
    store.settings = store.settings.model_copy(update={"blob_redirect_to_presigned": True})
    answer = await signed_in_client.get(f"/blobs/{blob_id}/content")
    if store.backend.name == "s3":
        assert answer.status_code == 307
        async with httpx.AsyncClient() as direct:
            followed = await direct.get(answer.headers["location"])
        assert followed.status_code == 200 and followed.content == data
    else:
        # Local disk has no presigned URLs: the app serves the bytes itself.
        assert answer.status_code == 200 and answer.content == data


async def break_storage(store: Any, key: str) -> None:
    """Make the backend fail for real: on disk a file where the key's directory was, on S3
    a bucket that no longer exists."""
    backend = store.backend
    if backend.name == "local":
        shard = backend.path(key).parent
        await asyncio.to_thread(shutil.rmtree, shard)
        await asyncio.to_thread(shard.write_bytes, b"not a directory")
    else:
        for stored in [k async for k in backend.keys()]:
            await backend.client.delete_object(Bucket=backend.bucket, Key=stored)
        await backend.client.delete_bucket(Bucket=backend.bucket)


async def test_storage_failure_on_delete_is_503_and_keeps_the_metadata(
    signed_in_client: httpx.AsyncClient, store: Any
) -> None:
    blob_id = (await upload(signed_in_client, b"keep my metadata")).json()["id"]
    blob = await Blob.get(blob_id)
    await break_storage(store, blob.key)

    answer = await signed_in_client.delete(f"/blobs/{blob_id}")
    assert answer.status_code == 503
    assert answer.json()["detail"] == "Storage is unavailable; try again later."
    assert answer.json()["code"] == "blob_storage_failed"
    assert await Blob.get(blob_id) is not None

    content = await signed_in_client.get(f"/blobs/{blob_id}/content")
    # The disk error is a failure (503); a missing bucket means the object is gone (404).
    assert content.status_code == (503 if store.backend.name == "local" else 404)

"""Blob fixtures: every test that uses ``blob_backend`` runs on local disk and on S3.

S3 is moto's server on a free 127.0.0.1 port, reached over real HTTP; each test gets
its own bucket, created by the store at startup (``S3_CREATE_BUCKET``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from vibetuner.blobs.store import BlobStore
from vibetuner.testing import app_context, free_port

MiB = 1024 * 1024


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto S3 server running for the whole test session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_values(endpoint: str, **overrides: Any) -> dict[str, Any]:
    """Settings values for an S3 store on moto with a new bucket."""
    values: dict[str, Any] = {
        "blob_backend": "s3",
        "s3_bucket": f"test-{uuid.uuid4().hex[:16]}",
        "s3_endpoint_url": endpoint,
        "s3_region": "us-east-1",
        "s3_access_key_id": "testing",
        "s3_secret_access_key": SecretStr("testing"),
        "s3_create_bucket": True,
    }
    values.update(overrides)
    return values


@pytest.fixture(params=["local", "s3"])
def blob_backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``local`` or ``s3``."""
    return request.param


@pytest.fixture
def vibetuner_settings(
    vibetuner_settings: Any, blob_backend: str, request: pytest.FixtureRequest
) -> Any:
    """The plugin's settings with small blob limits, on the backend under test."""
    values: dict[str, Any] = {
        "blob_max_size": 12 * MiB,
        "blob_chunk_size": 256 * 1024,
        "s3_part_size": 5 * MiB,
    }
    if blob_backend == "s3":
        values.update(s3_values(request.getfixturevalue("moto_endpoint")))
    return vibetuner_settings.model_copy(update=values)


@pytest.fixture
def store(app: Any) -> Any:
    """The app's running ``BlobStore``."""
    return app_context(app).get(BlobStore)


async def stored_keys(store: Any) -> list[str]:
    """Keys with bytes in the backend."""
    return [key async for key in store.backend.keys()]


async def leftovers(store: Any) -> list[str]:
    """Anything an upload could leave behind: objects, temp files, unfinished multipart uploads."""
    found = await stored_keys(store)
    if store.backend.name == "local":
        found += [str(path) for path in store.backend.temp_files()]
    else:
        uploads = await store.backend.client.list_multipart_uploads(Bucket=store.backend.bucket)
        found += [f"multipart:{item['Key']}" for item in uploads.get("Uploads", [])]
    return found

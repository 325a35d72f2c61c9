"""Blob storage configuration: clear startup errors, lazy imports of the S3 extra."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import SecretStr

from tests.blobs.conftest import free_port, s3_values
from vibetuner.blobs.store import BlobStore
from vibetuner.errors import ConfigurationError


async def startup_message(app: Any) -> dict[str, Any]:
    """Run the ASGI lifespan startup and return the message the server would print."""
    sent: list[dict[str, Any]] = []
    received = iter([{"type": "lifespan.startup"}])

    async def receive() -> dict[str, Any]:
        return next(received)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with pytest.raises(BaseException):  # noqa: B017 - the lifespan re-raises after reporting
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent[-1]


@pytest.mark.parametrize("blob_backend", ["local"], indirect=True)
async def test_s3_without_aioboto3_fails_at_startup_with_the_install_command(
    vibetuner_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vibetuner import create_app

    settings = vibetuner_settings.model_copy(update=s3_values("http://127.0.0.1:9"))
    # A None entry in sys.modules makes `import aioboto3` raise ImportError, as when absent.
    monkeypatch.setitem(sys.modules, "aioboto3", None)
    with pytest.raises(ConfigurationError) as raised:
        BlobStore.from_settings(settings)
    assert 'pip install "vibetuner[s3]"' in str(raised.value)

    message = await startup_message(create_app(settings=settings))
    assert message["type"] == "lifespan.startup.failed"
    assert message["message"] == (
        "ConfigurationError: BLOB_BACKEND=s3 needs the aioboto3 package; "
        'install it with: pip install "vibetuner[s3]"'
    )


@pytest.mark.parametrize("blob_backend", ["local"], indirect=True)
async def test_s3_without_bucket_fails_at_startup(vibetuner_settings: Any) -> None:
    from vibetuner import create_app

    settings = vibetuner_settings.model_copy(update=s3_values("http://127.0.0.1:9", s3_bucket=None))
    message = await startup_message(create_app(settings=settings))
    assert (
        message["message"]
        == "ConfigurationError: BLOB_BACKEND=s3 needs S3_BUCKET (the bucket name)"
    )


@pytest.mark.parametrize("blob_backend", ["local"], indirect=True)
async def test_unreachable_s3_fails_at_startup_without_secrets(vibetuner_settings: Any) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    secret = SecretStr("s3cr3t-value")
    settings = vibetuner_settings.model_copy(
        update=s3_values(endpoint, s3_secret_access_key=secret)
    )
    store = BlobStore.from_settings(settings)
    with pytest.raises(ConfigurationError, match="s3 blob backend could not start") as raised:
        await store.start()
    assert "s3cr3t-value" not in str(raised.value)


def test_importing_blob_modules_does_not_load_the_s3_extra() -> None:
    code = (
        "import sys, vibetuner.models, vibetuner.blobs.store, vibetuner.blobs.routes;"
        "loaded = [m for m in ('aioboto3', 'aiobotocore', 'botocore') if m in sys.modules];"
        "assert not loaded, loaded;"
        "import vibetuner.cli.blobs;"
        "assert 'aioboto3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    cli_only = (
        "import sys, vibetuner.cli.blobs;"
        "heavy = [m for m in ('beanie', 'fastapi', 'pymongo', 'aioboto3') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", cli_only], check=True)


@pytest.mark.parametrize("blob_backend", ["local"], indirect=True)
async def test_local_store_creates_its_directory_on_first_write(
    vibetuner_settings, vibetuner_db
) -> None:
    directory = vibetuner_settings.blob_directory
    async with BlobStore.from_settings(vibetuner_settings) as store:
        assert not directory.exists()
        await store.put(b"x", filename="x.txt")
        assert directory.is_dir()

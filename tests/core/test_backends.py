"""Email and blob backends chosen by name, by dotted path or given as objects."""

from __future__ import annotations

from email.message import EmailMessage

import httpx
import pytest

from vibetuner import AuthFeature, BlobsFeature, create_app
from vibetuner.blobs.local import LocalBackend
from vibetuner.blobs.store import BlobStore
from vibetuner.errors import ConfigurationError
from vibetuner.services.email import backend_from_settings
from vibetuner.testing import app_context


class RecordingBackend:
    """An app's own email backend: keeps what it is given."""

    sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


def settings_with(settings, **changes):
    return type(settings)(_env_file=None, **{**settings.model_dump(), **changes})


def test_an_email_backend_by_dotted_path(vibetuner_settings):
    for path in (
        "tests.core.test_backends:RecordingBackend",
        "tests.core.test_backends.RecordingBackend",
    ):
        backend = backend_from_settings(settings_with(vibetuner_settings, email_backend=path))
        assert isinstance(backend, RecordingBackend)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("pigeon", "not a backend"),
        ("tests.core.nowhere:Backend", "cannot import"),
        ("tests.core.test_backends:Missing", "has no attribute"),
    ],
)
def test_a_bad_email_backend_is_a_clear_error(vibetuner_settings, value, message):
    with pytest.raises(ConfigurationError, match=message):
        backend_from_settings(settings_with(vibetuner_settings, email_backend=value))


def test_a_malformed_backend_setting_is_refused_when_settings_load(vibetuner_settings):
    with pytest.raises(ValueError, match="email_backend"):
        settings_with(vibetuner_settings, email_backend="rm -rf /")


async def test_an_email_backend_instance_receives_the_sign_in_link(vibetuner_settings):
    backend = RecordingBackend()
    backend.sent = []
    application = create_app(settings=vibetuner_settings, email_backend=backend)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.post("/auth/magic-link", json={"email": "plug@example.com"})
    assert response.status_code == 200
    assert [m["To"] for m in backend.sent] == ["plug@example.com"]
    assert "/auth/magic-link/" in backend.sent[0].get_body(("plain",)).get_content()


async def test_a_blob_backend_instance_stores_the_files(vibetuner_settings, tmp_path):
    backend = LocalBackend(tmp_path / "elsewhere")
    application = create_app(
        settings=vibetuner_settings, features=[AuthFeature(), BlobsFeature(backend)]
    )
    async with application.router.lifespan_context(application):
        store = app_context(application).get(BlobStore)
        assert store.backend is backend
        blob = await store.put(b"hello", filename="hello.txt")
    path = backend.path(blob.key)
    assert path.is_relative_to(tmp_path / "elsewhere") and path.read_bytes() == b"hello"


async def test_an_unknown_blob_backend_stops_startup(vibetuner_settings):
    settings = settings_with(vibetuner_settings, blob_backend="tape")
    application = create_app(settings=settings)
    with pytest.raises(ConfigurationError, match="BLOB_BACKEND='tape' is not a backend"):
        async with application.router.lifespan_context(application):
            pass

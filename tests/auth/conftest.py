"""Fixtures for the sign-in tests: reading the outbox and following links."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import stop_process
from vibetuner.testing import free_port

LINK_RE = re.compile(r"https?://[^\s\"'<>]+/auth/magic-link/[A-Za-z0-9_.\-]+(?:\?[^\s\"'<>]*)?")


def read_outbox(directory: Path) -> list[EmailMessage]:
    """Every message the ``file`` backend wrote, oldest first."""
    if not directory.exists():
        return []
    messages = []
    for path in sorted(directory.glob("*.eml")):
        with path.open("rb") as handle:
            messages.append(email.message_from_binary_file(handle, policy=email.policy.default))
    return messages  # type: ignore[return-value]


def text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "message has no text part"
    return part.get_content()


def html_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "message has no HTML part"
    return part.get_content()


def magic_link(message: EmailMessage) -> str:
    """The sign-in link in the text body of ``message``."""
    found = LINK_RE.findall(text_body(message))
    assert len(found) == 1, f"expected one sign-in link, found {found}"
    return found[0]


def link_path(link: str) -> str:
    """The path and query of ``link``, for an in-process client."""
    return link.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


async def follow_link(client: Any, link: str) -> Any:
    """Open a sign-in link and press its confirmation button, as a person would."""
    from vibetuner.testing import follow_sign_in_link

    return await follow_sign_in_link(client, link)


@pytest.fixture
def outbox(vibetuner_settings: Any):
    """A function returning the messages written to the outbox so far."""
    return lambda: read_outbox(vibetuner_settings.email_file_dir)


async def request_link(client: Any, address: str, **extra: str) -> Any:
    """POST /auth/magic-link as a form, the way the login page does."""
    return await client.post("/auth/magic-link", data={"email": address, **extra})


@pytest.fixture
async def app_with():
    """Start an app with other settings: ``async with app_with(settings, **changes) as client``."""
    from contextlib import asynccontextmanager

    import httpx

    from vibetuner.testing import default_app, send_csrf_token

    @asynccontextmanager
    async def start(settings: Any, **changes: Any):
        changed = type(settings)(_env_file=None, **{**settings.model_dump(), **changes})
        application = default_app(settings=changed)
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield send_csrf_token(http, changed.session_cookie)

    return start


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (``cert.pem``, ``key.pem``)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


PROVIDER_USERS = {
    "alice": {
        "sub": "alice-0001",
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Example",
        "picture": "https://pictures.example/alice.png",
        "github_id": 1001,
    },
    "bob": {
        "sub": "bob-0002",
        "email": "bob@example.com",
        "email_verified": False,
        "name": "Bob",
        "github_id": 1002,
    },
    # The mailbox owner of bob@example.com, at a provider that verifies addresses.
    "bob-owner": {
        "sub": "bob-owner-0005",
        "email": "bob@example.com",
        "email_verified": True,
        "name": "Robert Owner",
        "github_id": 1005,
    },
    "carol": {
        "sub": "carol-0003",
        "email": "carol@example.com",
        "email_verified": True,
        "name": "Carol",
        "github_id": 1003,
    },
    "nomail": {
        "sub": "nomail-0004",
        "email": None,
        "email_verified": False,
        "name": "No Mail",
        "github_id": 1004,
    },
}


class OIDCProvider:
    """The provider process: its issuer URL and the client registered for the app."""

    client_id = "vibetuner-test-client"
    client_secret = "test-client-secret-4f1c2a"

    def __init__(self, port: int) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"

    async def put_user(self, http: Any, key: str, **claims: Any) -> None:
        """Add or change the provider user ``key`` (``sub``, ``email``, ``email_verified``,
        ``name``, ``picture``, ``github_id``; ``sub`` defaults to the key)."""
        fields = {"sub": key, "email": None, "email_verified": False, **claims}
        response = await http.put(f"{self.issuer}/users/{key}", json=fields)
        assert response.status_code == 200, response.text

    def settings(self, name: str = "testidp") -> dict[str, Any]:
        """An ``OIDC_PROVIDERS`` entry for this provider."""
        return {
            "name": name,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "discovery_url": self.discovery_url,
            "label": "Test IdP",
        }


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory):
    """A real OpenID Connect provider process on 127.0.0.1, stopped after the session."""
    import json
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    redirect_uris = [
        f"http://testserver/auth/oauth/{name}/callback" for name in ("testidp", "github", "other")
    ]
    config = {
        "clients": [
            {
                "client_id": OIDCProvider.client_id,
                "client_secret": OIDCProvider.client_secret,
                "redirect_uris": redirect_uris,
            }
        ],
        "users": PROVIDER_USERS,
    }
    config_path = tmp_path_factory.mktemp("oidc") / "config.json"
    config_path.write_text(json.dumps(config))
    log_path = config_path.with_name("provider.log")
    script = Path(__file__).with_name("oidc_provider.py")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(script), str(config_path), str(port)], stdout=log, stderr=log
        )
    provider = OIDCProvider(port)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"OIDC provider exited: {log_path.read_text()}")
            try:
                if httpx.get(f"{provider.issuer}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"OIDC provider did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield provider
    finally:
        stop_process(process)


@pytest.fixture
async def provider_browser():
    """The browser's side of the provider: plain HTTP, redirects not followed."""
    import httpx

    async with httpx.AsyncClient(timeout=10) as http:
        yield http

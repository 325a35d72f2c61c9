"""Faults: the database, the object store, the mail server or the client goes away.

Every server here is real and on 127.0.0.1: the app under uvicorn, moto's S3 server in
its own process (killed to stop it: that closes its listening socket and every open
connection, as a crashed or unplugged store would), aiosmtpd, and raw client sockets.
Related cases tested elsewhere, not repeated here: a plain ``uvicorn`` start without
MongoDB (``tests/core/test_app.py``), a client leaving mid-upload to ``/blobs`` on both
backends (``tests/blobs/test_disconnect.py``), an SMTP server refusing the recipient or
never answering (``tests/auth/test_email.py``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from tests.helpers import wait_until
from tests.robustness.conftest import MiB, free_port, idle, served
from vibetuner.blobs.store import BlobStore
from vibetuner.models import Blob, BlobStatus, EmailVerificationToken, UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.testing import app_context, csrf_session, signed_in_cookie

# --- MongoDB unreachable at startup -------------------------------------------------------


def test_vibetuner_run_prod_exits_quickly_with_one_line_when_mongodb_is_down(project: Path):
    closed_port = free_port()  # nothing listens there
    env = {
        **os.environ,
        "MONGODB_URL": f"mongodb://admin:topsecret@127.0.0.1:{closed_port}/app",
        "MONGODB_TIMEOUT_MS": "1000",
        # A production configuration that is right in everything but the database.
        "ENVIRONMENT": "production",
        "SESSION_KEY": secrets.token_urlsafe(48),
        "BASE_URL": "https://app.example.com",
        "EMAIL_BACKEND": "smtp",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", "run", "prod", "--host", "127.0.0.1"]
        + ["--port", str(free_port())],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert elapsed < 10, f"took {elapsed:.1f} s to give up:\n{output}"
    reasons = [line for line in output.splitlines() if "cannot reach MongoDB" in line]
    assert len(reasons) == 1, output
    assert f"127.0.0.1:{closed_port}" in reasons[0]
    assert "Traceback" not in output and "topsecret" not in output


BAD_SETTINGS = [
    ({"ENVIRONMENT": "production", "SESSION_KEY": ""}, "SESSION_KEY must be"),
    ({"MONGODB_TIMEOUT_MS": "soon"}, "MONGODB_TIMEOUT_MS: must be a whole number (got 'soon')"),
    ({"SESSION_MAX_AGE": "2weeks"}, "SESSION_MAX_AGE: must be a whole number (got '2weeks')"),
    ({"OIDC_PROVIDERS": "acme"}, "OIDC_PROVIDERS: must be JSON"),
    ({"MONGODB_URL": "garbage"}, "MONGODB_URL: must start with mongodb:// or mongodb+srv://"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG"),
    ({"BASE_URL": "example.com"}, "BASE_URL: must be the site's address with scheme and host"),
]
ENTRY_POINTS = {
    "run dev": ["run", "dev", "--host", "127.0.0.1"],
    "run prod": ["run", "prod", "--host", "127.0.0.1"],
    "db indexes": ["db", "indexes"],
    "blobs check": ["blobs", "check"],
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize(("changes", "reason"), BAD_SETTINGS)
def test_every_entry_point_reports_a_bad_setting_in_one_line(project: Path, entry, changes, reason):
    env = {key: value for key, value in os.environ.items() if not key.startswith("MONGODB_")}
    args = ENTRY_POINTS[entry]
    if entry.startswith("run"):
        args = [*args, "--port", str(free_port())]
    result = subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", *args],
        cwd=project,
        env={**env, **changes},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and reason in errors[0], output
    assert "Traceback" not in output


def test_vibetuner_run_prod_names_every_weak_setting_before_listening(project: Path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MONGODB_", "SMTP_", "EMAIL_", "GITHUB_", "TOKEN_"))
    }
    port = free_port()
    weak = {
        "ENVIRONMENT": "production",
        "SESSION_KEY": "a" * 40,
        "MONGODB_URL": "mongodb://db.internal:27017/app",
        "BASE_URL": "https://app.example.com",
        "EMAIL_BACKEND": "smtp",
        "SMTP_HOST": "smtp.example.com",
        "SMTP_SECURITY": "none",
        "GITHUB_CLIENT_ID": "gh-id",
        "GITHUB_CLIENT_SECRET": "gh-secret",
        "TRUSTED_PROXIES": "*",
        # The secrets and downgrades of the later features.
        "METRICS_TOKEN": "my-super-secret-metrics-token-for-production",
        "RATE_LIMIT_ENABLED": "false",
    }
    result = subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", "run", "prod", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        cwd=project,
        env={**env, **weak},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    (line,) = result.stderr.strip().splitlines()
    for named in (
        "SESSION_KEY is guessable",
        "SMTP_SECURITY=none",
        "TOKEN_ENCRYPTION_KEY",
        "ALLOW_INSECURE_PRODUCTION=trusted_proxies",
        "METRICS_TOKEN is guessable",
        "ALLOW_INSECURE_PRODUCTION=rate_limits",
    ):
        assert named in line, line
    assert "secrets.token_urlsafe(48)" in line
    assert "Uvicorn running" not in output and "Traceback" not in output
    assert weak["METRICS_TOKEN"] not in output

    # A Fernet key that is a phrase in base64: as good as none for what it encrypts.
    phrase_key = base64.urlsafe_b64encode(b"my-super-secret-encryption-key!!").decode()
    result = subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", "run", "prod", "--host", "127.0.0.1"]
        + ["--port", str(port)],
        cwd=project,
        env={**env, **weak, "TOKEN_ENCRYPTION_KEY": phrase_key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "TOKEN_ENCRYPTION_KEY is guessable" in output and phrase_key not in output
    assert "Uvicorn running" not in output and "Traceback" not in output


# --- the S3 endpoint stops in the middle of an upload --------------------------------------


class MotoProcess:
    """moto's S3 server in a process of its own, so that stopping it closes every socket."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError("moto's server did not start") from None
                time.sleep(0.1)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def moto() -> Any:
    server = MotoProcess()
    try:
        yield server
    finally:
        server.kill()


async def browser_headers(app: Any, user: UserModel) -> dict[str, str]:
    """The session cookie of ``user`` after a page visit, and that page's CSRF token."""
    settings = app_context(app).settings
    value = await signed_in_cookie(settings, user)
    value, token = await csrf_session(app, value)
    return {"Cookie": f"{settings.session_cookie}={value}", "X-CSRF-Token": token}


def header_lines(headers: dict[str, str]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items())


async def new_user() -> UserModel:
    person = UserModel(email=f"u-{uuid.uuid4().hex[:8]}@example.com", email_verified_at=utcnow())
    await person.insert()
    return person


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The status code and body of the answer (which may come before the body is sent)."""
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return int(status_line.split()[1]), await reader.readexactly(length)


async def send_quietly(writer: asyncio.StreamWriter, chunks: Any) -> None:
    """Write ``chunks``; the server may stop reading and close at any point."""
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass


async def test_s3_stopping_mid_upload_gives_503_and_no_available_blob(start_app, moto):
    async with start_app(
        blob_backend="s3",
        s3_bucket=f"fault-{uuid.uuid4().hex[:12]}",
        s3_endpoint_url=moto.url,
        s3_access_key_id="testing",
        s3_secret_access_key=SecretStr("testing"),
        s3_create_bucket=True,
        s3_part_size=5 * MiB,
        blob_max_size=64 * MiB,
    ) as app:
        store = app_context(app).get(BlobStore)
        user = await new_user()
        async with served(app) as (url, _server):
            size = 40 * MiB
            head = (
                b'--bb\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
            )
            tail = b"\r\n--bb--\r\n"
            request = (
                "POST /blobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"{header_lines(await browser_headers(app, user))}"
                "Content-Type: multipart/form-data; boundary=bb\r\n"
                f"Content-Length: {len(head) + size + len(tail)}\r\n\r\n"
            ).encode()
            reader, writer = await asyncio.open_connection("127.0.0.1", url.rsplit(":", 1)[1])
            body = [request + head, *(os.urandom(MiB) for _ in range(size // MiB)), tail]
            sending = asyncio.create_task(send_quietly(writer, body))

            async def multipart_upload_under_way() -> bool:
                found = await store.backend.client.list_multipart_uploads(
                    Bucket=store.backend.bucket
                )
                return bool(found.get("Uploads"))

            await wait_until(multipart_upload_under_way)
            moto.kill()
            status_code, body = await asyncio.wait_for(read_response(reader), 120)
            # The server hangs up (EOF, or a reset since we are still sending) rather than
            # reading the rest of the upload for nothing.
            try:
                rest = await asyncio.wait_for(reader.read(), 60)
            except ConnectionResetError:
                rest = b""
            writer.close()
            sending.cancel()
        assert status_code == 503, body
        assert rest == b""
        assert b"Storage is unavailable" in body
        assert await Blob.find(Blob.status == BlobStatus.AVAILABLE).count() == 0
        # Its metadata is gone, or kept as failed for `vibetuner blobs check --delete`.
        assert {b.status for b in await Blob.find_all().to_list()} <= {BlobStatus.FAILED}


# --- the SMTP server refuses the message --------------------------------------------------


class Refusing:
    """An aiosmtpd handler that accepts the envelope and refuses at ``stage``."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.stage == "MAIL":
            return "550 5.7.1 sender rejected"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return "554 5.6.0 message content rejected"


@pytest.mark.parametrize("stage", ["MAIL", "DATA"])
async def test_smtp_refusal_gives_an_error_page_over_http_and_leaves_no_token(start_app, stage):
    port = free_port()
    controller = Controller(Refusing(stage), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with (
            start_app(
                email_backend="smtp",
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_security="none",
            ) as app,
            served(app) as (url, _server),
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            page = await http.post(
                "/auth/magic-link",
                data={"email": "someone@example.com"},
                headers={"Accept": "text/html"},
            )
            assert page.status_code == 502
            assert page.headers["content-type"].startswith("text/html")
            assert "could not be sent" in page.text and "Traceback" not in page.text
            assert await EmailVerificationToken.find_all().count() == 0
            assert await UserModel.find_all().count() == 0
            # The app keeps serving, and the page offers the way back to the form.
            assert 'href="/auth/login"' in page.text
            assert (await http.get("/auth/login")).status_code == 200
    finally:
        controller.stop()


# --- the client cuts the request body off ----------------------------------------------------


def multipart_head(
    url: str, path: str, headers: dict[str, str], parts: bytes, length: int | None
) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\n{header_lines(headers)}"
        f"Content-Type: multipart/form-data; boundary=cut\r\n{framing}\r\n\r\n"
    ).encode() + parts


def file_part(name: str) -> bytes:
    return (
        f'--cut\r\nContent-Disposition: form-data; name="{name}"; filename="half.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


CUTS = {
    # Content-Length promises more than is sent: cut inside the file's bytes.
    "blobs-mid-file": ("/blobs", lambda: (file_part("file"), [os.urandom(MiB)] * 3, 8 * MiB)),
    # Cut inside the part headers, before the file even starts.
    "blobs-in-part-headers": (
        "/blobs",
        lambda: (b'--cut\r\nContent-Disposition: form-data; name="fi', [], 4 * MiB),
    ),
    # Chunked transfer encoding, cut in the middle of a chunk.
    "blobs-chunked": (
        "/blobs",
        lambda: (b"", [chunked(file_part("file") + os.urandom(MiB)), b"100000\r\nabc"], None),
    ),
    # The generated app's own form route (Starlette parses the form before the route runs).
    "notes-mid-file": (
        "/notes",
        lambda: (
            b'--cut\r\nContent-Disposition: form-data; name="title"\r\n\r\nCut\r\n'
            + file_part("files"),
            [os.urandom(MiB)] * 3,
            8 * MiB,
        ),
    ),
}


@pytest.mark.parametrize("cut", list(CUTS))
async def test_a_body_cut_off_mid_upload_leaves_nothing(app, cut):
    from robust_app.models import Note

    path, make = CUTS[cut]
    first, rest, length = make()
    store = app_context(app).get(BlobStore)
    user = await new_user()
    headers = await browser_headers(app, user)
    async with served(app) as (url, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", url.rsplit(":", 1)[1])
        await send_quietly(writer, [multipart_head(url, path, headers, first, length), *rest])
        if cut.startswith("blobs") and cut != "blobs-in-part-headers":

            async def upload_started() -> bool:
                return await Blob.find_all().count() == 1

            await wait_until(upload_started)
        writer.close()
        await wait_until(idle(server))

        # The app still works: a complete upload right after is stored, and is all there is.
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            done = await http.post(
                "/blobs", files={"file": ("whole.txt", b"complete", "text/plain")}
            )
        assert done.status_code == 201, done.text
    (blob,) = await Blob.find_all().to_list()
    assert blob.status is BlobStatus.AVAILABLE and blob.filename == "whole.txt"
    assert [key async for key in store.backend.keys()] == [blob.key]
    assert list(store.backend.temp_files()) == []
    assert await Note.find_all().count() == 0


def test_run_dev_exits_when_the_app_cannot_start(project: Path):
    # The database is unreachable: one line, exit 2, and no reloader left waiting.
    env = {key: value for key, value in os.environ.items() if not key.startswith("MONGODB_")}
    result = subprocess.run(
        [sys.executable, "-m", "vibetuner.cli", "run", "dev", "--host", "127.0.0.1"]
        + ["--port", str(free_port())],
        cwd=project,
        env={
            **env,
            "MONGODB_URL": f"mongodb://127.0.0.1:{free_port()}/app",
            "MONGODB_TIMEOUT_MS": "300",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "cannot reach MongoDB" in errors[0], output
    assert "Traceback" not in output and "Will watch for changes" not in output

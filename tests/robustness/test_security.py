"""The scaffolded app under attack: CSRF on its own routes, security headers on its
pages, bodies too large for the notes form, hostile JSON and Range values, clients that
leave mid-body, and proxies that are (not) trusted by ``vibetuner run prod``."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import stop_process, wait_until
from tests.robustness.conftest import MiB, idle, served
from vibetuner.blobs.store import BlobStore
from vibetuner.models import Blob, UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.testing import (
    app_context,
    csrf_token_in,
    free_port,
    set_session_cookie,
    signed_in_cookie,
)


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in client of the scaffolded app that sends only what a test gives it."""
    person = UserModel(email=f"u-{uuid.uuid4().hex[:8]}@example.com", email_verified_at=utcnow())
    await person.insert()
    settings = app_context(app).settings
    value = await signed_in_cookie(settings, person)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        set_session_cookie(http, settings, value)
        yield http


async def test_the_notes_form_carries_the_token_and_cross_site_posts_are_refused(browser):
    from robust_app.models import Note

    page = await browser.get("/notes")
    token = csrf_token_in(page.text)
    form = page.text.split('<form id="note-form"', 1)[1].split(">", 1)[1]
    # The token field comes first, ahead of the files.
    assert re.match(r'\s*(\{#.*?#\}\s*)?<input type="hidden" name="csrf_token"', form)
    files = {"files": ("a.txt", b"attached", "text/plain")}

    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {}):
        refused = await browser.post(
            "/notes",
            data={"title": "forged", **({} if headers else {"csrf_token": "forged"})},
            files=files,
            headers=headers,
        )
        assert refused.status_code == 403, (headers, refused.text)
    assert await Note.count() == 0 and await Blob.count() == 0

    created = await browser.post("/notes", data={"csrf_token": token, "title": "Mine"}, files=files)
    assert created.status_code == 303, created.text
    note = await Note.find_one(Note.title == "Mine")
    note_page = await browser.get(f"/notes/{note.id}")
    delete_form = note_page.text.split("/delete", 1)[1]
    assert 'name="csrf_token"' in delete_form
    live = Note.find({"deleted_at": None})
    cross = await browser.post(
        f"/notes/{note.id}/delete",
        data={"csrf_token": csrf_token_in(note_page.text)},
        headers={"Referer": "https://evil.example/"},
    )
    assert cross.status_code == 403 and await live.count() == 1
    deleted = await browser.post(
        f"/notes/{note.id}/delete", data={"csrf_token": csrf_token_in(note_page.text)}
    )
    assert deleted.status_code == 303 and await live.count() == 0


def assert_no_inline_code(html: str) -> None:
    """Scripts come from files and there are no style elements or attributes, so the
    strict policy (no 'unsafe-inline', no nonce needed) lets the page work."""
    assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
    assert "<style" not in html
    assert "style=" not in html


async def test_scaffolded_pages_run_without_inline_code(browser):
    from robust_app.models import Note

    for path in ("/", "/notes", "/account"):
        page = await browser.get(path)
        policy = page.headers["content-security-policy"]
        assert "'unsafe-inline'" not in policy
        assert_no_inline_code(page.text)
        assert page.headers["cache-control"] == "no-store"  # signed in
        assert page.headers["x-frame-options"] == "DENY"
    token = csrf_token_in(page.text)
    created = await browser.post("/notes", data={"csrf_token": token, "title": "T", "body": "b"})
    assert created.status_code == 303
    note = await Note.find_one(Note.title == "T")
    detail = await browser.get(f"/notes/{note.id}")
    assert_no_inline_code(detail.text)
    assert "whitespace-pre-wrap" in detail.text


# --- bodies too large for the notes form ----------------------------------------------------


async def read_status(reader: asyncio.StreamReader) -> int:
    line = await reader.readline()
    return int(line.split()[1])


async def notes_head(app: Any, url: str, framing: str) -> bytes:
    from vibetuner.testing import csrf_session

    person = UserModel(email=f"big-{uuid.uuid4().hex[:8]}@example.com")
    await person.insert()
    settings = app_context(app).settings
    value = await signed_in_cookie(settings, person)
    value, token = await csrf_session(app, value)
    return (
        f"POST /notes HTTP/1.1\r\nHost: {url.removeprefix('http://')}\r\n"
        f"Cookie: {settings.session_cookie}={value}\r\nX-CSRF-Token: {token}\r\n"
        f"Content-Type: multipart/form-data; boundary=bb\r\n{framing}\r\n\r\n"
    ).encode()


PART = b'--bb\r\nContent-Disposition: form-data; name="title"\r\n\r\nBig\r\n' + (
    b'--bb\r\nContent-Disposition: form-data; name="files"; filename="big.bin"\r\n\r\n'
)


async def test_a_declared_oversize_note_is_refused_before_its_body(start_app):
    from robust_app.models import Note

    async with start_app(blob_max_size=1024) as app, served(app) as (url, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", url.rsplit(":", 1)[1])
        writer.write(await notes_head(app, url, f"Content-Length: {1024**3}") + PART)
        await writer.drain()
        # Answered at once, with 1 GiB still unsent.
        assert await asyncio.wait_for(read_status(reader), 10) == 413
        writer.close()
        await wait_until(idle(server))
        assert await Note.count() == 0


async def test_a_streamed_oversize_note_is_cut_off_at_the_limit(start_app):
    from robust_app.models import Note

    async with start_app(blob_max_size=1024) as app, served(app) as (url, server):
        # The form's limit: 10 attachments of 1 KiB and 256 KiB for the text fields.
        reader, writer = await asyncio.open_connection("127.0.0.1", url.rsplit(":", 1)[1])
        writer.write(await notes_head(app, url, "Transfer-Encoding: chunked"))
        answer = asyncio.create_task(read_status(reader))
        sent = 0
        chunk = os.urandom(64 * 1024)
        try:
            for data in [PART, *[chunk] * 64]:  # 4 MiB if nobody stops us
                if answer.done():
                    break
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
                sent += len(data)
                await asyncio.sleep(0.01)
        except (ConnectionError, OSError):
            pass
        assert await asyncio.wait_for(answer, 10) == 413
        assert sent < 1 * MiB, sent
        writer.close()
        await wait_until(idle(server))
        assert await Note.count() == 0 and await Blob.count() == 0


# --- hostile input ------------------------------------------------------------------------


async def test_json_nested_5000_deep_is_a_4xx(app, caplog):
    deep = "[" * 5000 + "]" * 5000
    bodies = [deep, '{"email": ' + deep + "}", '{"a": ' * 5000 + "1" + "}" * 5000]
    async with served(app) as (url, _server), httpx.AsyncClient(base_url=url, timeout=30) as http:
        for body in bodies:
            for path in ("/auth/magic-link", "/notes"):
                response = await http.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
                assert 400 <= response.status_code < 500, (path, response.status_code)
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


async def test_a_5000_digit_range_is_not_a_500(app, browser):
    owner = await UserModel.find_one()  # the browser's user

    async def data() -> AsyncIterator[bytes]:
        yield b"0123456789"

    blob = (
        await app_context(app)
        .get(BlobStore)
        .put(data(), filename="r.bin", content_type="application/octet-stream", uploaded_by=owner)
    )
    content = f"/blobs/{blob.id}/content"
    digits = "9" * 5000
    cases = {
        f"bytes={digits}-": 416,
        f"bytes=0-{digits}": 206,
        f"bytes=-{digits}": 206,
        f"bytes={'0' * 4999}1-2": 206,
        f"bytes={digits}-{digits}": 416,
    }
    for value, expected in cases.items():
        response = await browser.get(content, headers={"Range": value})
        assert response.status_code == expected, (value[:20], response.status_code)
        if expected == 206:
            assert response.content in (b"0123456789", b"12")


@pytest.mark.parametrize("path", ["/auth/magic-link", "/notes", "/blobs"])
async def test_a_client_leaving_mid_body_is_one_log_line(app, caplog, path):
    from vibetuner.testing import csrf_session

    person = UserModel(email=f"gone-{uuid.uuid4().hex[:8]}@example.com")
    await person.insert()
    settings = app_context(app).settings
    value = await signed_in_cookie(settings, person)
    value, token = await csrf_session(app, value)
    length = 10 * MiB
    if path == "/auth/magic-link":
        # Under the form's 16 KiB, so that the route starts reading it.
        kind, first, length = "application/x-www-form-urlencoded", b"email=someone%40exa", 10_000
    else:
        kind = "multipart/form-data; boundary=bb"
        first = PART.replace(b'name="files"', b'name="file"') if path == "/blobs" else PART
    caplog.set_level(logging.INFO)
    async with served(app) as (url, server):
        reader, writer = await asyncio.open_connection("127.0.0.1", url.rsplit(":", 1)[1])
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Cookie: {settings.session_cookie}={value}\r\nX-CSRF-Token: {token}\r\n"
                f"Content-Type: {kind}\r\nContent-Length: {length}\r\n\r\n"
            ).encode()
            + first
            + b"x" * 1000
        )
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()
        await wait_until(idle(server))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert "Traceback" not in caplog.text
    if path != "/blobs":  # /blobs answers 400 on its own, as before
        lines = [r for r in caplog.records if "disconnected" in r.getMessage()]
        assert len(lines) == 1, caplog.text


# --- TRUSTED_PROXIES in `vibetuner run prod` and `run dev` -------------------------------------


def run_server(
    project: Path, tmp_path: Path, mode: str = "prod", *args: str, **settings: str
) -> tuple[subprocess.Popen, str]:
    """``vibetuner run <mode> [args]`` of ``project`` on a free port; waits for ``/health``."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MONGODB_", "EMAIL_", "MAGIC_LINK_", "TRUSTED_", "FORWARDED_"))
    }
    env.update(
        {
            "ENVIRONMENT": "test" if mode == "prod" else "development",
            "BASE_URL": f"http://127.0.0.1:{port}",
            "EMAIL_BACKEND": "file",
            "EMAIL_FILE_DIR": str(tmp_path / "outbox"),
            "DATA_DIR": str(tmp_path / "data"),
            "MAGIC_LINK_RATE_PER_IP": "2",
            **settings,
        }
    )
    extra = ["--workers", "1"] if mode == "prod" else []
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "vibetuner.cli", "run", mode, "--host", "127.0.0.1"]
        + ["--port", str(port), *extra, *args],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise AssertionError(f"vibetuner run {mode} did not start")
        time.sleep(0.1)


def run_prod(project: Path, tmp_path: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    return run_server(project, tmp_path, "prod", **settings)


def ask_links(url: str, forwarded: list[str]) -> list[int]:
    codes = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for n, address in enumerate(forwarded):
            response = http.post(
                "/auth/magic-link",
                json={"email": f"proxy-{n}@example.com"},
                headers={"X-Forwarded-For": address},
            )
            codes.append(response.status_code)
    return codes


def test_run_prod_believes_forwarded_for_only_from_trusted_proxies(project: Path, tmp_path: Path):
    forged = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    # Nobody trusted (the default): a forged X-Forwarded-For does not make a new client.
    process, url = run_prod(project, tmp_path / "none")
    try:
        assert ask_links(url, forged) == [200, 200, 429]
    finally:
        stop_process(process)
    # Behind a proxy on 127.0.0.1: each forwarded client has its own count.
    process, url = run_prod(project, tmp_path / "proxy", TRUSTED_PROXIES="127.0.0.1")
    try:
        assert ask_links(url, forged) == [200, 200, 200]
        assert ask_links(url, ["198.51.100.1"]) == [200]
        assert ask_links(url, ["198.51.100.1"]) == [429]
    finally:
        stop_process(process)


def test_the_dockerfile_trusts_no_proxy_unless_told(project: Path):
    dockerfile = (project / "Dockerfile").read_text()
    assert "TRUSTED_PROXIES=" in dockerfile and '"run", "prod"' in dockerfile
    assert "FORWARDED_ALLOW_IPS" not in dockerfile and "forwarded-allow-ips" not in dockerfile


def sign_in_network(url: str, outbox_dir: Path, forwarded: str) -> str:
    """Sign in through the emailed link, every request saying ``X-Forwarded-For:
    forwarded``; the network ``/auth/sessions`` then shows for this session."""
    from vibetuner.testing import Outbox

    address = f"net-{uuid.uuid4().hex[:8]}@example.com"
    headers = {"X-Forwarded-For": forwarded}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as http:
        assert http.post("/auth/magic-link", json={"email": address}).status_code == 200
        outbox = Outbox(outbox_dir)
        (link,) = outbox.links(outbox.to(address)[-1])
        page = http.get(link)
        landed = http.post(link, data={"csrf_token": csrf_token_in(page.text)})
        assert landed.status_code == 303, landed.text
        (session,) = http.get("/auth/sessions").json()
        return str(session["ip_prefix"])


def test_run_dev_believes_forwarded_for_only_from_trusted_proxies(project: Path, tmp_path: Path):
    import shutil

    # A copy: the dev server's stylesheet watcher writes into the project.
    root = tmp_path / "project"
    shutil.copytree(project, root, ignore=shutil.ignore_patterns("data", "__pycache__"))
    forged = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    # Nobody trusted (the default): the loopback peer is the client, whatever the header.
    process, url = run_server(root, tmp_path / "none", "dev")
    try:
        network = sign_in_network(url, tmp_path / "none" / "outbox", "198.51.100.7")
        assert network == "127.0.0.0/24"
        # One link of the two allowed per client went to that sign-in.
        assert ask_links(url, forged) == [200, 429, 429]
    finally:
        stop_process(process)
    # The same in development as in production: behind a trusted proxy, the forwarded client.
    process, url = run_server(root, tmp_path / "proxy", "dev", TRUSTED_PROXIES="127.0.0.1")
    try:
        network = sign_in_network(url, tmp_path / "proxy" / "outbox", "198.51.100.7")
        assert network == "198.51.100.0/24"
        assert ask_links(url, forged) == [200, 200, 200]
    finally:
        stop_process(process)


def unsafe_requests(url: str, forwarded: list[str]) -> list[tuple[int, str]]:
    """One anonymous POST per ``X-Forwarded-For`` value: status and error code."""
    answers = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for address in forwarded:
            response = http.post("/auth/logout", json={}, headers={"X-Forwarded-For": address})
            code = response.json().get("code", "") if response.status_code == 429 else ""
            answers.append((response.status_code, code))
    return answers


def test_run_prod_rate_limits_count_the_client_behind_trusted_proxies_only(
    project: Path, tmp_path: Path
):
    # The app-wide limits (ratelimit/) count by the same client address as the sign-in
    # limits: a rotating X-Forwarded-For escapes neither.
    limits = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMIT_UNSAFE": "2/minute"}
    forged = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    process, url = run_prod(project, tmp_path / "none", **limits)
    try:
        answers = unsafe_requests(url, forged)
        assert answers[2] == (429, "rate_limited"), answers
    finally:
        stop_process(process)
    process, url = run_prod(project, tmp_path / "proxy", TRUSTED_PROXIES="127.0.0.1", **limits)
    try:
        answers = unsafe_requests(url, forged + ["198.51.100.1", "198.51.100.1"])
        assert all(status != 429 for status, _ in answers[:4]), answers
        assert answers[4] == (429, "rate_limited"), answers
    finally:
        stop_process(process)

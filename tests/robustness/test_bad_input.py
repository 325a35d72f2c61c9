"""Bad input over HTTP: every answer is a 4xx that says what is wrong, never a 500, and
nothing is stored -- no user, token, email, blob, object or note.

The scaffolded app runs under uvicorn on 127.0.0.1 (in this process, so the database
can be checked afterwards); what httpx would refuse to send goes through a raw socket.
Hostile file *names* are not bad input: the upload is stored under a cleaned name
(``test_hostile_file_names_are_cleaned_end_to_end``).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.images import png_bomb
from tests.robustness.conftest import LiveApp, served
from vibetuner.blobs.store import BlobStore
from vibetuner.models import Blob, EmailVerificationToken, UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.testing import app_context, csrf_session, csrf_token_in, signed_in_cookie

BAD_EMAILS = [
    "",
    "   ",
    "plainaddress",
    "@example.com",
    "someone@",
    "a@@example.com",
    "two words@example.com",
    "someone@example..com",
    "someone@-example.com",
    "x" * 400 + "@example.com",
    "someone@" + "d" * 300 + ".com",
    "some\x00one@example.com",
    "someone@example.com\r\nBcc: victim@example.net",
    "someone@example.com\nSubject: injected",
    "some\u202eone@example.com",
    "\u202e@example.com",
    "someone@exa mple.com",
    "<someone@example.com>",
    "Someone <someone@example.com>",
    "someone@example.com, other@example.com",
]
BAD_JSON_BODIES = [
    {"email": 12345},
    {"email": ["someone@example.com"]},
    {"email": {"address": "someone@example.com"}},
    {"email": None},
    {"email": True},
    {},
    ["someone@example.com"],
    "someone@example.com",
]
BAD_IDS = [
    "xyz",
    "f" * 24 + "g",
    "f" * 23,
    "f" * 25,
    "F" * 24 + "%00",
    "%00",
    "%E2%80%AE" + "a" * 21,
    "%F0%9F%98%80" * 6,
    "1" * 5000,
    "..%2F..%2Fetc%2Fpasswd",
    "null",
    "-1",
]


@pytest.fixture
async def site(app: Any) -> AsyncIterator[dict[str, Any]]:
    """The app served over loopback, a signed-in user and their cookie."""
    person = UserModel(email=f"u-{uuid.uuid4().hex[:8]}@example.com", email_verified_at=utcnow())
    await person.insert()
    settings = app_context(app).settings
    value = await signed_in_cookie(settings, person)
    # The cookie after a page visit, with the CSRF token of that page, as a browser has.
    value, token = await csrf_session(app, value)
    cookie = f"{settings.session_cookie}={value}"
    headers = {"Cookie": cookie, "X-CSRF-Token": token}
    async with (
        served(app) as (url, _server),
        httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as http,
    ):
        yield {
            "app": app,
            "url": url,
            "http": http,
            "user": person,
            "cookie": cookie,
            "token": token,
        }


def says_what_is_wrong(response: httpx.Response) -> str:
    """The message of a 4xx answer (JSON ``detail`` or a page); fails on anything else."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if response.headers.get("content-type", "").startswith("application/json"):
        detail = response.json()["detail"]
        message = detail if isinstance(detail, str) else " ".join(d["msg"] for d in detail)
    else:
        message = response.text
    assert message.strip(), f"{response.status_code} without a message"
    assert "Traceback" not in response.text
    return message


async def assert_nothing_stored(app: Any, *, users: int = 1) -> None:
    from robust_app.models import Note

    store = app_context(app).get(BlobStore)
    outbox = app_context(app).settings.email_file_dir
    assert await UserModel.find_all().count() == users
    assert await EmailVerificationToken.find_all().count() == 0
    assert await Blob.find_all().count() == 0
    assert await Note.find_all().count() == 0
    assert [key async for key in store.backend.keys()] == []
    assert list(store.backend.temp_files()) == []
    assert not outbox.exists() or list(outbox.iterdir()) == []


async def raw_request(url: str, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is; the status code and everything the server answered."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 60)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest


async def test_malformed_emails_are_refused(site: dict[str, Any]) -> None:
    http = site["http"]
    for address in BAD_EMAILS:
        for kind in ("json", "form", "page"):
            if kind == "json":
                response = await http.post("/auth/magic-link", json={"email": address})
            else:
                headers = {"Accept": "text/html"} if kind == "page" else {}
                response = await http.post(
                    "/auth/magic-link", data={"email": address}, headers=headers
                )
            assert response.status_code == 422, (address, kind, response.text[:300])
            message = says_what_is_wrong(response)
            assert "email" in message.lower(), (address, message)
            if kind == "page":
                assert "\x00" not in response.text
    for body in BAD_JSON_BODIES:
        response = await http.post("/auth/magic-link", json=body)
        assert response.status_code == 422, (body, response.text)
        says_what_is_wrong(response)
    await assert_nothing_stored(site["app"])


async def test_oversized_and_mistyped_sign_in_bodies_are_refused(site: dict[str, Any]) -> None:
    http = site["http"]
    huge = "a" * (64 * 1024) + "@example.com"
    cases = [
        {"json": {"email": huge}},
        {"data": {"email": huge}},
        {"data": {"email": "someone@example.com", "next": "/" + "n" * 70_000}},
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"content": b"\xff\xfe\x00garbage", "headers": {"Content-Type": "application/json"}},
        {"content": b"email=a%40b.com", "headers": {"Content-Type": "text/plain"}},
        {"content": b"\x00" * 1000, "headers": {"Content-Type": "application/octet-stream"}},
        {"content": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data"}},
        {
            "files": {"email": ("a.txt", b"someone@example.com")},
            "data": {"email": "someone@example.com"},
        },
    ]
    for kwargs in cases:
        response = await http.post("/auth/magic-link", **kwargs)
        says_what_is_wrong(response)
    await assert_nothing_stored(site["app"])


@pytest.mark.parametrize("blob_id", BAD_IDS)
async def test_invalid_ids_in_paths_are_404(site: dict[str, Any], blob_id: str) -> None:
    http = site["http"]
    requests = [
        ("GET", f"/blobs/{blob_id}"),
        ("GET", f"/blobs/{blob_id}/content"),
        ("HEAD", f"/blobs/{blob_id}/content"),
        ("GET", f"/blobs/{blob_id}/signed?token=abc"),
        ("DELETE", f"/blobs/{blob_id}"),
        ("GET", f"/notes/{blob_id}"),
        ("POST", f"/notes/{blob_id}/delete"),
    ]
    for method, path in requests:
        response = await http.request(method, path)
        if method == "HEAD":
            assert response.status_code == 404, path
        elif path.endswith("signed?token=abc"):
            # A signed link is checked before anything is looked up (403); an id with
            # an encoded "/" is another path, which no route serves (404).
            assert response.status_code in (403, 404), (path, response.text)
            says_what_is_wrong(response)
        else:
            assert response.status_code == 404, (method, path, response.text[:200])
            says_what_is_wrong(response)
    await assert_nothing_stored(site["app"])


async def test_malformed_uploads_are_refused(site: dict[str, Any]) -> None:
    http = site["http"]
    multipart = "multipart/form-data; boundary=bb"
    cases: list[dict[str, Any]] = [
        {"content": b"just bytes", "headers": {"Content-Type": "application/octet-stream"}},
        {"json": {"file": "aGVsbG8="}},
        {"data": {"file": "hello"}},
        {"content": b"hello", "headers": {"Content-Type": "text/plain"}},
        {"content": b"--bb\r\nbroken", "headers": {"Content-Type": "multipart/form-data"}},
        {"content": b"no boundary at all", "headers": {"Content-Type": multipart}},
        {
            "content": b'--bb\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
            b"no closing boundary",
            "headers": {"Content-Type": multipart},
        },
        {
            "content": b"--bb\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--bb--\r\n",
            "headers": {"Content-Type": multipart},
        },
        {
            "content": b"--bb\r\n\xff\xfe\x00\x01garbage headers\r\n\r\nx\r\n--bb--\r\n",
            "headers": {"Content-Type": multipart},
        },
        {
            "content": b"x",
            "headers": {"Content-Type": "multipart/form-data; boundary=" + "b" * 300},
        },
        {"files": {"upload": ("a.txt", b"wrong field name")}},
        {
            # What a browser sends when no file was chosen.
            "content": b'--bb\r\nContent-Disposition: form-data; name="file"; filename=""\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n\r\n--bb--\r\n",
            "headers": {"Content-Type": multipart},
        },
        {
            # A part header far over the parser's limit.
            "files": {"file": ("n" * 20_000 + ".txt", b"data")},
        },
    ]
    for kwargs in cases:
        response = await http.post("/blobs", **kwargs)
        says_what_is_wrong(response)
    # Notes: a title that is blank, multi-line or too long; a JSON body.
    for title in ["", "   ", "a\x00b", "line\r\nbreak", "t" * 201, "\x1b[31mred"]:
        response = await http.post("/notes", data={"title": title})
        assert response.status_code == 422, (title, response.text)
        says_what_is_wrong(response)
    response = await http.post("/notes", json={"title": "JSON"})
    assert response.status_code == 422
    says_what_is_wrong(response)
    await assert_nothing_stored(site["app"])


async def test_broken_http_is_refused_by_the_server(site: dict[str, Any]) -> None:
    url, cookie, token = site["url"], site["cookie"], site["token"]
    host = url.removeprefix("http://")
    head = (
        f"POST /blobs HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
        f"X-CSRF-Token: {token}\r\nConnection: close\r\n"
    )
    cases = [
        # A Content-Length that is not a number, or two that disagree.
        head + "Content-Type: multipart/form-data; boundary=bb\r\nContent-Length: ten\r\n\r\n",
        head + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        # Control characters in a header value.
        head + "Content-Type: multipart/form-data; boundary=b\x00b\r\nContent-Length: 1\r\n\r\nx",
        # A request line with a NUL in the path.
        f"GET /blobs/\x00 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
        # A header line without a colon.
        head + "this is not a header\r\nContent-Length: 0\r\n\r\n",
    ]
    for request in cases:
        status_code, answer = await raw_request(url, request.encode("latin-1"))
        assert 400 <= status_code < 500, (request, status_code, answer[:300])
    # A bare CR inside a part header breaks the multipart framing: refused.
    body = (
        b'--bb\r\nContent-Disposition: form-data; name="file"; filename="a\rb.txt"\r\n\r\n'
        + b"bytes\r\n--bb--\r\n"
    )
    framing = f"Content-Type: multipart/form-data; boundary=bb\r\nContent-Length: {len(body)}"
    status_code, answer = await raw_request(url, (head + framing + "\r\n\r\n").encode() + body)
    assert status_code == 400 and b"Malformed multipart body" in answer, answer
    await assert_nothing_stored(site["app"])


HOSTILE_NAMES = [
    "emoji-\U0001f600.txt",
    "rtl-\u202etxt.exe",
    "nul\x00byte.txt",
    "crlf\r\nX-Injected: 1.txt",
    "../../etc/passwd",
    "C:\\Windows\\system32\\evil.dll",
    "n" * 1000 + ".txt",
    "\x07\x1b[31mbell.txt",
    "quote\"and'semicolon;.txt",
    "..",
]


async def test_hostile_file_names_are_cleaned_end_to_end(site: dict[str, Any]) -> None:
    """Not refused: the file is stored under a cleaned name that is safe in every header."""
    http = site["http"]
    for name in HOSTILE_NAMES:
        response = await http.post("/blobs", files={"file": (name, b"data", "text/plain")})
        assert response.status_code == 201, (name, response.text)
        stored = response.json()["filename"]
        assert stored and len(stored) <= 255
        assert not any(c in stored for c in "\x00\r\n\x07\x1b\u202e/\\"), stored
        download = await http.get(f"/blobs/{response.json()['id']}/content")
        assert download.status_code == 200 and download.content == b"data"
        disposition = download.headers["content-disposition"]
        assert disposition.isascii() and not any(c in disposition for c in "\r\n\x00")
        assert (await http.delete(f"/blobs/{response.json()['id']}")).status_code == 204
    await assert_nothing_stored(site["app"])


def memory_of(pid: int) -> dict[str, int]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {
        name: int(re.search(rf"^{name}:\s+(\d+) kB", status, re.M).group(1)) // 1024  # type: ignore[union-attr]
        for name in ("VmRSS", "VmHWM")
    }


async def test_image_bombs_are_refused_and_memory_stays_flat(live_app: LiveApp) -> None:
    # Real PNGs of a few hundred KB that decode to 121 and 400 million pixels: as a
    # note's three attachments (the thumbnail job would decode them), as a profile
    # picture (a browser and the admin preview would) and through the blob API.
    medium, large = png_bomb(11_000, 11_000), png_bomb(20_000, 20_000)
    assert len(medium) < 200_000 and len(large) < 400_000
    cookies = live_app.sign_in()
    async with httpx.AsyncClient(base_url=live_app.url, cookies=cookies, timeout=60) as http:
        page = await http.get("/notes", headers={"Accept": "text/html"})
        token = csrf_token_in(page.text)
        before = memory_of(live_app.process.pid)
        note = await http.post(
            "/notes",
            data={"csrf_token": token, "title": "Bombs"},
            files=[("files", (f"bomb{n}.png", medium, "image/png")) for n in range(3)],
            headers={"Accept": "text/html"},
        )
        assert note.status_code == 422
        assert "is 11000 × 11000 pixels; the limit is 50 megapixels." in says_what_is_wrong(note)
        for path, field in (("/account/picture", "picture"), ("/blobs", "file")):
            refused = await http.post(
                path,
                files={field: ("me.png", large, "image/png")},
                headers={"X-CSRF-Token": token},
            )
            assert refused.status_code == 422, (path, refused.text[:300])
            assert "20000 x 20000 pixels" in says_what_is_wrong(refused)
        await asyncio.sleep(2)  # room for any job the uploads might have queued
        after = memory_of(live_app.process.pid)
        print(f"server memory (MB): before {before}, after {after}")
        # Nothing was decoded: the peak grows by the request bodies, not by pixels.
        assert after["VmHWM"] - before["VmHWM"] < 64, (before, after)
        listing = await http.get("/notes", headers={"Accept": "text/html"})
        assert "Bombs" not in listing.text
        assert (await http.get("/auth/me")).json()["picture"] is None

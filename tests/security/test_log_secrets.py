"""No secret reaches the logs: a whole session (sign-in by emailed link, an upload, a
signed download, admin pages) through a real uvicorn with its access log on and the
production (JSON) log format, then every secret and token seen is looked for in the log.

uvicorn's access log prints each request's path and query: the sign-in link's token is
in its path (``/auth/magic-link/{token}``), a signed download's in its query.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from tests.helpers import capture_json_logs
from vibetuner.blobs.store import BlobStore
from vibetuner.config import Settings
from vibetuner.logs import UVICORN_LOGGERS
from vibetuner.models import UserModel
from vibetuner.testing import Outbox, app_context, csrf_token_in, free_port

HTML = {"Accept": "text/html"}


@pytest.fixture
async def server(vibetuner_settings: Settings) -> AsyncIterator[tuple[str, Any, Settings]]:
    from vibetuner import create_app
    from vibetuner.admin import AdminFeature
    from vibetuner.app import default_features

    port = free_port()
    settings = vibetuner_settings.model_copy(
        update={
            "base_url": f"http://127.0.0.1:{port}",
            "smtp_password": SecretStr("smtp-" + secrets.token_urlsafe(16)),
            "log_format": "json",
        }
    )
    application = create_app(settings=settings, features=[*default_features(), AdminFeature()])
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, log_config=None, log_level="info"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), serving.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", application, settings
    finally:
        server.should_exit = True
        await serving


async def test_a_full_session_leaves_no_secret_in_the_logs(
    server: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    url, application, settings = server
    # The test's own HTTP client logs the URLs it calls: that is the client's log, not
    # the server's, and it shares this process's root logger.
    monkeypatch.setattr(logging.getLogger("httpx"), "level", logging.WARNING)
    # As `vibetuner run` sets it up (earlier tests in this process may have changed it).
    for name in UVICORN_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        monkeypatch.setattr(logging.getLogger(name), "handlers", [])
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    access_logger = logging.getLogger("uvicorn.access")
    previous_level = access_logger.level
    access_logger.setLevel(logging.INFO)  # (setLevel, not the attribute: levels are cached)
    request.addfinalizer(lambda: access_logger.setLevel(previous_level))
    seen: list[str] = [settings.session_key.get_secret_value()]
    seen.append(settings.smtp_password.get_secret_value())
    outbox = Outbox(settings.email_file_dir)

    with capture_json_logs() as logs:
        async with httpx.AsyncClient(base_url=url, headers={"Origin": url}) as http:
            # Sign in by emailed link: ask, open the link, press its button.
            asked = await http.post("/auth/magic-link", data={"email": "leak@example.com"})
            assert asked.status_code == 200, asked.text
            (link,) = [line for line in outbox.text(outbox.last).split() if "/magic-link/" in line]
            path = urlsplit(link).path
            seen.append(path.rsplit("/", 1)[1])  # the token
            page = await http.get(path, headers=HTML)
            form_token = csrf_token_in(page.text)
            seen.append(form_token)
            signed_in = await http.post(path, data={"csrf_token": form_token}, headers=HTML)
            assert signed_in.status_code == 303, signed_in.text
            cookie = http.cookies[settings.session_cookie_name]
            seen.append(cookie)

            # Upload a file with the page's CSRF token, as the page's script does.
            account = await http.get("/", headers=HTML)
            token = csrf_token_in(account.text)
            seen.append(token)
            uploaded = await http.post(
                "/blobs",
                files={"file": ("notes.txt", b"hello", "text/plain")},
                headers={"X-CSRF-Token": token},
            )
            assert uploaded.status_code == 201, uploaded.text

            # A signed download link, opened by someone without the session.
            from vibetuner.models import Blob

            blob = await Blob.get(uploaded.json()["id"])
            signed = await app_context(application).get(BlobStore).url(blob)
            seen.append(signed.split("token=", 1)[1])
            async with httpx.AsyncClient() as stranger:
                assert (await stranger.get(signed)).status_code == 200

            # The admin, once the user is one.
            user = await UserModel.get_by_email("leak@example.com")
            user.roles = ["admin"]
            await user.save()
            for admin_page in ("/admin/", "/admin/users/list", "/admin/blobs/list"):
                shown = await http.get(admin_page, headers=HTML)
                assert shown.status_code == 200, (admin_page, shown.status_code)
            seen.append(http.cookies[settings.session_cookie_name])

            # A refused cross-site post to the link's address is logged before routing.
            refused = await http.post(path, headers={"Origin": "https://evil.example"})
            assert refused.status_code == 403
        await asyncio.sleep(0.2)  # the last access-log lines

    text = logs.text
    access = [e for e in logs.entries() if e["logger"] == "uvicorn.access"]
    assert len(access) >= 10, text  # the access log was on and went through the handler
    assert any("/auth/magic-link/[redacted]" in e["message"] for e in access), text
    assert any("token=[redacted]" in e["message"] for e in access), text
    admin_lines = [e for e in access if "GET /admin/users/list" in e["message"]]
    assert len(admin_lines) == 1, [e["message"] for e in access]
    admin_line = admin_lines[0]
    assert admin_line["user_id"] == str(user.id) and admin_line["status"] == 200
    for secret in {s for s in seen if s}:
        assert secret not in text, f"a secret ({secret[:6]}...) is in the logs"

"""A client that goes away in the middle of an upload, against a real uvicorn server."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import uvicorn

from tests.blobs.conftest import MiB, free_port, leftovers
from tests.helpers import wait_until
from vibetuner.models import Blob
from vibetuner.testing import app_context, csrf_session, signed_in_cookie


async def test_client_disconnect_mid_upload_leaves_nothing(app: Any, user: Any, store: Any) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: asyncio.sleep(0, server.started))
        settings = app_context(app).settings
        cookie = await signed_in_cookie(settings, user)
        cookie, token = await csrf_session(app, cookie)
        part = b'--bb\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n\r\n'
        head = (
            "POST /blobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Cookie: {settings.session_cookie}={cookie}\r\nX-CSRF-Token: {token}\r\n"
            "Content-Type: multipart/form-data; boundary=bb\r\n"
            f"Content-Length: {11 * MiB}\r\n\r\n"
        ).encode()
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head + part)
        for _ in range(7):  # past the first S3 part, so a multipart upload is under way
            writer.write(os.urandom(MiB))
            await writer.drain()

        async def upload_started() -> bool:
            return await Blob.find_all().count() == 1

        await wait_until(upload_started)
        writer.close()

        async def cleaned_up() -> bool:
            return await Blob.find_all().count() == 0 and await leftovers(store) == []

        await wait_until(cleaned_up)
    finally:
        server.should_exit = True
        await serving

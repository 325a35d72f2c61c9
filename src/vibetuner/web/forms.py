"""Small request bodies (sign-in forms) read with a hard size limit, as a form or as JSON."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.types import Message

from vibetuner.errors import UploadTooLarge
from vibetuner.web.body_limits import declared_length

MAX_FORM_BYTES = 16 * 1024


async def read_small_body(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, Any]:
    """The fields of a form (urlencoded or multipart, no files) or JSON object body.

    At most ``limit`` bytes are read whatever the encoding (``form(max_part_size=...)``
    only limits multipart bodies, and ``request.json()`` would read anything); a larger
    body raises ``UploadTooLarge``. Malformed JSON or a JSON value that is not an object
    gives ``{}``.
    """
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise UploadTooLarge("The form is too large.")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise UploadTooLarge("The form is too large.")
    body = bytes(received)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    # A fresh Request over the bytes already read: the form parser reads them again.
    form = await Request(request.scope, replay).form(
        max_files=0, max_fields=20, max_part_size=limit
    )
    return {key: value for key, value in form.items() if isinstance(value, str)}

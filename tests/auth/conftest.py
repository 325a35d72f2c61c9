"""Fixtures for the sign-in tests: reading the outbox and following links."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

LINK_RE = re.compile(r"https?://[^\s\"'<>]+/auth/magic-link/[A-Za-z0-9_\-]+(?:\?[^\s\"'<>]*)?")


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


@pytest.fixture
def outbox(vibetuner_settings: Any):
    """A function returning the messages written to the outbox so far."""
    return lambda: read_outbox(vibetuner_settings.email_file_dir)


async def request_link(client: Any, address: str, **extra: str) -> Any:
    """POST /auth/magic-link as a form, the way the login page does."""
    return await client.post("/auth/magic-link", data={"email": address, **extra})

"""What travels: an event on a channel, its id, and the checks on names and sizes.

An event id is ``"<a>-<b>"``, two integers compared in order: a Redis stream id, or for
the in-process broker the broker's start time and a counter. A browser sends the last
id it saw back as ``Last-Event-ID`` when it reconnects; it is checked here, since it is
whatever the client says.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# Letters, digits and ``_.:-``: safe in a URL query, a Redis key and a log line.
CHANNEL_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")
# An SSE event name is one line; this keeps it to a plain word a template can name.
EVENT_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
EVENT_ID_PATTERN = re.compile(r"^([0-9]{1,20})-([0-9]{1,20})$")
#: Channels under this prefix are vibetuner's own; no browser can subscribe to them.
RESERVED_PREFIX = "vibetuner:"

EventId = tuple[int, int]


# SSE ends a line at CR LF, CR or LF (and only there: str.splitlines splits on more).
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Event:
    """One published event: ``id`` orders it; ``data`` is text (a fragment, JSON ...)."""

    id: str
    channel: str
    event: str
    data: str
    #: The event as a stream writes it: encoded once, sent to every subscriber.
    wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lines = "".join(f"data: {line}\r\n" for line in LINE_BREAK.split(self.data))
        text = f"id: {self.id}\r\nevent: {self.event}\r\n{lines}\r\n"
        object.__setattr__(self, "wire", text.encode("utf-8"))

    @property
    def position(self) -> EventId:
        """The id as a pair of integers, for comparing."""
        parsed = parse_event_id(self.id)
        assert parsed is not None
        return parsed


def parse_event_id(value: str) -> EventId | None:
    """``"12-3"`` -> ``(12, 3)``; None for anything else."""
    found = EVENT_ID_PATTERN.match(value)
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2))


def check_channel(channel: str) -> str:
    """``channel`` if it is a valid channel name; ``ValueError`` saying why otherwise."""
    if not isinstance(channel, str) or not CHANNEL_PATTERN.match(channel):
        raise ValueError(
            f"invalid channel name {channel!r}: use 1 to 200 letters, digits and _ . : -"
        )
    return channel


def check_event_name(event: str) -> str:
    """``event`` if it is a valid event name; ``ValueError`` saying why otherwise."""
    if not isinstance(event, str) or not EVENT_PATTERN.match(event):
        raise ValueError(f"invalid event name {event!r}: use 1 to 100 letters, digits and _ . : -")
    return event


def encode_data(data: Any, max_bytes: int) -> str:
    """The text an event carries: ``str`` as it is, anything else as JSON.

    ``ValueError`` when it is longer than ``max_bytes`` (``REALTIME_MAX_EVENT_BYTES``):
    every subscriber's buffer holds a copy until it is sent.
    """
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    if len(text) > max_bytes or len(text.encode("utf-8")) > max_bytes:
        raise ValueError(
            f"the event data is larger than REALTIME_MAX_EVENT_BYTES ({max_bytes} bytes)"
        )
    return text


def user_channel(user: Any) -> str:
    """The channel of one user (``user:<id>``): only that user may subscribe to it."""
    user_id = getattr(user, "id", user)
    return f"user:{user_id}"

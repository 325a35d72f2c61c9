"""Realtime: server-sent events that reach every signed-in browser allowed to see them.

::

    from vibetuner.realtime import RealtimeFeature, publish, user_channel

    realtime = RealtimeFeature()
    app = create_app(features=[AuthFeature(), realtime])

    # in a route, a job, a command:
    await publish(user_channel(user), "note-updated", {"id": str(note.id)})

A page subscribes with ``GET /realtime?channel=...`` (``realtime_url(...)`` in templates)
and ``vibetuner/vibetuner-realtime.js`` turns the events into htmx swaps and DOM events.
Importing this package is cheap: the stream's libraries load with the feature.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vibetuner.errors import VibetunerError

__all__ = ["Event", "RealtimeFeature", "RealtimeUnavailable", "publish", "user_channel"]

_EXPORTS = {
    "Event": "vibetuner.realtime.events",
    "user_channel": "vibetuner.realtime.events",
    "RealtimeFeature": "vibetuner.realtime.feature",
}

if TYPE_CHECKING:
    from vibetuner.realtime.events import Event, user_channel
    from vibetuner.realtime.feature import RealtimeFeature


class RealtimeUnavailable(VibetunerError):
    """No ``RealtimeFeature`` runs in this process, or its broker cannot be reached."""

    code = "realtime_unavailable"


async def publish(channel: str, event: str, data: Any = "") -> Event:
    """Send ``event`` with ``data`` to every browser subscribed to ``channel``.

    ``data`` is text (an HTML fragment) or anything JSON can encode. ``ValueError`` for
    an invalid channel or event name, or data over ``REALTIME_MAX_EVENT_BYTES``;
    ``RealtimeUnavailable`` when no ``RealtimeFeature`` runs in this process (a command
    or a worker built without it) or Redis cannot be reached.
    """
    from vibetuner.realtime.hub import current_hub

    hub = current_hub()
    if hub is None:
        raise RealtimeUnavailable("no RealtimeFeature is running in this process")
    return await hub.publish(channel, event, data)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vibetuner.realtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

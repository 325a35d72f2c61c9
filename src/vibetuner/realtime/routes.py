"""``GET /realtime``: the event stream a page subscribes to (server-sent events).

``/realtime?channel=user:65f0...&channel=note:65f1...`` streams the events of those
channels to a signed-in user allowed to read each one. Refused: a signed-out request
(401), a channel the user may not read or that no rule names (403, the same answer
whether or not the document exists), a request from another site (403), malformed
channel names (400). A ``Last-Event-ID`` this app cannot place starts the stream with
``realtime-missed``. The stream ends when the session ends, when the client reads too
slowly, and when the server shuts down.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from vibetuner.auth.current import current_session, forget_session
from vibetuner.auth.sessions import hash_session_token
from vibetuner.realtime.events import CHANNEL_PATTERN, EventId, check_channel, parse_event_id
from vibetuner.realtime.hub import HEARTBEAT, Hub, Listener
from vibetuner.web.context import get_context
from vibetuner.web.csrf import origin_of
from vibetuner.web.identity import SESSION_TOKEN_KEY
from vibetuner.web.responses import documented_problem

if TYPE_CHECKING:
    from vibetuner.realtime.broker import Subscription
    from vibetuner.realtime.response import ServerSentEvent

logger = logging.getLogger("vibetuner.realtime")

#: Sent (without data) to a client that reconnected too late to get everything it missed.
MISSED_EVENT = "realtime-missed"
PING = b": ping\r\n\r\n"

router = APIRouter(tags=["realtime"])


def hub_of(request: Request) -> Hub:
    """The running hub of the request's app."""
    hub = get_context(request).find(Hub)
    if hub is None:
        raise HTTPException(503, "Realtime is not running.")
    return hub


def from_another_site(request: Request, hub: Hub) -> bool:
    """True for a request another site's page made (``Sec-Fetch-Site``, ``Origin``).

    The session cookie is SameSite=Lax, so a cross-site ``EventSource`` arrives signed
    out anyway; this refuses the same-site ones (a sibling subdomain) too.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    settings = hub.settings
    allowed = {origin_of(settings.base_url), *map(origin_of, settings.csrf_trusted_origins)}
    host = request.headers.get("host")
    if host:
        allowed.add(f"{request.url.scheme}://{host}".lower())
    return origin_of(origin) not in allowed


def requested_channels(request: Request, hub: Hub) -> frozenset[str]:
    """The ``channel`` query values, checked; 400 when missing, too many or malformed."""
    names = request.query_params.getlist("channel")
    limit = hub.settings.realtime_max_channels
    if not names:
        raise HTTPException(400, "Name at least one channel: ?channel=...")
    if len(names) > limit:
        raise HTTPException(400, f"At most {limit} channels per stream.")
    try:
        return frozenset(check_channel(name) for name in names)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


def resume_point(request: Request) -> tuple[EventId | None, bool]:
    """Where the client left off: ``Last-Event-ID`` (a reconnect), else ``?after=`` (the
    page's starting point); and whether it named a point this app cannot place (not one
    of its ids), which the stream answers as missed events rather than refusing."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after")
    if not raw:
        return None, False
    parsed = parse_event_id(raw.strip())
    return parsed, parsed is None


# Any text: one this app cannot place is answered with "realtime-missed", not refused.
ID_SCHEMA = {"type": "string"}
# The query and header are read by hand (a 400 with what is wrong); documented here.
PARAMETERS = [
    {
        "name": "channel",
        "in": "query",
        "required": True,
        "style": "form",
        "explode": True,
        "schema": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "pattern": CHANNEL_PATTERN.pattern},
        },
        "description": "A channel to subscribe to (repeat for several)",
    },
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": ID_SCHEMA,
        "description": "Start after this event id (the page's starting point)",
    },
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": ID_SCHEMA,
        "description": "The last event id received (sent by the browser when it reconnects)",
    },
]


@router.get(
    "/realtime",
    name="realtime_events",
    response_class=Response,
    openapi_extra={"parameters": PARAMETERS},
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
        400: documented_problem("No channel, too many channels, or a malformed channel name"),
        401: documented_problem("Not signed in"),
        403: documented_problem("A channel the user may not read, or a request from another site"),
        429: documented_problem(
            "More streams open in this browser than REALTIME_MAX_STREAMS_PER_SESSION"
        ),
    },
)
async def realtime_events(request: Request) -> Response:
    """Stream the events of the ``channel`` query parameters (server-sent events)."""
    hub = hub_of(request)
    if from_another_site(request, hub):
        raise HTTPException(403, "Event streams are for this site's own pages.")
    active = await current_session(request)
    if active is None:
        raise HTTPException(401, "Not signed in.")
    channels = requested_channels(request, hub)
    after, unknown = resume_point(request)
    for channel in sorted(channels):
        if not await hub.rules.allows(active.user, channel):
            raise HTTPException(403, f"You may not subscribe to {channel}.")
    session_key = hash_session_token(request.session[SESSION_TOKEN_KEY])
    if hub.streams_of(session_key) >= hub.settings.realtime_max_streams_per_session:
        raise HTTPException(429, "Too many open event streams; close some tabs.")
    listener = hub.listen(channels, str(active.user.id), session_key)
    # The stream lives as long as the request: keep only what it needs, not the user
    # and session documents (thousands of idle streams).
    del active
    forget_session(request)
    try:
        backlog = None if after is None else await hub.broker.history_after(after, channels)
        if unknown:
            after = (0, 0)  # replays nothing; the stream starts with "realtime-missed"
    except BaseException:
        hub.forget(listener)
        raise
    settings = hub.settings
    # sse-starlette loads with the first stream, not when the app starts.
    from vibetuner.realtime.response import RealtimeResponse

    return RealtimeResponse(
        stream(hub, listener, after, backlog),
        ping=0,  # the hub queues heartbeats (one timer for all streams, not a task each)
        send_timeout=settings.realtime_send_timeout,
        headers={"Cache-Control": "no-store"},
    )


async def stream(
    hub: Hub, listener: Listener, after: EventId | None, backlog: list[Any] | None
) -> AsyncIterator[ServerSentEvent | bytes]:
    """The events of one stream: what it missed, then each new one, until it closes."""
    subscription: Subscription = listener.subscription
    last = after
    try:
        if after is not None and backlog is None:
            from vibetuner.realtime.response import ServerSentEvent

            # Too late to replay: the page refreshes what it shows instead.
            yield ServerSentEvent(data="", event=MISSED_EVENT, id=hub.broker.last_id)
        for event in backlog or ():
            yield event.wire
            last = event.position
        while True:
            event = await subscription.next()
            if event is None:
                return
            if event is HEARTBEAT:  # the hub's, for a stream quiet for a while
                yield PING
                continue
            if last is not None and event.position <= last:
                continue  # already sent from the history
            yield event.wire  # encoded once for every subscriber
    finally:
        hub.forget(listener)

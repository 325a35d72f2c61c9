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

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from vibetuner.auth.current import current_session, forget_session
from vibetuner.auth.sessions import hash_session_token
from vibetuner.realtime.events import CHANNEL_PATTERN, EventId, check_channel, parse_event_id
from vibetuner.realtime.hub import Hub
from vibetuner.realtime.stream import EventStream, RealtimeResponse
from vibetuner.web.context import get_context
from vibetuner.web.csrf import origin_of
from vibetuner.web.identity import SESSION_TOKEN_KEY
from vibetuner.web.responses import documented_problem

#: Sent (without data) to a client that reconnected too late to get everything it missed.
MISSED_EVENT = "realtime-missed"

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
    client = request.client.host if request.client else ""
    listener = hub.listen(channels, str(active.user.id), session_key, client)
    # The stream lives as long as the request: keep only what it needs, not the user
    # and session documents (thousands of idle streams).
    del active
    forget_session(request)
    try:
        backlog = None if after is None else await hub.broker.history_after(after, channels)
    except BaseException:
        hub.forget(listener)
        raise
    first = b""
    if unknown or (after is not None and backlog is None):
        # Too late to replay (or a point this app never gave): the page refreshes what
        # it shows instead.
        first = missed_event(hub.broker.last_id)
        after = None
    elif backlog:
        first = b"".join(event.wire for event in backlog)
        after = backlog[-1].position
    return RealtimeResponse(EventStream(hub, listener, first, after))


def missed_event(last_id: str | None) -> bytes:
    """The ``realtime-missed`` event (no data), with the newest id when there is one."""
    head = f"id: {last_id}\r\n" if last_id is not None else ""
    return f"{head}event: {MISSED_EVENT}\r\ndata: \r\n\r\n".encode()

"""Whole-response caching: a route's page stored once and served to the next visitors.

``dependencies=[Depends(cache_page(ttl=60))]`` on a route makes its answers to signed-out
visitors cacheable. The first answer is stored after it is sent; later requests for the
same address, language, colour theme and kind of client (browser or API) get the stored
copy before any route code or dependency runs, with ``X-Cache: hit``. Pages for
signed-in users are never stored unless the route asks with ``signed_in=True``; then
each user gets their own copy, looked up after their session is checked.

Never stored: answers other than 200, answers that set a cookie or say ``private`` or
``no-store``, answers to htmx requests (they are parts of pages), requests that change
the session (a message shown once, a sign-in) or have messages waiting, requests with an
``Authorization`` header (an API token's) and an admin's view as a user. The visitor's
CSRF token and the CSP nonce inside a stored page are replaced by their own.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.cache.http import SCOPE_CONTROL, private_policy
from vibetuner.cache.store import MISSING, Cache
from vibetuner.cache.substitute import fresh_values, request_values, restore, stand_ins
from vibetuner.cache.viewer import (
    ANONYMOUS,
    has_authorization,
    has_flashes,
    has_session_token,
    is_view_as,
    viewer_of,
)
from vibetuner.errors import ConfigurationError
from vibetuner.web.context import STATE_KEY
from vibetuner.web.csrf import SESSION_KEY as CSRF_SESSION_KEY
from vibetuner.web.locale import SCOPE_LOCALE
from vibetuner.web.ui import THEME_COOKIE

logger = logging.getLogger("vibetuner.cache")

SCOPE_PAGE = "vibetuner.cache.page"
# Where the app context keeps the cache.
# Pages larger than this are sent but not stored.
MAX_PAGE_BYTES = 2 * 1024 * 1024
# How many addresses a process remembers as cacheable (least recently used go first).
MAX_KNOWN_PATHS = 10_000
# Headers of the stored answer that belong to one response only.
UNSTORED_HEADERS = frozenset({b"content-length", b"date", b"x-request-id", b"x-cache"})


@dataclass(frozen=True)
class PagePolicy:
    """What ``cache_page`` asked for one route."""

    ttl: float | None
    tags: tuple[str, ...]
    signed_in: bool


def cache_page(
    ttl: float | None = None, *, tags: Sequence[str] = (), signed_in: bool = False
) -> Callable[[Request], Awaitable[None]]:
    """A dependency that caches a route's whole answer (see the module's description).

    ``ttl`` in seconds (None: ``CACHE_DEFAULT_TTL``); ``tags`` are format strings filled
    with the path parameters (``"note:{note_id}"``), invalidated with
    ``invalidate_tags``; ``signed_in=True`` also caches pages of signed-in users, one
    copy per user. Needs ``CacheFeature``.
    """
    policy = PagePolicy(ttl, tuple(tags), signed_in)

    async def mark(request: Request) -> None:
        cache = cache_of(request.scope)
        if cache is None:
            return
        try:
            filled = [tag.format(**request.path_params) for tag in policy.tags]
        except (KeyError, IndexError, AttributeError):
            raise ConfigurationError(
                f"cache_page tags {list(policy.tags)} name a path parameter "
                f"{request.url.path} does not have"
            ) from None
        # The tags' counters as they are before the page is made: an invalidation while
        # it renders leaves the stored copy already stale.
        try:
            versions = await cache.tag_versions(filled) if filled else ()
        except Exception:  # the cache is down: the page is sent, not stored
            logger.warning("the page cache could not be read", exc_info=True)
            return
        request.scope[SCOPE_PAGE] = Marked(policy, filled, versions)

    return mark


@dataclass(frozen=True)
class Marked:
    """A request whose route uses ``cache_page``: its policy, tags and their counters."""

    policy: PagePolicy
    tags: list[str]
    versions: tuple[int, ...]


def cache_of(scope: Scope) -> Cache | None:
    """The cache of the app serving ``scope`` (None before startup or without the feature)."""
    app = scope.get("app")
    state = getattr(app, "state", None)
    context = getattr(state, STATE_KEY, None) if state is not None else None
    return context.find(Cache) if context is not None else None


def _session_state(scope: Scope) -> str:
    """The session as it matters to caching: everything but the CSRF secret."""
    session = scope.get("session") or {}
    return json.dumps(
        {k: v for k, v in session.items() if k != CSRF_SESSION_KEY}, sort_keys=True, default=str
    )


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return b""


def page_key(request: Request, viewer: str) -> str:
    """The entry of this request's page: address, viewer, language, theme, kind of client.

    Everything a page may depend on without the route choosing it is part of the key, so
    a request with an unusual header cannot store a page that others then get.
    """
    accept = request.headers.get("accept", "")
    html = "text/html" in accept and "application/json" not in accept
    parts = [
        request.url.scheme,
        request.headers.get("host", ""),
        request.url.path,
        request.url.query,
        viewer,
        str(request.scope.get(SCOPE_LOCALE, "")),
        request.cookies.get(THEME_COOKIE, ""),
        "html" if html else "other",
    ]
    digest = hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()
    return f"page:{digest}"


class PageCacheMiddleware:
    """Serve and store the pages of routes that use ``cache_page``; apply ``cache_control``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Exact paths whose route uses cache_page, with the policy and its filled tags.
        self.known: OrderedDict[str, tuple[PagePolicy, list[str]]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cache = cache_of(scope)
        readable = (
            cache is not None
            and scope["method"] == "GET"
            and not _header(scope, b"hx-request")
            and not has_flashes(scope)
            # Credentials other than the session, and an admin's view as a user: the
            # page is theirs alone (see vibetuner.cache.viewer).
            and not has_authorization(scope)
            and not is_view_as(scope)
        )
        if readable and cache is not None and scope["path"] in self.known:
            policy, tags = self.known[scope["path"]]
            if await self._serve(cache, scope, send, policy, tags):
                return
        before = _session_state(scope) if readable else ""
        capture: _Capture | None = None

        async def send_wrapper(message: Message) -> None:
            nonlocal capture
            if message["type"] == "http.response.start":
                self._cache_control(scope, message)
                marked = scope.get(SCOPE_PAGE)
                if readable and isinstance(marked, Marked):
                    capture = self._capture(scope, message, marked, before)
            elif message["type"] == "http.response.body" and capture is not None:
                capture.add(message.get("body", b""))
            await send(message)
            if (
                message["type"] == "http.response.body"
                and not message.get("more_body", False)
                and capture is not None
                and cache is not None
            ):
                done, capture = capture, None
                await done.store(cache)

        await self.app(scope, receive, send_wrapper)

    @staticmethod
    def _cache_control(scope: Scope, message: Message) -> None:
        policy = scope.get(SCOPE_CONTROL)
        if policy is None:
            return
        headers = message.setdefault("headers", [])
        if any(name.lower() == b"cache-control" for name, _ in headers):
            return  # the response chose its own
        if has_session_token(scope) or has_authorization(scope):
            # One visitor's answer: a shared cache must not keep it for the next one.
            policy = private_policy(policy)
        headers.append((b"cache-control", policy.encode("latin-1")))

    async def _viewer(self, request: Request, policy: PagePolicy) -> str | None:
        if not has_session_token(request.scope):
            return ANONYMOUS
        if not policy.signed_in:
            return None
        from vibetuner.auth.session_auth import current_user

        user = await current_user(request)  # checks the session on the server first
        return viewer_of(request) if user is not None else ANONYMOUS

    async def _serve(
        self, cache: Cache, scope: Scope, send: Send, policy: PagePolicy, tags: list[str]
    ) -> bool:
        request = Request(scope)
        viewer = await self._viewer(request, policy)
        if viewer is None:
            return False
        try:
            entry = await cache.get(page_key(request, viewer), tags=tags)
        except Exception:  # the cache is down: answer without it
            logger.warning("the page cache could not be read", exc_info=True)
            return False
        if entry is MISSING:
            return False
        body = restore(entry["body"], entry["stand_ins"], fresh_values(request))
        headers = [(bytes(k), bytes(v)) for k, v in entry["headers"]]
        headers += [(b"content-length", str(len(body)).encode()), (b"x-cache", b"hit")]
        await send({"type": "http.response.start", "status": entry["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    def _capture(
        self, scope: Scope, message: Message, marked: Marked, before: str
    ) -> _Capture | None:
        policy = marked.policy
        path = scope["path"]
        self.known[path] = (policy, marked.tags)
        self.known.move_to_end(path)
        while len(self.known) > MAX_KNOWN_PATHS:
            self.known.popitem(last=False)
        headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
        names = {name for name, _ in headers}
        control = b", ".join(v for k, v in headers if k == b"cache-control").lower()
        request = Request(scope)
        if not has_session_token(scope):
            viewer: str | None = ANONYMOUS
        else:
            viewer = viewer_of(request) if policy.signed_in else None
        if (
            message["status"] != 200
            or b"set-cookie" in names
            or b"no-store" in control
            or (b"private" in control and not policy.signed_in)
            or viewer is None
            or _session_state(scope) != before
        ):
            return None
        kept = [(k, v) for k, v in headers if k not in UNSTORED_HEADERS]
        return _Capture(page_key(request, viewer), message["status"], kept, request, marked)


class _Capture:
    """The answer being sent, kept to be stored once it is complete."""

    def __init__(
        self,
        key: str,
        status: int,
        headers: list[tuple[bytes, bytes]],
        request: Request,
        marked: Marked,
    ) -> None:
        self.key = key
        self.status = status
        self.headers = headers
        self.request = request
        self.marked = marked
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= MAX_PAGE_BYTES:
            self.chunks.append(chunk)

    async def store(self, cache: Cache) -> None:
        if self.size > MAX_PAGE_BYTES:
            return
        body = b"".join(self.chunks)
        entry = {
            "status": self.status,
            "headers": self.headers,
            "body": body,
            "stand_ins": stand_ins(body, request_values(self.request)),
        }
        try:
            marked = self.marked
            await cache.set(
                self.key,
                entry,
                ttl=marked.policy.ttl,
                tags=marked.tags,
                versions=marked.versions,
            )
        except Exception:  # the page was sent; a cache that is down only costs the next one
            logger.warning("the page cache could not be written", exc_info=True)

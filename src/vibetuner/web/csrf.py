"""Cross-site request forgery protection for every unsafe request, as one ASGI middleware.

What is checked, for ``POST``, ``PUT``, ``PATCH`` and ``DELETE``:

* **Where the request comes from.** ``Origin`` (else ``Referer``) must be this site
  (``BASE_URL``, or the scheme and ``Host`` of the request) or one of
  ``CSRF_TRUSTED_ORIGINS``; ``Origin: null`` is refused. Requests with neither header
  pass this check (API clients send none).
* **A per-session token**, for requests that carry the session cookie: the session
  keeps a random secret; pages carry it masked (a new mask per response, so the page
  bytes never repeat it: no BREACH-style guessing through compression) in
  ``<meta name="csrf-token">`` and in forms as the ``csrf_token`` field; scripts and
  HTMX send it as the ``X-CSRF-Token`` header.

Requests without the session cookie are cookie-less API clients: a JSON body, say,
passes untouched. Bodies a browser can send cross-site without asking (form posts,
``text/plain``) still get the origin check, which keeps another site from signing a
visitor in to an account of its choosing (login CSRF).

The form field is read without taking the body from the route: the middleware reads
as much as it needs, then hands the same bytes on. A url-encoded form is read whole
(up to ``max_form_bytes``); a multipart form only up to the ``csrf_token`` part, which
therefore comes first in the form (``csrf_field()`` goes right after ``<form>``), so
uploads still stream. Scripts uploading files send the header instead.

Neither ``starlette-csrf`` nor ``asgi-csrf`` fits: both keep the token in a second
cookie (double submit) instead of the session, neither checks ``Origin``/``Referer``,
``starlette-csrf`` reads no form field and ``asgi-csrf`` buffers whole multipart bodies.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import json
import logging
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from markupsafe import Markup
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vibetuner.web.cookies import scope_cookies
from vibetuner.web.multipart import PartHeaders
from vibetuner.web.request_body import SCOPE_TIMED_OUT

logger = logging.getLogger("vibetuner.csrf")

SESSION_KEY = "csrf"
FIELD_NAME = "csrf_token"
HEADER_NAME = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Content types a page on another site can send without a CORS preflight.
SIMPLE_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""}
)
MAX_FORM_BYTES = 1024 * 1024
SECRET_BYTES = 32
# The masked token of this request, so a page's meta tag and forms carry the same one.
SCOPE_TOKEN = "vibetuner.csrf_token"
# The hidden form field holding that token, built once for the page's forms.
SCOPE_FIELD = "vibetuner.csrf_field"

_HEADER_KEY = HEADER_NAME.lower().encode("latin-1")


# --- tokens -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _secret(session: dict[str, Any], *, create: bool) -> bytes | None:
    raw = session.get(SESSION_KEY)
    secret = _unb64(raw) if isinstance(raw, str) else None
    if secret is not None and len(secret) == SECRET_BYTES:
        return secret
    if not create:
        return None
    secret = secrets.token_bytes(SECRET_BYTES)
    session[SESSION_KEY] = _b64(secret)
    return secret


def mask(secret: bytes) -> str:
    """``secret`` under a fresh random mask: ``mask || secret XOR mask``, base64url."""
    pad = secrets.token_bytes(len(secret))
    return _b64(pad + bytes(a ^ b for a, b in zip(secret, pad, strict=True)))


def token_matches(token: str, secret: bytes) -> bool:
    """True when ``token`` is ``secret`` under some mask; compared in constant time."""
    raw = _unb64(token.strip()) if token.isascii() else None
    if raw is None or len(raw) != 2 * len(secret):
        return False
    pad, masked = raw[: len(secret)], raw[len(secret) :]
    return hmac.compare_digest(bytes(a ^ b for a, b in zip(masked, pad, strict=True)), secret)


def csrf_token(request: Any) -> str:
    """The CSRF token for pages of this request (creating the session's secret if needed).

    ``request`` is a Starlette ``Request`` (anything with a ``scope``). The same masked
    token is returned for the whole request.
    """
    scope = request.scope
    if "session" not in scope:
        raise RuntimeError("CSRF tokens live in the session: add SessionMiddleware to the app")
    session = scope["session"]
    cached = scope.get(SCOPE_TOKEN)
    # Reuse the token unless the session was cleared since (sign-in, sign-out).
    if cached is not None and cached[0] == session.get(SESSION_KEY):
        reused: str = cached[1]
        return reused
    token = mask(_secret(session, create=True))  # type: ignore[arg-type]
    scope[SCOPE_TOKEN] = (session[SESSION_KEY], token)
    return token


def csrf_field(request: Any) -> Markup:
    """A hidden ``csrf_token`` input for a form; put it first in the form.

    Built once per token: every form of a page carries the same one.
    """
    token = csrf_token(request)
    cached = request.scope.get(SCOPE_FIELD)
    if cached is not None and cached[0] == token:
        field: Markup = cached[1]
        return field
    field = Markup('<input type="hidden" name="%s" value="%s">') % (FIELD_NAME, token)
    request.scope[SCOPE_FIELD] = (token, field)
    return field


def csrf_meta(request: Any) -> Markup:
    """``<meta name="csrf-token" content="...">`` for the page's ``<head>``."""
    return Markup('<meta name="csrf-token" content="{}">').format(csrf_token(request))


# --- origins ----------------------------------------------------------------------------


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url`` in lower case; None when it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. "http://[::1" (an unclosed IPv6 host)
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _headers(scope: Scope) -> dict[bytes, bytes]:
    # The first of each name is enough for the headers read here.
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        found.setdefault(name, value)
    return found


def _carries_session(scope: Scope, name: str) -> bool:
    """True when the request brings a session: the cookie ``name`` read as the session
    middleware reads it (any ``Cookie`` header, malformed pairs skipped), or a session
    that middleware already loaded."""
    if scope.get("session"):
        return True
    if not any(key == b"cookie" for key, _ in scope["headers"]):
        return False
    return name in scope_cookies(scope)


# --- the middleware ---------------------------------------------------------------------


class CSRFRefused(Exception):
    """A request refused by the CSRF checks; ``message`` says why, for people."""

    def __init__(self, message: str, status_code: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class CSRFMiddleware:
    """Refuse cross-site unsafe requests (403) and unsafe requests without the token.

    Add it inside ``SessionMiddleware`` (it reads ``scope["session"]``). ``base_url`` and
    ``trusted_origins`` name the sites allowed to send unsafe requests, besides the
    request's own scheme and ``Host``; ``session_cookie`` is the session cookie's name.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        base_url: str,
        session_cookie: str,
        trusted_origins: Iterable[str] = (),
        max_form_bytes: int = MAX_FORM_BYTES,
    ) -> None:
        self.app = app
        self.session_cookie = session_cookie
        self.max_form_bytes = max_form_bytes
        own = origin_of(base_url)
        self.allowed = frozenset(
            [*([own] if own else []), *(o for o in map(origin_of, trusted_origins) if o)]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        with_cookie = _carries_session(scope, self.session_cookie)
        try:
            # A cookie-less API client (JSON ...) has nothing of a visitor's to abuse; what
            # a page on another site can send on its own (forms) is checked all the same.
            if with_cookie or _media_type(headers) in SIMPLE_TYPES:
                self._check_origin(scope, headers)
            if with_cookie:
                receive = await self._check_token(scope, headers, receive)
        except CSRFRefused as refused:
            logger.info(
                "refused %s %s: %s", scope["method"], scope.get("path", ""), refused.message
            )
            await _refuse(scope, send, headers, refused)
            return
        except _Disconnected:
            if not scope.get(SCOPE_TIMED_OUT):  # a stalled body was already logged
                logger.info("client disconnected during %s %s", scope["method"], scope.get("path"))
            return
        await self.app(scope, receive, send)

    def _check_origin(self, scope: Scope, headers: dict[bytes, bytes]) -> None:
        raw = headers.get(b"origin")
        label = "Origin"
        if raw is None:
            raw = headers.get(b"referer")
            label = "Referer"
            if raw is None:
                return
        text = raw.decode("latin-1")
        origin = origin_of(text)
        if origin is not None and (origin in self.allowed or origin == _own_origin(scope, headers)):
            return
        shown = text if len(text) <= 100 else text[:100] + "..."
        raise CSRFRefused(
            f"This request came from another site ({label}: {shown}) and was refused. "
            "Go back to the site's own page and try again."
        )

    async def _check_token(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive
    ) -> Receive:
        session = scope.get("session")
        if session is None:
            raise RuntimeError("CSRFMiddleware must run inside SessionMiddleware")
        secret = _secret(session, create=False)
        sent = headers.get(_HEADER_KEY)
        replay = receive
        token: str | None
        if sent is not None:
            token = sent.decode("latin-1")
        else:
            token, replay = await self._token_from_body(headers, receive)
        if token is None:
            raise CSRFRefused(
                "The CSRF token is missing. Reload the page and try again (scripts send "
                f"the page's csrf-token meta tag as the {HEADER_NAME} header; forms send "
                f"it as the {FIELD_NAME} field, first in the form)."
            )
        if secret is None or not token_matches(token, secret):
            raise CSRFRefused(
                "The CSRF token is invalid or has expired (the session may have ended). "
                "Reload the page and try again."
            )
        return replay

    async def _token_from_body(
        self, headers: dict[bytes, bytes], receive: Receive
    ) -> tuple[str | None, Receive]:
        kind = _media_type(headers)
        if kind == "application/x-www-form-urlencoded":
            reader = _BodyReader(receive)
            while not reader.done:
                await reader.read()
                if reader.size > self.max_form_bytes:
                    raise CSRFRefused(
                        f"The form is larger than {self.max_form_bytes // 1024} KiB.", 413
                    )
            fields = parse_qsl(reader.body.decode("latin-1"), keep_blank_values=True)
            token = next((value for key, value in fields if key == FIELD_NAME), None)
            return token, reader.replay
        if kind == "multipart/form-data":
            return await self._token_from_multipart(headers, receive)
        return None, receive

    async def _token_from_multipart(
        self, headers: dict[bytes, bytes], receive: Receive
    ) -> tuple[str | None, Receive]:
        _, options = parse_options_header(headers.get(b"content-type", b""))
        boundary = options.get(b"boundary")
        reader = _BodyReader(receive)
        if not boundary:
            return None, reader.replay
        found = _FieldFinder(boundary, FIELD_NAME)
        while found.value is None and not found.failed and not reader.done:
            chunk = await reader.read()
            if reader.size > self.max_form_bytes:
                # Only the start of an upload is kept; the token field comes first.
                break
            found.feed(chunk)
        return found.value, reader.replay


class _Disconnected(Exception):
    """The client went away while the body was being read."""


class _BodyReader:
    """Reads request body messages and keeps them, to hand them to the app afterwards."""

    def __init__(self, receive: Receive) -> None:
        self.upstream = receive
        self._chunks: list[bytes] = []
        self.size = 0
        self.done = False

    async def read(self) -> bytes:
        message = await self.upstream()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk: bytes = message.get("body", b"")
        self._chunks.append(chunk)
        self.size += len(chunk)
        self.done = not message.get("more_body", False)
        return chunk

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)

    async def replay(self) -> Message:
        """The kept bytes as one message, then the rest of the body as it comes."""
        if self._chunks is not None:
            body, self._chunks = self.body, None  # type: ignore[assignment]
            return {"type": "http.request", "body": body, "more_body": not self.done}
        return await self.upstream()


class _FieldFinder(PartHeaders):
    """Feeds a multipart body to python-multipart until the part ``name`` is complete."""

    def __init__(self, boundary: bytes, name: str) -> None:
        super().__init__()
        self._name = name.encode("ascii")
        self._field = bytearray()
        self._value = bytearray()
        self._in_field = False
        self.value: str | None = None
        self.failed = False
        self._parser = MultipartParser(
            boundary,
            {
                **self.header_callbacks(),
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        try:
            if chunk:
                self._parser.write(chunk)
        except MultipartParseError:
            self.failed = True

    def _on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        self._in_field = options.get(b"name") == self._name and b"filename" not in options

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_field and len(self._value) < 512:
            self._value += data[start:end]

    def _on_part_end(self) -> None:
        if self._in_field and self.value is None:
            self.value = self._value.decode("latin-1")
        self._in_field = False


def _media_type(headers: dict[bytes, bytes]) -> str:
    raw = headers.get(b"content-type", b"")
    return raw.split(b";", 1)[0].strip().decode("latin-1").lower()


def _own_origin(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    host = headers.get(b"host")
    if not host:
        return None
    return f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}".lower()


async def _refuse(
    scope: Scope, send: Send, headers: dict[bytes, bytes], refused: CSRFRefused
) -> None:
    accept = headers.get(b"accept", b"").decode("latin-1")
    if "text/html" in accept and "application/json" not in accept:
        title = "Request refused" if refused.status_code == 403 else "Too large"
        body = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{title}</title></head><body><main><h1>{title}</h1>"
            f'<p>{html.escape(refused.message)}</p><p><a href="/">Home</a></p>'
            "</main></body></html>"
        ).encode()
        content_type = b"text/html; charset=utf-8"
    else:
        body = json.dumps({"detail": refused.message}).encode()
        content_type = b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": refused.status_code,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                # The rest of a refused body is never read.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""HTTP caching: ``ETag`` and ``Last-Modified`` with conditional GET (304), and ``Cache-Control``.

::

    @router.get("/notes/{note_id}")
    async def show_note(request: Request, note_id: str, user: RequireUser) -> Response:
        note = await owned_note(note_id, user)
        tag = make_etag(str(note.id), note.updated_at.isoformat())
        if (unchanged := not_modified(request, etag=tag, last_modified=note.updated_at)):
            return unchanged
        return set_validators(render(...), etag=tag, last_modified=note.updated_at)

A 304 has no body: the browser shows the copy it has. Browsers keep no copy of a
``no-store`` answer (the default for signed-in users), so a signed-in page that wants
304s says ``cache_control("private, no-cache")``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

SCOPE_CONTROL = "vibetuner.cache.control"
# Headers a 304 repeats from the full answer (RFC 9110, 15.4.5).
KEPT_ON_304 = ("etag", "last-modified", "cache-control", "content-location", "expires", "vary")


def make_etag(*parts: str | bytes, weak: bool = False) -> str:
    """An entity tag from what the answer depends on (ids, versions, timestamps)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)  # "ab","c" differs from "a","bc"
    tag = f'"{digest.hexdigest()[:32]}"'
    return f"W/{tag}" if weak else tag


def http_date(moment: datetime) -> str:
    """``moment`` as an HTTP date (``Tue, 01 Dec 2026 10:00:00 GMT``); naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(header: str, etag: str) -> bool:
    """True when ``If-None-Match: header`` names ``etag`` (weak comparison) or is ``*``."""
    if header.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(candidate) == wanted for candidate in header.split(","))


def is_fresh(
    request: Request, *, etag: str | None = None, last_modified: datetime | None = None
) -> bool:
    """True when the client's copy is current (RFC 9110, 13.2.2): ``If-None-Match`` is
    checked when sent, else ``If-Modified-Since``. Only for GET and HEAD."""
    if request.method not in ("GET", "HEAD"):
        return False
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return etag is not None and etag_matches(if_none_match, etag)
    since = request.headers.get("if-modified-since")
    if since is None or last_modified is None:
        return False
    try:
        client_date = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False  # a malformed date is ignored, as the RFC says
    if client_date.tzinfo is None:
        client_date = client_date.replace(tzinfo=UTC)
    changed = last_modified if last_modified.tzinfo else last_modified.replace(tzinfo=UTC)
    # HTTP dates have whole seconds.
    return changed.replace(microsecond=0) <= client_date


def set_validators(
    response: Response, *, etag: str | None = None, last_modified: datetime | None = None
) -> Response:
    """``response`` with its ``ETag`` and ``Last-Modified`` headers."""
    if etag is not None:
        response.headers["etag"] = etag
    if last_modified is not None:
        response.headers["last-modified"] = http_date(last_modified)
    return response


def not_modified(
    request: Request, *, etag: str | None = None, last_modified: datetime | None = None
) -> Response | None:
    """A 304 answer when the client's copy is current, else None (send the page)."""
    if not is_fresh(request, etag=etag, last_modified=last_modified):
        return None
    return set_validators(Response(status_code=304), etag=etag, last_modified=last_modified)


def cache_control(policy: str) -> Callable[[Request], None]:
    """A dependency giving a route's answers ``Cache-Control: policy``.

    ``@router.get("/pricing", dependencies=[Depends(cache_control("public, max-age=300"))])``.
    A response that sets the header itself keeps its own. Answers to a signed-in user
    are never ``public`` (it becomes ``private``), so shared caches never keep them;
    without a policy they stay ``no-store``. Needs ``CacheFeature``.
    """
    value = ", ".join(part.strip() for part in policy.split(",") if part.strip())
    if not value or any(ch in value for ch in "\r\n"):
        raise ValueError(f"{policy!r} is not a Cache-Control value")

    def apply(request: Request) -> None:
        request.scope[SCOPE_CONTROL] = value

    return apply


def private_policy(policy: str) -> str:
    """``policy`` made safe for a signed-in user's answer: ``public`` becomes ``private``."""
    parts = [part.strip() for part in policy.split(",") if part.strip()]
    kept = [part for part in parts if part.lower() not in ("public", "private")]
    return ", ".join(["private", *kept])

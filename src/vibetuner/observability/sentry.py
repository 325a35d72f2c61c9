"""Errors to Sentry (``SENTRY_DSN``): unhandled errors of requests and jobs, and error
log lines, with the request id, the user's id and the release.

What leaves the process is scrubbed first (``before_send``): cookies, the
``Authorization`` and CSRF headers and request bodies are dropped; every string goes
through the logs' scrubber (the request's secret path and query values, such as the
sign-in link's token, and secret-looking query parameters); values under
secret-looking keys are replaced. Local variables of stack frames are not sent (they
hold tokens under innocent names), nor IP addresses or emails (``send_default_pii``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sentry_sdk
from sentry_sdk.integrations.logging import ignore_logger

from vibetuner.logs import REDACTED, SECRET_NAME, scrub
from vibetuner.request_id import RequestInfo, current

if TYPE_CHECKING:
    from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

    from vibetuner.config import Settings

DROPPED_HEADERS = frozenset(
    {"cookie", "set-cookie", "authorization", "proxy-authorization", "x-csrf-token"}
)
_installed = False


def install(settings: Settings) -> None:
    """Start the Sentry client for this process (once)."""
    global _installed
    if _installed or settings.sentry_dsn is None:
        return
    sample_rate = settings.sentry_traces_sample_rate
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        release=settings.sentry_release,
        environment=settings.environment,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=sample_rate or None,
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
    )
    # The 500 page's one-line log entry repeats the error the integration reports.
    ignore_logger("vibetuner.errors")
    _installed = True


def flush() -> None:
    """Send what is queued (at shutdown)."""
    if _installed:
        sentry_sdk.flush(timeout=5)


def before_send(event: Event, hint: Hint) -> Event:
    """Tag the event with the request (or job) and user, then scrub it."""
    info = current()
    if info is not None:
        tags = event.setdefault("tags", {})
        tags["request_id"] = info.id
        if info.job:
            tags["job"] = info.job
        if info.user_id:
            event["user"] = {"id": info.user_id}
        else:
            event.pop("user", None)
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        request.pop("data", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            for name in list(headers):
                if name.lower() in DROPPED_HEADERS:
                    del headers[name]
    return _scrubbed(event, info)  # type: ignore[no-any-return]


def before_breadcrumb(crumb: Breadcrumb, hint: BreadcrumbHint) -> Breadcrumb:
    """Breadcrumbs (log lines, HTTP calls) are scrubbed as events are."""
    return _scrubbed(crumb, current())  # type: ignore[no-any-return]


def _scrubbed(value: Any, info: RequestInfo | None) -> Any:
    if isinstance(value, str):
        return scrub(value, info)
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and SECRET_NAME.search(key) and isinstance(item, str)
            else _scrubbed(item, info)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrubbed(item, info) for item in value]
    return value

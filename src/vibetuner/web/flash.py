"""Flash messages: one-time notices shown on the next page the user sees.

``flash(request, "Note deleted.", action=FlashAction("Undo", url))`` keeps the message
in the signed session cookie until a page shows it: the layout's ``#flashes`` region on
a full page, or an out-of-band swap into that region in an htmx answer, so a message
set before a redirect or during a partial update is never lost.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from starlette.requests import Request

SESSION_KEY = "_flashes"
# A bound on what one cookie carries, whatever a route does in a loop.
MAX_PENDING = 5
Category = Literal["success", "info", "error"]


@dataclass(frozen=True)
class FlashAction:
    """A button in the message that posts to ``url`` (an "Undo", say).

    With htmx the answer is swapped into ``target`` (a CSS selector) with ``swap``.
    """

    label: str
    url: str
    target: str | None = None
    swap: str | None = None


@dataclass(frozen=True)
class FlashMessage:
    """One message: its text, its kind and maybe one action."""

    text: str
    category: Category = "success"
    action: FlashAction | None = None


def flash(
    request: Request,
    text: str,
    category: Category = "success",
    *,
    action: FlashAction | None = None,
) -> None:
    """Show ``text`` on the next page (or htmx answer) this browser gets."""
    if "session" not in request.scope:
        raise RuntimeError("flash() needs the session middleware that create_app adds")
    pending: list[dict[str, Any]] = list(request.session.get(SESSION_KEY, []))
    entry: dict[str, Any] = {"text": text, "category": category}
    if action is not None:
        entry["action"] = asdict(action)
    pending.append(entry)
    request.session[SESSION_KEY] = pending[-MAX_PENDING:]


def pop_flashes(request: Request) -> list[FlashMessage]:
    """The pending messages, removed from the session (each is shown once)."""
    if "session" not in request.scope or SESSION_KEY not in request.session:
        return []
    raw = request.session.pop(SESSION_KEY)
    messages: list[FlashMessage] = []
    for entry in raw if isinstance(raw, list) else []:
        try:
            action = entry.get("action")
            messages.append(
                FlashMessage(
                    text=str(entry["text"]),
                    category=entry.get("category", "info"),
                    action=FlashAction(**action) if isinstance(action, dict) else None,
                )
            )
        except (KeyError, TypeError, AttributeError):
            continue  # a message from an older shape of this cookie
    return messages


def has_flashes(request: Request) -> bool:
    """True when messages are waiting to be shown."""
    return "session" in request.scope and bool(request.session.get(SESSION_KEY))

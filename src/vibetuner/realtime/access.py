"""Who may subscribe to which channel: one rule per channel pattern, deny by default.

A pattern is a channel name with ``{placeholders}``, each standing for one part
without a colon: ``note:{note_id}`` matches ``note:65f0c3...``. A rule gets the signed-in
user and the placeholders' values and says yes or no::

    realtime = RealtimeFeature()

    @realtime.channel("note:{note_id}")
    async def may_read_note(user: UserModel, note_id: str) -> bool:
        note = await Note.get(note_id)
        return note is not None and note.owner.ref.id == user.id

Built in: ``user:{user_id}`` (only that user), ``app`` and ``app:{topic}`` (every
signed-in user). A channel no pattern matches is refused.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from vibetuner.realtime.events import RESERVED_PREFIX, check_channel

if TYPE_CHECKING:
    from vibetuner.models.user import UserModel

Rule = Callable[..., "bool | Awaitable[bool]"]
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of a channel pattern (``ValueError`` for a bad one)."""
    literal_parts = PLACEHOLDER.split(pattern)
    # split() alternates literal text and placeholder names.
    regex = ""
    for index, part in enumerate(literal_parts):
        if index % 2:
            regex += f"(?P<{part}>[A-Za-z0-9_.-]+)"
        else:
            if part:
                check_channel(part)
            regex += re.escape(part)
    if pattern.startswith(RESERVED_PREFIX):
        raise ValueError(f"channels starting with {RESERVED_PREFIX!r} are vibetuner's own")
    return re.compile(f"^{regex}$")


async def same_user(user: UserModel, user_id: str) -> bool:
    """``user:{user_id}``: only the user themselves."""
    return str(user.id) == user_id


async def signed_in(user: UserModel, **_: str) -> bool:
    """``app`` and ``app:{topic}``: every signed-in user."""
    return True


class ChannelRules:
    """The rules of an app's channels, looked up by the channel's name."""

    def __init__(self) -> None:
        self._rules: list[tuple[str, re.Pattern[str], Rule]] = []
        self.add("user:{user_id}", same_user)
        self.add("app", signed_in)
        self.add("app:{topic}", signed_in)

    def add(self, pattern: str, rule: Rule) -> None:
        """Let ``rule(user, **placeholders)`` decide who reads channels matching ``pattern``.

        A later rule for the same pattern replaces the earlier one.
        """
        compiled = compile_pattern(pattern)
        self._rules = [entry for entry in self._rules if entry[0] != pattern]
        self._rules.append((pattern, compiled, rule))

    def find(self, channel: str) -> tuple[Rule, dict[str, str]] | None:
        """The rule of ``channel`` and its placeholders' values, or None (no rule)."""
        if channel.startswith(RESERVED_PREFIX):
            return None
        # The most recently added pattern first: an app's own rule wins over a built-in.
        for _, compiled, rule in reversed(self._rules):
            found = compiled.match(channel)
            if found is not None:
                return rule, found.groupdict()
        return None

    async def allows(self, user: UserModel, channel: str) -> bool:
        """True when ``user`` may subscribe to ``channel``."""
        found = self.find(channel)
        if found is None:
            return False
        rule, values = found
        answer: Any = rule(user, **values)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer is True

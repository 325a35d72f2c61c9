"""The commands an app sends to MongoDB, counted with PyMongo's command monitoring.

What a request costs in production is mostly its round trips to the database, so tests
count them: ``CommandLog.record()`` collects the commands sent to one database while the
block runs. It listens through ``pymongo.monitoring`` (PyMongo's public API), so it sees
what the real client sends; the in-memory database sends nothing over the wire and is
not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pymongo import monitoring


@dataclass(frozen=True)
class Command:
    """One command sent: its name (``find``, ``aggregate``, ...) and its collection."""

    name: str
    collection: str

    def __str__(self) -> str:
        return f"{self.name} {self.collection}".strip()


class CommandLog(monitoring.CommandListener):
    """Collects the commands sent to ``database`` while ``record()`` is open."""

    def __init__(self) -> None:
        self.database: str | None = None
        self._open: list[list[Command]] = []

    @contextmanager
    def record(self, database: str) -> Iterator[list[Command]]:
        """Collect the commands sent to ``database`` inside the block into the list yielded."""
        sent: list[Command] = []
        self._open.append(sent)
        self.database = database
        try:
            yield sent
        finally:
            self._open.remove(sent)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self._open or event.database_name != self.database:
            return
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else ""
        for sent in self._open:
            sent.append(Command(event.command_name, collection))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


_shared: CommandLog | None = None


def command_log() -> CommandLog:
    """The process's one ``CommandLog``, registered with PyMongo on first use.

    PyMongo gives a listener registered this way to every client made afterwards, so
    call it before the app connects.
    """
    global _shared
    if _shared is None:
        _shared = CommandLog()
        monitoring.register(_shared)
    return _shared

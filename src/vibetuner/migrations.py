"""vibetuner's own data migrations, run by ``vibetuner db migrate`` before the app's.

Each step is idempotent and recorded by name in the ``vibetuner_migrations``
collection, so it runs once per database even when interrupted and started again.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

LOG_COLLECTION = "vibetuner_migrations"
# One document here, ``_id`` "migrate", while a `vibetuner db migrate` runs.
LOCK_COLLECTION = "vibetuner_locks"
LOCK_ID = "migrate"

Step = Callable[[Any], Awaitable[None]]


async def oauth_links_stored_once(database: Any) -> None:
    """Drop ``users.oauth_accounts``: the relation now lives only in each account's ``user``.

    Every account already carries its ``user`` link (it was stored both ways), so the
    array on the user holds nothing that is not kept elsewhere.
    """
    await database["users"].update_many(
        {"oauth_accounts": {"$exists": True}}, {"$unset": {"oauth_accounts": ""}}
    )


STEPS: tuple[tuple[str, Step], ...] = (("0001_oauth_links_stored_once", oauth_links_stored_once),)


async def run_framework_migrations(database: Any) -> list[str]:
    """Apply the steps this database has not had yet; return their names."""
    log = database[LOG_COLLECTION]
    applied: list[str] = []
    for name, step in STEPS:
        if await log.find_one({"_id": name}) is not None:
            continue
        await step(database)
        await log.insert_one({"_id": name, "applied_at": datetime.now(UTC)})
        applied.append(name)
    return applied


# Beanie's record of the project's migrations (``MigrationLog``).
BEANIE_LOG_COLLECTION = "migrations_log"


def migration_files(folder: Path) -> list[str]:
    """The project's migration modules in ``folder``, in the order they run (as Beanie's)."""
    return sorted(p.name for p in folder.glob("[!_]*.py"))


async def pending_migrations(database: Any, project_migrations: Sequence[str] = ()) -> list[str]:
    """vibetuner's steps not yet applied, then the project's migrations (file names, in
    order: :func:`migration_files`) after the one Beanie records as current."""
    log = database[LOG_COLLECTION]
    done = {entry["_id"] async for entry in log.find({}, {"_id": 1})}
    pending = [name for name, _ in STEPS if name not in done]
    names = list(project_migrations)
    if not names:
        return pending
    current = await database[BEANIE_LOG_COLLECTION].find_one({"is_current": True})
    if current is not None and current.get("name") in names:
        return pending + names[names.index(current["name"]) + 1 :]
    return pending + names


def project_migrations_folder(start: Path | None = None) -> Path | None:
    """The migrations folder of the project around ``start`` (default: the working
    directory): ``[tool.vibetuner] migrations`` of the nearest ``pyproject.toml`` with a
    ``[tool.vibetuner]`` table, else None."""
    import tomllib

    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return None
        table = data.get("tool", {}).get("vibetuner")
        if not isinstance(table, dict):
            return None
        name = table.get("migrations", "migrations")
        return directory / name if isinstance(name, str) else None
    return None


class MigrationLocked(Exception):
    """Another ``vibetuner db migrate`` holds the lock and did not let go in time."""


@dataclass
class MigrationLock:
    """At most one ``vibetuner db migrate`` at a time on a database, across machines.

    The lock is one document (``_id`` ``"migrate"`` in ``vibetuner_locks``) with its
    owner and an expiry. It is taken by one insert (the unique ``_id`` lets one of two
    racing inserts through) or, when the holder died and its expiry passed, by one
    conditional update; the holder pushes its expiry forward while it runs and deletes
    the document at the end.
    """

    database: Any
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    ttl: float = 60.0
    _renewing: asyncio.Task[None] | None = field(default=None, repr=False)

    async def try_acquire(self) -> bool:
        """Take the lock if it is free or expired; True when taken."""
        from pymongo.errors import DuplicateKeyError

        locks = self.database[LOCK_COLLECTION]
        now = datetime.now(UTC)
        document = {"_id": LOCK_ID, "owner": self.owner, "since": now, "expires_at": self._expiry()}
        try:
            await locks.insert_one(document)
            return True
        except DuplicateKeyError:
            pass
        # Held: take it over only when its holder stopped renewing it.
        taken = await locks.update_one(
            {"_id": LOCK_ID, "expires_at": {"$lt": now}},
            {"$set": {"owner": self.owner, "since": now, "expires_at": self._expiry()}},
        )
        return bool(taken.modified_count)

    async def holder(self) -> dict[str, Any] | None:
        """The lock document, or None when nobody holds it."""
        found: dict[str, Any] | None = await self.database[LOCK_COLLECTION].find_one(
            {"_id": LOCK_ID}
        )
        return found

    async def acquire(self, wait: float, on_wait: Any = None) -> None:
        """Take the lock, waiting up to ``wait`` seconds; ``MigrationLocked`` after that.

        ``on_wait(holder)`` is called once when the lock is found taken.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        told = False
        while not await self.try_acquire():
            if not told and on_wait is not None:
                on_wait(await self.holder())
                told = True
            if loop.time() >= deadline:
                held = await self.holder()
                by = held.get("owner", "?") if held else "?"
                raise MigrationLocked(
                    f"another `vibetuner db migrate` ({by}) is running; gave up after {wait:g} s"
                )
            await asyncio.sleep(min(0.5, max(0.05, deadline - loop.time())))
        self._renewing = asyncio.create_task(self._renew())

    async def release(self) -> None:
        """Let go (only of our own lock)."""
        if self._renewing is not None:
            self._renewing.cancel()
            await asyncio.gather(self._renewing, return_exceptions=True)
            self._renewing = None
        await self.database[LOCK_COLLECTION].delete_one({"_id": LOCK_ID, "owner": self.owner})

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self.database[LOCK_COLLECTION].update_one(
                {"_id": LOCK_ID, "owner": self.owner}, {"$set": {"expires_at": self._expiry()}}
            )

    def _expiry(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.ttl)

"""The development database's file: the in-memory database, kept across reloads and restarts.

Without ``MONGODB_URL``, in development (``ENVIRONMENT=development``), the in-memory
database is loaded from ``DATA_DIR/devdb.bson`` at startup and written back when its
content changed (checked every ``SAVE_INTERVAL`` seconds) and at shutdown, so a code
reload or a restart keeps users, sessions and blob metadata.

Writes are crash-safe: each snapshot goes to a temporary file that is flushed to disk
and then renamed over the old one, so a killed process leaves the previous snapshot or
the new one, never half a file. At most the changes of the last ``SAVE_INTERVAL``
seconds can be lost.

One process owns the file at a time (an OS lock that ends with the process): the dev
server. Another process started meanwhile reads the same data but cannot keep changes:
commands that only read say so in one line, commands that write refuse to run
(``DevDatabaseFile.refusal``).
Only the public client API is used: ``find`` to read, ``insert_many`` to load.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import IO, Any

import bson

logger = logging.getLogger("vibetuner.mongo")

FILE_NAME = "devdb.bson"
LOCK_NAME = "devdb.lock"
SAVE_INTERVAL = 1.0
FORMAT = 1


class DevDatabaseFile:
    """Loads and saves one in-memory client's databases to ``directory``."""

    def __init__(self, client: Any, directory: Path) -> None:
        self.client = client
        self.directory = Path(directory)
        self.path = self.directory / FILE_NAME
        self.owner = False
        self._lock: IO[bytes] | None = None
        self._saved_digest: str | None = None
        self._task: asyncio.Task[None] | None = None

    # --- ownership -------------------------------------------------------------------

    def acquire(self) -> bool:
        """Take the file for this process; False when another process holds it."""
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        handle = (self.directory / LOCK_NAME).open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock = handle
        self.owner = True
        return True

    def refusal(self) -> str | None:
        """Why a command must not write here (another process holds the file), or None.

        A process that does not hold the file sees the data as of its last save and
        cannot keep a change: the holder (the dev server) writes its own copy over it.
        """
        if self.owner:
            return None
        return (
            f"the development database in {self.directory} is in use by another process "
            "(the dev server?): stop it and run this again, or make the change in the "
            "running app (changes made here would be lost)"
        )

    def release(self) -> None:
        """Give the file back (also happens when the process ends)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self.owner = False

    # --- snapshots -------------------------------------------------------------------

    async def load(self) -> int:
        """Fill the client from the file; returns the number of documents loaded."""
        data = await asyncio.to_thread(self._read)
        if data is None:
            return 0
        loaded = 0
        for entry in bson.decode_all(data):
            if entry.get("format") == FORMAT:
                continue  # the header
            documents = entry["documents"]
            if documents:
                await self.client[entry["db"]][entry["collection"]].insert_many(documents)
                loaded += len(documents)
        self._saved_digest = hashlib.sha256(data).hexdigest()
        return loaded

    def _read(self) -> bytes | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            entries = bson.decode_all(data)
        except (bson.errors.BSONError, ValueError) as exc:
            # Cannot happen through save(); a hand-edited or foreign file is kept aside.
            aside = self.path.with_suffix(".unreadable")
            os.replace(self.path, aside)
            logger.warning("%s could not be read (%s); moved to %s", self.path, exc, aside)
            return None
        if not entries or entries[0].get("format") != FORMAT:
            logger.warning("%s has an unknown format; starting empty", self.path)
            return None
        return data

    async def snapshot(self) -> bytes:
        """Every collection of every database, encoded as one BSON stream."""
        parts = [bson.encode({"format": FORMAT})]
        for db_name in sorted(await self.client.list_database_names()):
            database = self.client[db_name]
            for name in sorted(await database.list_collection_names()):
                documents = await database[name].find({}).sort("_id", 1).to_list(length=None)
                parts.append(
                    bson.encode({"db": db_name, "collection": name, "documents": documents})
                )
        return b"".join(parts)

    async def save(self) -> bool:
        """Write a snapshot when the content changed since the last one; True if written."""
        if not self.owner:
            return False
        data = await self.snapshot()
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._saved_digest:
            return False
        await asyncio.to_thread(self._write, data)
        self._saved_digest = digest
        return True

    def _write(self, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a power loss
        finally:
            os.close(directory)

    # --- lifetime --------------------------------------------------------------------

    def start_autosave(self, interval: float = SAVE_INTERVAL) -> None:
        """Save every ``interval`` seconds when something changed."""
        if self.owner and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._autosave(interval))

    async def _autosave(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.save()
            except OSError as exc:
                logger.error("the development database could not be saved: %s", exc)

    async def close(self) -> None:
        """Stop saving in the background, write the last snapshot, give the file back."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.save()
        finally:
            self.release()


async def open_dev_database(client: Any, directory: Path) -> DevDatabaseFile:
    """Load ``directory``'s development database into ``client`` and keep it saved."""
    store = DevDatabaseFile(client, directory)
    if store.acquire():
        count = await store.load()
        store.start_autosave()
        logger.info("development database: %d document(s) from %s", count, store.path)
    else:
        await store.load()
        logger.warning(
            "the development database in %s is in use by another process (the dev server?): "
            "this process sees its data but cannot keep changes",
            store.directory,
        )
    return store

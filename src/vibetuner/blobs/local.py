"""Local-disk blob backend: one file per key under ``BLOB_DIR``.

Paths are built from the server-generated key only (``{namespace}/{uuid hex}``,
checked against a strict pattern), so no client input ever reaches the file system.
Uploads go to a temporary file in the same directory tree and are renamed into place
once complete: a crash leaves at most a temporary file, never a half file under a key.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from vibetuner.blobs.backend import KEY_PATTERN, NAMESPACE_PATTERN, check_key
from vibetuner.config import Settings
from vibetuner.errors import BlobNotFound

TEMP_DIR_NAME = ".tmp"
_TEMP_REF = re.compile(r"^\.tmp/[0-9a-f]{32}\.part$")


class LocalBackend:
    """Stores blobs as files under ``root``; the directory is created on first write."""

    name = "local"

    def __init__(self, root: Path, *, chunk_size: int = 1024 * 1024, fsync: bool = True) -> None:
        self.root = Path(root).absolute()
        self.chunk_size = chunk_size
        # fsync before the rename so that after a power loss the key holds the whole file.
        self.fsync = fsync

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        """Files under ``BLOB_DIR`` (else ``DATA_DIR/blobs``)."""
        return cls(settings.blob_directory, chunk_size=settings.blob_chunk_size)

    async def start(self) -> None:
        """Nothing to open: the directory is created when the first blob is written."""

    async def close(self) -> None:
        """Nothing to close."""

    def path(self, key: str) -> Path:
        """The file that holds ``key`` (``root/namespace/ab/abcdef...``)."""
        namespace, name = check_key(key).split("/")
        path = self.root / namespace / name[:2] / name
        # Belt and braces: the key pattern already rules out anything but this layout.
        if not path.is_relative_to(self.root):
            raise ValueError(f"not a blob storage key: {key!r}")
        return path

    async def write(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> None:
        """Write ``chunks`` to a temporary file, then rename it to the key's path."""
        final = self.path(key)
        temp_dir = self.root / TEMP_DIR_NAME
        temp = temp_dir / f"{uuid.uuid4().hex}.part"
        await asyncio.to_thread(_make_dirs, temp_dir, final.parent)
        handle = await asyncio.to_thread(open, temp, "xb")
        loop = asyncio.get_running_loop()
        writing: asyncio.Future[int] | None = None
        try:
            try:
                # Each chunk is written in a worker thread while the next one arrives.
                async for chunk in chunks:
                    if writing is not None:
                        await writing
                    writing = loop.run_in_executor(None, handle.write, chunk)
                if writing is not None:
                    await writing
                await asyncio.to_thread(_finish, handle, self.fsync)
            finally:
                if writing is not None and not writing.done():
                    await asyncio.wait([writing])
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(_rename_durably, temp, final, self.fsync)
        except BaseException:
            await asyncio.to_thread(temp.unlink, True)
            raise

    async def read(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Chunks of the file from ``start`` to ``end`` (inclusive)."""
        path = self.path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"no file for {key!r} under {self.root}") from None
        try:
            if start:
                await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                size = self.chunk_size if remaining is None else min(self.chunk_size, remaining)
                chunk = await asyncio.to_thread(handle.read, size)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        """Remove the file; a missing file is fine."""
        await asyncio.to_thread(self.path(key).unlink, True)

    async def exists(self, key: str) -> bool:
        """True when the key's file exists."""
        return await asyncio.to_thread(self.path(key).is_file)

    async def keys(self) -> AsyncIterator[str]:
        """Every key with a file under ``root`` (temporary files are not keys)."""
        for key in await asyncio.to_thread(_list_keys, self.root):
            yield key

    async def presigned_url(
        self, key: str, *, expires_in: int, content_type: str, content_disposition: str
    ) -> str | None:
        """Local files have no URL of their own; the app serves them."""
        return None

    async def stale_uploads(self, older_than: datetime) -> list[str]:
        """Temporary files last written before ``older_than``, as ``.tmp/<name>.part``."""
        cutoff = older_than.timestamp()

        def scan() -> list[str]:
            return [
                f"{TEMP_DIR_NAME}/{path.name}"
                for path in self.temp_files()
                if path.stat().st_mtime < cutoff
            ]

        return await asyncio.to_thread(scan)

    async def remove_stale_upload(self, ref: str) -> None:
        """Delete one temporary file named by ``stale_uploads``."""
        if not _TEMP_REF.fullmatch(ref):
            raise ValueError(f"not a temporary upload: {ref!r}")
        await asyncio.to_thread((self.root / ref).unlink, True)

    def temp_files(self) -> list[Path]:
        """Temporary files of uploads in progress or interrupted by a crash."""
        temp_dir = self.root / TEMP_DIR_NAME
        return sorted(temp_dir.glob("*.part")) if temp_dir.is_dir() else []


def _make_dirs(*dirs: Path) -> None:
    for directory in dirs:
        directory.mkdir(parents=True, exist_ok=True)


def _finish(handle, fsync: bool) -> None:  # type: ignore[no-untyped-def]
    handle.flush()
    if fsync:
        os.fsync(handle.fileno())


def _rename_durably(temp: Path, final: Path, fsync: bool) -> None:
    os.replace(temp, final)
    if fsync:
        # The rename itself is only durable once the directory entry is on disk.
        descriptor = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _list_keys(root: Path) -> list[str]:
    found: list[str] = []
    if not root.is_dir():
        return found
    for namespace in sorted(os.scandir(root), key=lambda entry: entry.name):
        if not (namespace.is_dir() and NAMESPACE_PATTERN.fullmatch(namespace.name)):
            continue
        for shard in os.scandir(namespace.path):
            if not shard.is_dir():
                continue
            for entry in os.scandir(shard.path):
                key = f"{namespace.name}/{entry.name}"
                if entry.is_file() and KEY_PATTERN.fullmatch(key) and entry.name[:2] == shard.name:
                    found.append(key)
    return sorted(found)

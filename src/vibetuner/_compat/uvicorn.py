"""uvicorn beyond its public API: the development reloader also watches single files.

Why: ``vibetuner run dev`` should restart when ``.env`` changes, as it does for code.
uvicorn's reloader only watches directories, recursively (``reload_dirs`` drops files),
and watching the project's root would put every file of ``.venv/``, ``data/`` (the
development database is saved there on each write) and ``.git/`` under watch. uvicorn has
no public hook for "also these files", so ``FileWatchingReload`` extends its watchfiles
reloader: it checks the files' stamps (modification time, size, inode) each time the
directory watcher wakes, which it does at least every half second.

Relied on (checked by ``tests/core/test_compat_uvicorn.py``): ``WatchFilesReload(config,
target, sockets)`` with ``run()``; ``should_restart()`` returning the changed paths or
None, called in a loop; the ``watcher`` attribute it reads from, built with watchfiles'
``watch``; the ``reload_dirs`` and ``should_exit`` attributes; and ``Config.bind_socket()``
with ``Server.run`` as the target, as ``uvicorn.run`` does for ``reload=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from socket import socket

from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn.supervisors.watchfilesreload import WatchFilesReload
from watchfiles import watch

Stamp = tuple[int, int, int] | None


def stamp(path: Path) -> Stamp:
    """What changes when a file is edited, replaced (editors save by rename) or removed."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class FileWatchingReload(WatchFilesReload):
    """uvicorn's watchfiles reloader, restarting also when one of ``files`` changes."""

    def __init__(
        self,
        config: Config,
        target: Callable[[list[socket] | None], None],
        sockets: list[socket],
        files: Sequence[Path],
    ) -> None:
        super().__init__(config, target, sockets)
        # The same watcher, waking at least every 0.5 s (default 5 s) to look at the files.
        self.watcher = watch(
            *self.reload_dirs,
            watch_filter=None,
            stop_event=self.should_exit,
            yield_on_timeout=True,
            ignore_permission_denied=True,
            rust_timeout=500,
        )
        self.files = {path: stamp(path) for path in files}

    def should_restart(self) -> list[Path] | None:
        changed = list(super().should_restart() or [])
        for path, before in self.files.items():
            now = stamp(path)
            if now != before:
                self.files[path] = now
                changed.append(path)
        return changed or None


def run_reloading(config: Config, files: Sequence[Path]) -> None:
    """Serve ``config`` (with ``reload=True``) as ``uvicorn.run`` does, watching ``files`` too."""
    server = Server(config=config)
    sock = config.bind_socket()
    FileWatchingReload(config, target=server.run, sockets=[sock], files=files).run()

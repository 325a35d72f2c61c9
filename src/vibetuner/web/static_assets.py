"""Static files with content-hashed URLs, long-lived caching and gzip.

``static_url("vibetuner/htmx.min.js")`` in a template gives
``/static/vibetuner/htmx.min.<hash>.js``: the hash is of the file's bytes, so the URL
changes whenever the file does and the answer can be cached for a year as
``immutable``. The plain name is served too, revalidated with its ETag.

Files are read once into memory with a gzip copy (the framework's assets are a few
tens of kilobytes); in development a changed file is read again on its next use, so a
rebuilt stylesheet shows up on reload, and a file added later is found. Outside
development the files found and not found are remembered until the app restarts, as
they are deployed with it. The framework's files live under
``vibetuner/``; an app's own folders (``create_app(static_dirs=[...])``) are served from
the root, ``/static/app.css``. Only files inside a folder are served: a symlink
pointing out of it is not followed.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

FRAMEWORK_STATIC = Path(__file__).resolve().parent.parent / "static"
FRAMEWORK_PREFIX = "vibetuner"
STATIC_PATH = "/static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"
# Compressing what is already compressed only costs time.
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
HASH_LENGTH = 12
# Names found missing that are remembered (requests for /static/<anything> add to it).
MAX_MISSING = 1024


@dataclass(frozen=True)
class Asset:
    """One file as it is served."""

    path: Path
    mtime_ns: int
    body: bytes
    gzipped: bytes | None
    digest: str
    media_type: str

    @property
    def etag(self) -> str:
        return f'"{self.digest}"'


def _read(path: Path) -> Asset:
    body = path.read_bytes()
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type == "application/javascript":
        media_type += "; charset=utf-8"
    gzipped = None
    if media_type.startswith(COMPRESSIBLE) and len(body) > 512:
        packed = gzip.compress(body, compresslevel=9, mtime=0)
        gzipped = packed if len(packed) < len(body) else None
    digest = hashlib.sha256(body).hexdigest()[:HASH_LENGTH]
    return Asset(path, path.stat().st_mtime_ns, body, gzipped, digest, media_type)


def _contained(candidate: Path, root: Path) -> Path | None:
    """The real path of the file ``candidate`` when it is inside ``root``, else None.

    Symlinks are resolved first, so a link in the folder that points elsewhere
    (``/etc/passwd``, a directory outside) is not served; one to a file of the same
    folder is. ``root`` is already resolved.
    """
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, a symlink loop, unreadable
        return None
    if resolved.is_relative_to(root) and resolved.is_file():
        return resolved
    return None


def hashed_name(name: str, digest: str) -> str:
    """``css/app.css`` -> ``css/app.<digest>.css``."""
    path = PurePosixPath(name)
    return str(path.with_name(f"{path.stem}.{digest}{path.suffix}"))


class StaticAssets:
    """The ASGI app behind ``/static``, and ``url(name)`` for templates."""

    def __init__(self, app_dirs: Sequence[str | os.PathLike[str]] = (), *, reload: bool = False):
        # Searched in order: the framework's own files under their prefix, then the app's.
        self.roots: list[tuple[str, Path]] = [(FRAMEWORK_PREFIX, FRAMEWORK_STATIC)]
        self.roots += [("", Path(d).resolve()) for d in app_dirs]
        self.reload = reload
        self._assets: dict[str, Asset] = {}
        self._by_hashed: dict[str, str] = {}
        # The URL of each asset as last computed (a page asks for the same few each time).
        self._urls: dict[str, tuple[Asset, str]] = {}
        # Names with no file, remembered unless reloading (``static_exists`` on every page).
        self._missing: set[str] = set()

    def add_dir(self, directory: str | os.PathLike[str], prefix: str = "") -> None:
        """Serve the files of ``directory`` under ``prefix`` (the app's folders first)."""
        self.roots.insert(1, (prefix.strip("/"), Path(directory).resolve()))
        self._missing.clear()

    def _locate(self, name: str) -> Path | None:
        parts = PurePosixPath(name).parts
        if not parts or any(part in ("..", ".") or part.startswith(".") for part in parts):
            return None
        for prefix, root in self.roots:
            if prefix:
                if parts[0] != prefix or len(parts) == 1:
                    continue
                relative = PurePosixPath(*parts[1:])
            else:
                relative = PurePosixPath(*parts)
            found = _contained(root / relative, root)
            if found is not None:
                return found
        return None

    def asset(self, name: str) -> Asset | None:
        """The file served as ``name``; None when there is none."""
        known = self._assets.get(name)
        if not self.reload:
            if known is not None:
                return known
            if name in self._missing:
                return None
        if known is not None:
            try:
                if known.path.stat().st_mtime_ns == known.mtime_ns:
                    return known
            except FileNotFoundError:
                pass
        path = self._locate(name)
        if path is None:
            self._assets.pop(name, None)
            if not self.reload and len(self._missing) < MAX_MISSING:
                self._missing.add(name)
            return None
        asset = _read(path)
        self._assets[name] = asset
        self._by_hashed[hashed_name(name, asset.digest)] = name
        return asset

    def url(self, name: str) -> str:
        """The cache-busting URL of ``name``; raises ``LookupError`` for a missing file."""
        asset = self.asset(name)
        if asset is None:
            raise LookupError(f"no static file named {name!r}")
        cached = self._urls.get(name)
        if cached is not None and cached[0] is asset:
            return cached[1]
        url = f"{STATIC_PATH}/{hashed_name(name, asset.digest)}"
        self._urls[name] = (asset, url)
        return url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.respond(scope)
        await response(scope, receive, send)

    def respond(self, scope: Scope) -> Response:
        """The answer to a request for one file (``scope["path"]`` below ``/static``)."""
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("Method not allowed.", 405, headers={"Allow": "GET, HEAD"})
        root_path = scope.get("root_path", "")
        path: str = scope["path"]
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        name = path.removeprefix(STATIC_PATH).lstrip("/")
        cache_control = REVALIDATE
        logical = self._by_hashed.get(name)
        if logical is None:
            # A hashed URL from before a restart, or another process: find its file.
            stem = PurePosixPath(name)
            pieces = stem.name.split(".")
            if len(pieces) >= 3 and len(pieces[-2]) == HASH_LENGTH:
                candidate = str(stem.with_name(".".join(pieces[:-2]) + "." + pieces[-1]))
                asset = self.asset(candidate)
                if asset is not None and asset.digest == pieces[-2]:
                    logical = candidate
        if logical is not None:
            cache_control = IMMUTABLE
            name = logical
        asset = self.asset(name)
        if asset is None:
            return PlainTextResponse("Not found.", 404)
        headers = Headers(scope=scope)
        common = {"ETag": asset.etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
        if asset.etag in headers.get("if-none-match", ""):
            return Response(status_code=304, headers=common)
        body = asset.body
        if asset.gzipped is not None and "gzip" in headers.get("accept-encoding", ""):
            body = asset.gzipped
            common["Content-Encoding"] = "gzip"
        if scope["method"] == "HEAD":
            return Response(
                status_code=200,
                headers={**common, "Content-Length": str(len(body))},
                media_type=asset.media_type,
            )
        return Response(body, headers=common, media_type=asset.media_type)

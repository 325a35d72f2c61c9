"""The one place that turns ``SESSION_KEY`` into keys.

The session cookie is signed with the key itself; every other use (signed blob links,
CSRF tokens, ...) gets its own key derived with HMAC-SHA256 and a purpose label, so a
value made for one purpose never checks out for another.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from vibetuner.config import Settings

logger = logging.getLogger("vibetuner.keys")

# Without SESSION_KEY (development and tests only; production refuses to start), one
# random key per process, so every user of it in the process agrees.
_process_key: str | None = None


DEV_KEY_FILE = "session_key"


def signing_key(settings: Settings) -> str:
    """``SESSION_KEY``; without it, in development a key kept in ``DATA_DIR``, else (tests)
    a random key for this process. Production refuses to start without ``SESSION_KEY``."""
    global _process_key
    if settings.session_key is not None and settings.session_key.get_secret_value():
        return settings.session_key.get_secret_value()
    if settings.environment == "development":
        return development_key(settings.data_dir)
    if _process_key is None:
        logger.warning(
            "SESSION_KEY is not set: using a random key for this process; sessions and signed "
            "links end when it restarts. Set SESSION_KEY to keep them."
        )
        _process_key = secrets.token_urlsafe(48)
    return _process_key


def derive_key(settings: Settings, purpose: str) -> bytes:
    """A 32-byte key for ``purpose`` (say ``"blob links"``), derived from the signing key."""
    root = signing_key(settings).encode("utf-8")
    return hmac.new(root, f"vibetuner {purpose}".encode(), hashlib.sha256).digest()


def development_key(data_dir: Path) -> str:
    """The development signing key in ``data_dir``, made once (as Rails keeps its own).

    So a code reload or a restart keeps everyone signed in. The file is readable by its
    owner only; it is never used in production.
    """
    path = Path(data_dir) / DEV_KEY_FILE
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    if len(key) >= 32:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key)
    try:
        os.link(temporary, path)  # fails if another process made it first: use theirs
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
    finally:
        temporary.unlink(missing_ok=True)
    logger.info("made a development session key in %s", path)
    return key

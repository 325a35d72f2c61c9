"""The one place that turns ``SESSION_KEY`` into keys.

The session cookie is signed with the key itself; every other use (signed blob links,
CSRF tokens, ...) gets its own key derived with HMAC-SHA256 and a purpose label, so a
value made for one purpose never checks out for another.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from vibetuner.config import Settings

logger = logging.getLogger("vibetuner.keys")

# Without SESSION_KEY (development and tests only; production refuses to start), one
# random key per process, so every user of it in the process agrees.
_process_key: str | None = None


def signing_key(settings: Settings) -> str:
    """``SESSION_KEY``, or a random key for this process when it is unset (not in production)."""
    global _process_key
    if settings.session_key is not None and settings.session_key.get_secret_value():
        return settings.session_key.get_secret_value()
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

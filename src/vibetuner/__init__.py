"""vibetuner: an async web-framework core for FastAPI and MongoDB apps.

Importing the package is cheap; ``create_app`` loads FastAPI and the rest on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["create_app", "__version__"]

if TYPE_CHECKING:
    from vibetuner.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from vibetuner.app import create_app

        return create_app
    raise AttributeError(f"module 'vibetuner' has no attribute {name!r}")

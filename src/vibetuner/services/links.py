"""Absolute links to the app's own routes, for services that write them into emails.

Services know route names, never URL strings: the web layer implements
:class:`LinkBuilder` with the router's ``url_path_for`` on ``BASE_URL``.
"""

from __future__ import annotations

from typing import Protocol


class LinkBuilder(Protocol):
    """Builds the absolute URL of a named route."""

    def url(self, name: str, /, **path_params: str) -> str:
        """``BASE_URL`` + the path of route ``name`` with ``path_params`` filled in."""
        ...

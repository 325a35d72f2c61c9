"""Which ``vibetuner`` a generated app depends on: exactly the one that generated it.

The name ``vibetuner`` on the package registry belongs to an unrelated project, so a
plain ``vibetuner>=0.1`` would install that one. A project made from a local checkout
(or a wheel installed from a file) depends on that very place; one made from a
registry release depends on that exact version.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution


def framework_pin() -> str:
    """The version specifier or direct reference for this vibetuner (``==0.1.0``, ``@ file:///...``)."""
    from vibetuner import __version__

    try:
        raw = distribution("vibetuner").read_text("direct_url.json")
    except PackageNotFoundError:
        raw = None
    if raw:
        source = json.loads(raw)
        url = source.get("url", "")
        vcs = source.get("vcs_info")
        if vcs and url:
            commit = vcs.get("commit_id", "")
            return f"@ {vcs.get('vcs', 'git')}+{url}@{commit}" if commit else f"@ {url}"
        if url.startswith("file://"):
            return f"@ {url}"
    return f"=={__version__}"

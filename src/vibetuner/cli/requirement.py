"""Which ``vibetuner`` a generated app depends on: exactly the one that generated it.

The name ``vibetuner`` on the package registry belongs to an unrelated project, so a
plain ``vibetuner>=0.1`` would install that one. A project made from a wheel or a
repository depends on that very place; one made from a registry release depends on that
exact version. One made from a checkout installed editable (the Quick start) depends on
the version and says where the checkout is: a ``@ file://`` reference would make pip
replace the editable install with a built copy, and edits to the checkout would stop
taking effect in the environment they share.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse


def _direct_url() -> dict[str, Any] | None:
    try:
        raw = distribution("vibetuner").read_text("direct_url.json")
    except PackageNotFoundError:
        return None
    return json.loads(raw) if raw else None


def framework_checkout() -> Path | None:
    """The checkout this vibetuner is installed editable from, or None."""
    source = _direct_url()
    if not source or not source.get("dir_info", {}).get("editable"):
        return None
    url = source.get("url", "")
    if not url.startswith("file://"):
        return None
    return Path(unquote(urlparse(url).path))


def framework_pin() -> str:
    """The version specifier or direct reference for this vibetuner (``==0.1.0``, ``@ file:///...``)."""
    from vibetuner import __version__

    source = _direct_url()
    if source and framework_checkout() is None:
        url = source.get("url", "")
        vcs = source.get("vcs_info")
        if vcs and url:
            commit = vcs.get("commit_id", "")
            return f"@ {vcs.get('vcs', 'git')}+{url}@{commit}" if commit else f"@ {url}"
        if url.startswith("file://"):
            return f"@ {url}"
    return f"=={__version__}"

"""A browser as people name it: ``Chrome on Linux`` rather than its User-Agent string.

The parsing is ua-parser's (its regular expressions, from the uap-core project); it is
imported on first use (about 45 ms, and its expressions compile on the first parse,
about 170 ms), and each distinct string is parsed once per process.
"""

from __future__ import annotations

from functools import lru_cache

from vibetuner.i18n import gettext as _

# ua-parser's names for what it could not recognise.
_UNKNOWN = {"", "Other"}


@lru_cache(maxsize=1024)
def _families(user_agent: str) -> tuple[str, str]:
    from ua_parser import parse

    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else ""
    system = result.os.family if result.os else ""
    return ("" if browser in _UNKNOWN else browser, "" if system in _UNKNOWN else system)


def browser_name(user_agent: str | None) -> str:
    """``Chrome on Linux``, ``Firefox``, ``Unknown browser``: in the current language."""
    if not user_agent or not user_agent.strip():
        return _("Unknown browser")
    browser, system = _families(user_agent[:300])
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    if browser or system:
        return browser or _("A browser on %(system)s", system=system)
    return _("Unknown browser")

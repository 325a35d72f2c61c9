"""``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-10) and
``Retry-After``.

Each rate a request was counted against is one policy, named after its limit and window:
``RateLimit-Policy: "pages/60s";q=300;w=60`` states the quota ``q`` per window ``w``
(seconds), ``RateLimit: "pages/60s";r=299;t=42`` the hits remaining ``r`` and the seconds
``t`` until the window resets. Both are Structured Field lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from vibetuner.ratelimit.limiter import Decision, retry_after


def _sf_string(text: str) -> str:
    """``text`` as a Structured Field string: printable ASCII, quotes and backslashes escaped."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'


def policy_name(decision: Decision) -> str:
    """The policy's name: the limit's name and the window in seconds."""
    return _sf_string(f"{decision.name}/{decision.rate.seconds}s")


def rate_limit_headers(decisions: Sequence[Decision]) -> dict[str, str]:
    """The headers for ``decisions`` (empty when there are none); ``Retry-After`` when one
    of them is exceeded."""
    if not decisions:
        return {}
    headers = {
        "RateLimit-Policy": ", ".join(
            f"{policy_name(d)};q={d.rate.amount};w={d.rate.seconds}" for d in decisions
        ),
        "RateLimit": ", ".join(
            f"{policy_name(d)};r={d.remaining};t={d.reset_after}" for d in decisions
        ),
    }
    wait = retry_after(decisions)
    if wait:
        headers["Retry-After"] = str(wait)
    return headers

"""Rates such as ``"10/minute"``, ``"5/second;100/hour"`` or ``"30 per 5 minutes"``."""

from __future__ import annotations

import re
from dataclasses import dataclass

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# "10/minute", "10 per minute", "10/5 minutes", "10 per 2 hours"
RATE = re.compile(
    r"^\s*(\d{1,9})\s*(?:/|\s+per\s+)\s*(\d{1,6}\s*)?(second|minute|hour|day)s?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Rate:
    """At most ``amount`` hits in each window of ``seconds`` seconds."""

    amount: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.amount}/{self.seconds}s"


def parse_rates(text: str) -> tuple[Rate, ...]:
    """The rates of ``text``: one or more of ``N/second|minute|hour|day`` (also
    ``N per 5 minutes``), separated by ``;`` or ``,``. Empty text: no rates.

    Raises ``ValueError`` naming the text when a part cannot be read or allows nothing.
    """
    rates = []
    for part in re.split(r"[;,]", text):
        if not part.strip():
            continue
        found = RATE.match(part)
        if found is None:
            raise ValueError(f"{text!r} is not a rate such as 10/minute or 5/second;100/hour")
        amount, multiple, unit = found.groups()
        seconds = int(multiple or 1) * UNITS[unit.lower()]
        if int(amount) < 1 or seconds < 1:
            raise ValueError(f"{text!r}: a rate allows at least 1 request per window")
        rates.append(Rate(int(amount), seconds))
    return tuple(rates)

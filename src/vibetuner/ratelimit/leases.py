"""Blocks of places that this worker holds in a shared counter, so that most hits need
no round trip to the backend.

A window's counter is the number of places handed out so far; the hit holding place
``n`` passes when ``n <= N`` (the rate's amount). A worker short of places takes a block
of ``k`` with one atomic increment (``INCRBY k``, ``$inc: k``): the places between the
counter's old value and its new one are this worker's alone. No place is given twice, so
at most N hits pass in a window however many workers count, and only places up to N are
kept. Blocks shrink as the counter nears N (``block_size``), down to one place per store
command over the last ``2 * BLOCK_DIVISOR`` places (for a limit below that, always), so
what a worker can hold unused is small; a lease belongs to one window and is forgotten
with it.
"""

from __future__ import annotations

import asyncio

#: A block is at most this share (1/16) of the places still free when it is taken...
BLOCK_DIVISOR = 16
#: ...and at most this many places.
MAX_BLOCK = 1024
#: Leases kept at once; past it, the oldest is dropped (its unused places are then lost,
#: which can only refuse sooner, never let more through).
MAX_LEASES = 10_000

LeaseKey = tuple[str, str, int, int]


def block_size(amount: int, seen: int) -> int:
    """How many places to take when the counter was last seen at ``seen`` (of ``amount``)."""
    return max(1, min(MAX_BLOCK, (amount - seen) // BLOCK_DIVISOR))


class Lease:
    """The places this worker holds in one window of one counter."""

    __slots__ = ("end", "pending", "places", "seen", "window")

    def __init__(self, window: int, end: float) -> None:
        self.window = window
        self.end = end
        #: ``[first, last]`` ranges of places held, all within the rate's amount.
        self.places: list[list[int]] = []
        #: The counter's highest value this worker has seen (places handed out, anywhere).
        self.seen = 0
        #: Done when the block being taken for this lease has arrived.
        self.pending: asyncio.Future[None] | None = None

    def take(self, cost: int) -> int | None:
        """Use ``cost`` held places; the highest of them, or None when fewer are held."""
        places = self.places
        if not places:
            return None
        first, last = places[0]
        if last - first + 1 > cost:  # the common case: one range, enough left in it
            places[0][0] = first + cost
            return first + cost - 1
        if sum(last - first + 1 for first, last in places) < cost:
            return None
        top = 0
        while cost:
            first, last = places[0]
            used = min(cost, last - first + 1)
            top = max(top, first + used - 1)
            cost -= used
            if first + used > last:
                places.pop(0)
            else:
                places[0][0] = first + used
        return top

    def add(self, first: int, last: int) -> None:
        """Hold the places ``first`` to ``last`` (nothing when the range is empty)."""
        if first <= last:
            self.places.append([first, last])


class Leases:
    """This worker's leases, by limit, subject and rate; bounded, swept as windows end."""

    def __init__(self, max_leases: int = MAX_LEASES) -> None:
        self.held: dict[LeaseKey, Lease] = {}
        self.max_leases = max_leases
        self._next_sweep = 0.0

    def get(self, key: LeaseKey, window: int, end: float, now: float) -> Lease | None:
        """The lease of ``key`` for ``window`` (a new, empty one when there was none);
        None when a later window's lease is held (the clock went back: count exactly)."""
        lease = self.held.get(key)
        if lease is not None:
            if lease.window == window:
                return lease
            if lease.window > window:
                return None
        if now >= self._next_sweep:
            self._next_sweep = now + 1
            self.held = {k: v for k, v in self.held.items() if v.end > now}
        if len(self.held) >= self.max_leases and key not in self.held:
            del self.held[next(iter(self.held))]
        lease = self.held[key] = Lease(window, end)
        return lease

    def clear(self) -> None:
        """Forget every lease (their places are lost: fewer pass, never more)."""
        self.held.clear()

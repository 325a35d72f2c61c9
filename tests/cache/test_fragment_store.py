"""The fragment store follows a bounded number of tags, and never an entry's tag less."""

from __future__ import annotations

import secrets

from vibetuner.cache import fragments
from vibetuner.cache.backends import MemoryBackend
from vibetuner.cache.fragments import FragmentStore
from vibetuner.cache.store import Cache


def entry(tag: str) -> dict:
    return {"html": "<p>x</p>", "stand_ins": {}, "tags": {tag: 0}}


def test_past_its_tag_bound_the_store_starts_over_and_follows_what_it_keeps(monkeypatch):
    monkeypatch.setattr(fragments, "MAX_TAGS", 3)
    cache = Cache(MemoryBackend(10_000), signing_key=secrets.token_bytes(32))
    store = FragmentStore(cache, 10_000)
    for n in range(4):
        store.put(f"k{n}", entry(f"user:{n}"), 60)
    assert len(store.versions) == 4 and store.get("k0") is not None
    store.put("k4", entry("user:4"), 60)  # over the bound: everything else is forgotten
    assert store.get("k0") is None and store.get("k4") is not None
    assert store.versions == {"user:4": 0}  # the kept fragment's tag is still followed
    store.invalidated(["user:4"], [])
    assert store.get("k4") is None

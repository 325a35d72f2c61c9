"""``{% cache %}``: parts of a template rendered once and reused.

::

    {% cache "note-summary", 300, tags=["notes:" ~ user.id] %} ... {% endcache %}
    {% cache "footer", 3600, shared=True %} ... {% endcache %}

The key, the lifetime in seconds and the keywords ``shared`` and ``tags``. A fragment
is cached per viewer unless ``shared=True``: one copy for each signed-in user (whose
session the request checked, with ``CurrentUser`` or ``RequireUser``) and one for
everyone signed out, never one user's for another. A request with a session nobody
checked renders the part without the cache. The key also carries the page's language.
A CSRF token or CSP nonce inside the part is replaced by this response's own.

Templates render synchronously, so fragments live in each process's memory (bounded by
``CACHE_MEMORY_MAX_BYTES``). Invalidating a tag drops them in this process at once and,
with a shared backend, in the others within ``CACHE_FRAGMENT_SYNC_SECONDS``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from vibetuner.cache.backends import MemoryBackend
from vibetuner.cache.store import Cache
from vibetuner.cache.substitute import fresh_values, request_values, restore, stand_ins
from vibetuner.cache.viewer import viewer_of

# Tags a process follows at most (per-user tags add up); past it, its fragments start over.
MAX_TAGS = 10_000


class FragmentStore:
    """The rendered fragments of this process, with the tag counters they were made under."""

    def __init__(self, cache: Cache, max_bytes: int) -> None:
        self.cache = cache
        self.memory = MemoryBackend(max_bytes)
        #: The last known counter of each tag (shared counters, read by ``sync``).
        self.versions: dict[str, int] = {}
        cache.on_invalidate.append(self.invalidated)

    def invalidated(self, tags: Sequence[str], keys: Sequence[str]) -> None:
        """A tag was invalidated in this process: its fragments are stale from now on."""
        for tag in tags:
            self.versions[tag] = self.versions.get(tag, 0) + 1

    async def sync(self) -> None:
        """Read the shared counters of the tags in use (tags invalidated elsewhere)."""
        tags = list(self.versions)
        if tags:
            for tag, version in zip(tags, await self.cache.tag_versions(tags), strict=True):
                if version > self.versions.get(tag, 0):
                    self.versions[tag] = version

    def get(self, key: str) -> dict[str, Any] | None:
        """The fragment stored under ``key``, unless a tag of it was invalidated since."""
        raw = self.memory.get_now(key)
        if raw is None:
            return None
        entry: dict[str, Any] = json.loads(raw)
        for tag, version in entry["tags"].items():
            if self.versions.get(tag, 0) != version:
                return None
        return entry

    def put(self, key: str, entry: dict[str, Any], ttl: float) -> None:
        """Store a fragment for ``ttl`` seconds."""
        if len(self.versions) > MAX_TAGS:
            # Every stored fragment's tags must stay followed (``sync``): forget both.
            self.memory.clear_now()
            self.versions.clear()
        for tag in entry["tags"]:
            self.versions.setdefault(tag, entry["tags"][tag])
        self.memory.set_now(key, json.dumps(entry).encode("utf-8"), ttl)


class FragmentCacheExtension(Extension):
    """The ``{% cache key, ttl %}...{% endcache %}`` tag (added by ``CacheFeature``)."""

    tags = {"cache"}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        environment.extend(fragment_store=None)

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        args: list[nodes.Expr] = [nodes.ContextReference(), parser.parse_expression()]
        keywords: list[nodes.Keyword] = []
        while parser.stream.skip_if("comma"):
            if parser.stream.current.type == "name" and parser.stream.look().type == "assign":
                name = next(parser.stream).value
                next(parser.stream)
                if name not in ("shared", "tags", "ttl"):
                    parser.fail(f"{{% cache %}} takes shared=, tags= and ttl=, not {name}=")
                keywords.append(nodes.Keyword(name, parser.parse_expression()))
            elif len(args) == 2 and not keywords:
                args.append(parser.parse_expression())
            else:
                parser.fail("{% cache key, ttl, shared=..., tags=[...] %}")
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        call = self.call_method("_fragment", args, keywords)
        return nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _fragment(
        self,
        context: Any,
        key: Any,
        ttl: float | None = None,
        *,
        shared: bool = False,
        tags: Sequence[str] = (),
        caller: Callable[[], str],
    ) -> Markup:
        store: FragmentStore | None = self.environment.fragment_store  # type: ignore[attr-defined]
        request = context.get("request")
        if store is None or request is None:
            return Markup(caller())
        viewer = "shared" if shared else viewer_of(request)
        if viewer is None:
            return Markup(caller())  # a session not checked on this request
        from vibetuner.i18n import current_locale

        full_key = f"fragment:{viewer}:{current_locale()}:{key}"
        entry = store.get(full_key)
        if entry is not None:
            return Markup(restore(entry["html"], entry["stand_ins"], fresh_values(request)))
        html = str(caller())
        tag_list = [str(tag) for tag in tags]
        entry = {
            "html": html,
            "stand_ins": stand_ins(html, request_values(request)),
            "tags": {tag: store.versions.setdefault(tag, 0) for tag in tag_list},
        }
        lifetime = store.cache.default_ttl if ttl is None else float(ttl)
        store.put(full_key, entry, lifetime)
        return Markup(html)

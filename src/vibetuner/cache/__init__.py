"""Caching: values, template fragments, whole pages and HTTP validators.

* ``CacheFeature`` -- the app's cache on ``CACHE_BACKEND`` (in process, Redis or MongoDB);
* ``@cached(ttl=, key=, tags=)`` -- a coroutine function's results, computed once per key
  under load; ``invalidate(key)`` and ``invalidate_tags(tag)``;
* ``{% cache key, ttl %}...{% endcache %}`` -- parts of templates, per viewer or shared;
* ``cache_page(ttl=)`` -- a route's whole answer for signed-out visitors;
* ``cache_control(policy)``, ``make_etag``, ``not_modified``, ``set_validators`` -- HTTP
  caching with conditional GET.
"""

from vibetuner.cache.backends import Backend, MemoryBackend
from vibetuner.cache.decorator import (
    CachedFunction,
    cached,
    current_cache,
    invalidate,
    invalidate_tags,
    require_cache,
)
from vibetuner.cache.feature import CacheFeature
from vibetuner.cache.http import cache_control, make_etag, not_modified, set_validators
from vibetuner.cache.pages import cache_page
from vibetuner.cache.store import MISSING, Cache

__all__ = [
    "MISSING",
    "Backend",
    "Cache",
    "CacheFeature",
    "CachedFunction",
    "MemoryBackend",
    "cache_control",
    "cache_page",
    "cached",
    "current_cache",
    "invalidate",
    "invalidate_tags",
    "make_etag",
    "not_modified",
    "require_cache",
    "set_validators",
]

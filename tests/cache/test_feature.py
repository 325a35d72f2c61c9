"""CacheFeature's settings checks and readiness."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from tests.cache.app import cache_app
from vibetuner.config import Settings
from vibetuner.errors import ConfigurationError


def test_redis_without_a_url_is_refused_when_the_app_is_built(vibetuner_settings):
    settings = vibetuner_settings.model_copy(update={"cache_backend": "redis"})
    with pytest.raises(ConfigurationError, match="CACHE_BACKEND=redis needs REDIS_URL"):
        cache_app(settings)


def test_an_unknown_backend_is_a_settings_error():
    with pytest.raises(ValueError, match="cache_backend"):
        Settings(_env_file=None, cache_backend="memcached")


async def test_while_the_redis_cache_is_away_ready_fails_and_pages_still_answer(
    vibetuner_settings, redis_server
):
    settings = vibetuner_settings.model_copy(
        update={"cache_backend": "redis", "redis_url": SecretStr(redis_server.url)}
    )
    application = cache_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            first = await http.get("/health/ready")
            assert first.json()["checks"]["cache"] == "ok"
            redis_server.stop()
            try:
                ready = await http.get("/health/ready")
                assert ready.status_code == 503
                assert "the cache (redis) does not answer" in ready.json()["checks"]["cache"]
                # Pages still answer: cached functions are computed without the cache.
                assert (await http.get("/count")).json() == {"count": 42}
                assert (await http.get("/public", headers={"Accept": "text/html"})).is_success
                from vibetuner.cache import invalidate_tags

                await invalidate_tags("public")  # logged, not raised: the change was made
            finally:
                redis_server.start()

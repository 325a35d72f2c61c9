"""The app-wide defaults per kind of request, the exempt paths, the sign-in limits on the
same limiter, the checks at startup and in the settings."""

from __future__ import annotations

import pydantic
import pytest
from fastapi import APIRouter

from tests.auth.conftest import request_link
from tests.ratelimit.conftest import client_of, signed_in, statuses
from vibetuner import ConfigurationError, RateLimitFeature, Settings, create_app, rate_limit
from vibetuner.models import RateLimitCounter, UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.testing import app_context

MEMORY = {"rate_limit_backend": "memory"}
HTML = {"Accept": "text/html"}


async def test_unsafe_requests_share_one_budget_whatever_the_method_or_path(start_app):
    async with start_app(rate_limit_unsafe="4/minute", **MEMORY) as app, client_of(app) as http:
        got = [
            (await http.post("/form", data={"a": "1"})).status_code,
            (await http.put("/nowhere")).status_code,
            (await http.request("DELETE", "/form/")).status_code,
            # A made-up or lower-case method is unsafe too.
            (await http.request("post", "/ping")).status_code,
            (await http.request("FROB", "/ping")).status_code,
            (await http.post("/other")).status_code,
        ]
        safe = await http.get("/ping")
    assert 429 not in got[:4]
    assert got[4:] == [429, 429]
    # Reading is another kind, with its own (here: no) default.
    assert safe.status_code == 200


async def test_pages_and_api_requests_have_their_own_defaults(start_app):
    settings = {"rate_limit_pages": "2/minute", "rate_limit_api": "3/minute", **MEMORY}
    async with start_app(**settings) as app, client_of(app) as http:
        pages = await statuses(http, "/nowhere-page", 3, headers=HTML)
        api = await statuses(http, "/nowhere-api", 4)
        refused = await http.get("/nowhere-api")
    assert pages == [404, 404, 429]
    assert api == [404, 404, 404, 429]
    assert refused.json()["code"] == "rate_limited"
    assert '"api/60s";q=3;w=60' in refused.headers["ratelimit-policy"]


async def test_headers_list_the_default_and_the_route_limit(start_app):
    async with start_app(rate_limit_api="100/minute", **MEMORY) as app, client_of(app) as http:
        answer = await http.get("/ping")
        await statuses(http, "/ping", 2)
        refused = await http.get("/ping")
    assert answer.headers["ratelimit-policy"] == '"api/60s";q=100;w=60, "ping/60s";q=3;w=60'
    assert answer.headers["ratelimit"].startswith('"api/60s";r=99;')
    assert refused.status_code == 429
    assert '"api/60s";q=100;w=60' in refused.headers["ratelimit-policy"]
    assert '"ping/60s";r=0;' in refused.headers["ratelimit"]


async def test_health_probes_admin_and_static_files_are_exempt(start_app):
    defaults = {"rate_limit_api": "1/minute", "rate_limit_pages": "1/minute", **MEMORY}
    async with start_app(**defaults) as app, client_of(app) as http:
        probes = await statuses(http, "/health/live", 5)
        ready = await statuses(http, "/health", 5)
        static = await statuses(http, "/static/vibetuner/vibetuner.css", 3)
        # The admin answers 404 to anyone but an admin, however often it is asked.
        admin = await statuses(http, "/admin/", 3, headers=HTML)
        # A path that only starts like an exempt one is not exempt.
        lookalike = await statuses(http, "/healthz", 2)
    assert set(probes) == {200} and set(ready) == {200}
    assert set(static) == {200}
    assert admin == [404, 404, 404]
    assert lookalike == [404, 429]


async def test_signed_in_defaults_count_per_session(start_app):
    async with start_app(rate_limit_api="2/minute", **MEMORY) as app:
        user = UserModel(email="s@example.com", name="S", email_verified_at=utcnow())
        await user.insert()
        async with (
            await signed_in(app, user, "203.0.113.1") as one,
            await signed_in(app, user, "203.0.113.1") as two,
            client_of(app, "203.0.113.1") as anonymous,
        ):
            assert await statuses(one, "/nope", 3) == [404, 404, 429]
            # Another session (another browser of the same user) has its own budget,
            # and so has the address without a session.
            assert await statuses(two, "/nope", 3) == [404, 404, 429]
            assert await statuses(anonymous, "/nope", 3) == [404, 404, 429]


async def test_sign_in_limits_use_the_apps_limiter(start_app, outbox):
    # On the in-process backend nothing reaches the database's counters: the sign-in
    # limits moved onto the same limiter as every other limit.
    async with (
        start_app(magic_link_rate_per_email=1, **MEMORY) as app,
        client_of(app) as http,
    ):
        assert (await request_link(http, "one@example.com")).status_code == 200
        refused = await request_link(http, "one@example.com")
        assert await RateLimitCounter.get_pymongo_collection().count_documents({}) == 0
    assert refused.status_code == 429
    assert '"magic-link-email/900s";q=1;w=900' in refused.headers["ratelimit-policy"]
    assert 0 < int(refused.headers["retry-after"]) <= 900
    assert len(outbox) == 1


async def test_limits_off_leaves_the_sign_in_limits_on(start_app):
    async with (
        start_app(rate_limit_enabled=False, magic_link_rate_per_ip=1, **MEMORY) as app,
        client_of(app) as http,
    ):
        assert (await request_link(http, "a@example.com")).status_code == 200
        assert (await request_link(http, "b@example.com")).status_code == 429


router = APIRouter()


@rate_limit("1/minute")
@router.get("/wrong-order")
async def wrong_order() -> dict[str, str]:
    return {}


async def test_a_decorator_above_the_route_stops_the_app_at_startup(limited_settings):
    app = create_app(settings=limited_settings, features=[RateLimitFeature()], routers=[router])
    with pytest.raises(ConfigurationError, match="above the route decorator of wrong_order"):
        async with app.router.lifespan_context(app):
            pass


def test_redis_backend_without_redis_url_is_refused(limited_settings):
    settings = limited_settings.model_copy(update={"rate_limit_backend": "redis"})
    with pytest.raises(ConfigurationError, match="RATE_LIMIT_BACKEND=redis needs REDIS_URL"):
        create_app(settings=settings, features=[RateLimitFeature()])


@pytest.mark.parametrize(
    "text", ["banana", "10/fortnight", "0/minute", "-1/second", "10/0 minutes"]
)
def test_bad_rates_in_the_settings_say_what_is_wrong(text):
    with pytest.raises(pydantic.ValidationError) as refused:
        Settings(_env_file=None, rate_limit_unsafe=text)
    assert "RATE_LIMIT_UNSAFE" in str(refused.value).upper()
    assert repr(text) in str(refused.value)


def test_rates_and_exempt_paths_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_PAGES", "5/second;100/minute")
    monkeypatch.setenv("RATE_LIMIT_EXEMPT_PATHS", "/health,/metrics")
    settings = Settings(_env_file=None)
    assert settings.rate_limit_pages == "5/second;100/minute"
    assert settings.rate_limit_exempt_paths == ["/health", "/metrics"]
    monkeypatch.setenv("RATE_LIMIT_EXEMPT_PATHS", "health")
    with pytest.raises(pydantic.ValidationError, match="not a path"):
        Settings(_env_file=None)


def test_rate_limit_refuses_bad_arguments():
    with pytest.raises(ValueError, match="not a rate"):
        rate_limit("lots")
    with pytest.raises(ValueError, match="unknown rate-limit key"):
        rate_limit("1/minute", key="ip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost"):
        rate_limit("1/minute", cost=0)


async def test_the_default_app_has_the_feature(vibetuner_settings):
    app = create_app(settings=vibetuner_settings)
    assert app_context(app).has_feature("ratelimit")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/minute", [(10, 60)]),
        ("5/second;100/hour", [(5, 1), (100, 3600)]),
        ("30 per 5 minutes", [(30, 300)]),
        ("2/Seconds, 7/day", [(2, 1), (7, 86400)]),
        ("", []),
    ],
)
def test_rates_are_read_from_text(text, expected):
    from vibetuner.rates import parse_rates

    assert [(r.amount, r.seconds) for r in parse_rates(text)] == expected

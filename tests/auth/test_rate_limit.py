"""Rate limits on issuing sign-in links: per email, per client address, stored in MongoDB."""

from __future__ import annotations

import asyncio

import pytest

from tests.auth.conftest import request_link
from vibetuner.auth import rate_limit
from vibetuner.errors import RateLimitExceeded
from vibetuner.models import EmailVerificationToken, RateLimitCounter
from vibetuner.mongo import connect
from vibetuner.ratelimit.counters import MongoCounter
from vibetuner.ratelimit.limiter import Limiter
from vibetuner.rates import Rate


async def test_per_email_limit_answers_429_with_retry_after(app_with, vibetuner_settings, outbox):
    async with app_with(vibetuner_settings, magic_link_rate_per_email=2) as client:
        assert (await request_link(client, "limit@example.com")).status_code == 200
        assert (await request_link(client, "LIMIT@example.com")).status_code == 200
        refused = await request_link(client, "limit@example.com")
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 0 < retry_after <= vibetuner_settings.magic_link_rate_window_seconds
        assert "Too many" in refused.json()["detail"]
        # Another address is not affected.
        assert (await request_link(client, "other@example.com")).status_code == 200
    assert [m["To"] for m in outbox()] == ["limit@example.com"] * 2 + ["other@example.com"]


async def test_per_ip_limit_counts_every_address(app_with, vibetuner_settings, outbox):
    async with app_with(vibetuner_settings, magic_link_rate_per_ip=3) as client:
        for n in range(3):
            assert (await request_link(client, f"p{n}@example.com")).status_code == 200
        refused = await request_link(client, "p9@example.com")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert await EmailVerificationToken.find_all().count() == 3
    assert len(outbox()) == 3


async def test_limit_page_for_browsers(app_with, vibetuner_settings):
    async with app_with(vibetuner_settings, magic_link_rate_per_email=1) as client:
        await request_link(client, "page@example.com")
        refused = await client.post(
            "/auth/magic-link", data={"email": "page@example.com"}, headers={"Accept": "text/html"}
        )
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert "Too many attempts. Try again in" in refused.text  # the error table's words


async def test_concurrent_requests_never_exceed_the_limit(app_with, vibetuner_settings, outbox):
    async with app_with(vibetuner_settings, magic_link_rate_per_email=5) as client:
        responses = await asyncio.gather(
            *(request_link(client, "burst@example.com") for _ in range(15))
        )
    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 10
    assert len(outbox()) == 5


async def test_counters_live_in_mongodb_without_the_address_in_clear(client):
    await request_link(client, "stored@example.com")
    counters = await RateLimitCounter.get_pymongo_collection().find().to_list()
    assert len(counters) == 2  # one per email, one per client address
    for counter in counters:
        assert counter["hits"] == 1
        assert "stored@example.com" not in str(counter)
        assert counter["expires_at"] is not None
    indexes = await RateLimitCounter.get_pymongo_collection().index_information()
    assert any(
        spec.get("expireAfterSeconds") == 0 and dict(spec["key"]) == {"expires_at": 1}
        for spec in indexes.values()
    )


@pytest.mark.parametrize("mongo_backend", ["mongodb"], indirect=True)
async def test_two_apps_on_one_database_share_the_limit(app_with, vibetuner_settings, outbox):
    # Two app instances with their own clients, as two processes behind a load balancer.
    settings = type(vibetuner_settings)(
        _env_file=None, **{**vibetuner_settings.model_dump(), "magic_link_rate_per_email": 2}
    )
    try:
        async with app_with(settings) as first, app_with(settings) as second:
            assert (await request_link(first, "shared@example.com")).status_code == 200
            assert (await request_link(second, "shared@example.com")).status_code == 200
            assert (await request_link(first, "shared@example.com")).status_code == 429
            assert (await request_link(second, "shared@example.com")).status_code == 429
    finally:
        mongo = await connect(settings)
        await mongo.client.drop_database(mongo.database.name)
        await mongo.close()
    assert len(outbox()) == 2


async def test_hits_in_one_window_add_up(vibetuner_db):
    limiter = Limiter(MongoCounter(), "mongodb")
    rates = [Rate(2, 600)]
    states = [(await limiter.hit("demo", "address:203.0.113.9", rates))[0] for _ in range(3)]
    assert [s.count for s in states] == [1, 2, 3]
    assert [s.exceeded for s in states] == [False, False, True]
    with pytest.raises(RateLimitExceeded) as refused:
        await limiter.enforce("demo", "address:203.0.113.9", rates)
    assert 0 < refused.value.retry_after <= 600


async def test_an_invalid_email_does_not_count(app_with, vibetuner_settings):
    async with app_with(vibetuner_settings, magic_link_rate_per_ip=1) as client:
        assert (await request_link(client, "broken")).status_code == 422
        assert (await request_link(client, "fine@example.com")).status_code == 200


async def test_plus_tags_and_letter_case_share_the_per_address_limit(
    app_with, vibetuner_settings, outbox
):
    # The attacker floods one mailbox through tagged variants of its address: each is a
    # new string, but they all land in the same inbox.
    async with app_with(vibetuner_settings, magic_link_rate_per_email=2) as client:
        assert (await request_link(client, "ada@example.com")).status_code == 200
        assert (await request_link(client, "Ada+news@Example.com")).status_code == 200
        variants = ["ada+1@example.com", "ADA+2@example.com", "ada@EXAMPLE.com"]
        variants += [f"ada+{n}@example.com" for n in range(3, 7)]
        for variant in variants:
            refused = await request_link(client, variant)
            assert refused.status_code == 429, variant
        # Another mailbox at the same domain, and one whose name only starts alike.
        assert (await request_link(client, "adam@example.com")).status_code == 200
        assert (await request_link(client, "ada@example.org")).status_code == 200
    # Each message went to the address exactly as typed (case aside): the tag is kept.
    assert [m["To"] for m in outbox()] == [
        "ada@example.com",
        "ada+news@example.com",
        "adam@example.com",
        "ada@example.org",
    ]


def test_mailbox_key_folds_tags_and_case_only():
    assert rate_limit.mailbox_key("Ada+Tag@Example.COM") == "ada@example.com"
    assert rate_limit.mailbox_key("ada+a+b@example.com") == "ada@example.com"
    assert rate_limit.mailbox_key("ada.lovelace@example.com") == "ada.lovelace@example.com"
    # An address that is only a tag keeps its local part rather than becoming "@domain".
    assert rate_limit.mailbox_key("+tag@example.com") == "+tag@example.com"

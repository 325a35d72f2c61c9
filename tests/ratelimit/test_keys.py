"""Whom a limit counts: addresses (behind trusted proxies only), users, sessions, a
function's value; and keys that must never collide."""

from __future__ import annotations

from tests.ratelimit.conftest import client_of, signed_in, statuses
from vibetuner.models import UserModel
from vibetuner.models.mixins import utcnow
from vibetuner.ratelimit.limiter import Limiter
from vibetuner.testing import app_context

MEMORY = {"rate_limit_backend": "memory"}


async def new_user(name: str) -> UserModel:
    person = UserModel(email=f"{name}@example.com", name=name, email_verified_at=utcnow())
    await person.insert()
    return person


async def test_each_client_address_has_its_own_budget(start_app):
    async with start_app(**MEMORY) as app:
        async with client_of(app, "203.0.113.1") as one, client_of(app, "203.0.113.2") as two:
            assert await statuses(one, "/ping", 4) == [200, 200, 200, 429]
            assert await statuses(two, "/ping", 1) == [200]


async def test_ipv6_clients_count_per_64_network(start_app):
    async with start_app(**MEMORY) as app:
        # An attacker with a /64 cycles through its addresses.
        answers = []
        for n in range(4):
            async with client_of(app, f"2001:db8:1:2::{n + 1}") as http:
                answers.append((await http.get("/ping")).status_code)
    assert answers == [200, 200, 200, 429]


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(start_app):
    async with start_app(**MEMORY) as app, client_of(app, "198.51.100.7") as http:
        got = [
            (await http.get("/ping", headers={"X-Forwarded-For": f"192.0.2.{n}"})).status_code
            for n in range(4)
        ]
    assert got == [200, 200, 200, 429]


async def test_behind_a_trusted_proxy_the_forwarded_client_counts(start_app):
    async with start_app(trusted_proxies=["10.0.0.0/8"], **MEMORY) as app:
        async with client_of(app, "10.0.0.2") as proxy:
            first = [
                (await proxy.get("/ping", headers={"X-Forwarded-For": "192.0.2.1"})).status_code
                for _ in range(4)
            ]
            # Another client through the same proxy has its own budget ...
            other = await proxy.get("/ping", headers={"X-Forwarded-For": "192.0.2.2"})
            # ... and one that puts a fake first hop in front is still counted by the hop
            # the proxy saw.
            spoofed = await proxy.get("/ping", headers={"X-Forwarded-For": "6.6.6.6, 192.0.2.1"})
    assert first == [200, 200, 200, 429]
    assert other.status_code == 200
    assert spoofed.status_code == 429


async def test_user_key_is_shared_by_the_users_sessions_and_apart_from_others(start_app):
    async with start_app(**MEMORY) as app:
        ada, bob = await new_user("ada"), await new_user("bob")
        async with (
            await signed_in(app, ada, "203.0.113.1") as laptop,
            await signed_in(app, ada, "203.0.113.2") as phone,
            await signed_in(app, bob, "203.0.113.1") as other,
            client_of(app, "203.0.113.1") as anonymous,
        ):
            assert await statuses(laptop, "/by-user", 2) == [200, 200]
            # Another session of the same user, from another address: same budget.
            assert await statuses(phone, "/by-user", 1) == [429]
            # Another user behind the same address: a budget of their own.
            assert await statuses(other, "/by-user", 2) == [200, 200]
            # Without a session the address counts (and is not the users' budget).
            assert await statuses(anonymous, "/by-user", 3) == [200, 200, 429]


async def test_session_key_counts_each_session(start_app):
    async with start_app(**MEMORY) as app:
        ada = await new_user("ada")
        async with (
            await signed_in(app, ada) as first,
            await signed_in(app, ada) as second,
        ):
            assert await statuses(first, "/by-session", 3) == [200, 200, 429]
            assert await statuses(second, "/by-session", 2) == [200, 200]


async def test_dropping_the_cookie_does_not_escape_a_user_limit(start_app):
    async with start_app(**MEMORY) as app, client_of(app, "203.0.113.9") as anonymous:
        # Anonymous requests fall back to the address: a fresh cookie-less client from
        # the same address shares the budget.
        assert await statuses(anonymous, "/by-session", 2) == [200, 200]
        async with client_of(app, "203.0.113.9") as again:
            assert await statuses(again, "/by-session", 1) == [429]


async def test_a_key_function_counts_by_its_value(start_app):
    async with start_app(**MEMORY) as app, client_of(app) as http:
        acme = await statuses(http, "/by-tenant", 3, headers={"X-Tenant": "acme"})
        globex = await statuses(http, "/by-tenant", 2, headers={"X-Tenant": "globex"})
        # No value: the address counts.
        anonymous = await statuses(http, "/by-tenant", 3)
    assert acme == [200, 200, 429]
    assert globex == [200, 200]
    assert anonymous == [200, 200, 429]


async def test_a_key_value_never_collides_with_another_kind_of_key(start_app):
    # Both routes share the limit name; one counts by X-Tenant, the other by address.
    # A client that sends its own address as the tenant must not drain (or reuse) the
    # address budget.
    async with start_app(**MEMORY) as app, client_of(app, "203.0.113.5") as http:
        forged = {"X-Tenant": "address:203.0.113.5"}
        assert await statuses(http, "/by-tenant", 3, headers=forged) == [200, 200, 429]
        assert await statuses(http, "/by-address-same-name", 3) == [200, 200, 429]
        plain = {"X-Tenant": "203.0.113.5"}
        assert await statuses(http, "/by-tenant", 3, headers=plain) == [200, 200, 429]


async def test_path_variants_of_a_route_share_its_budget(start_app):
    async with start_app(**MEMORY) as app, client_of(app) as http:
        got = [
            (await http.get(path)).status_code
            for path in ("/notes/1", "/notes/2", "/notes/%31", "/notes/3?x=1")
        ]
    assert got == [200, 200, 429, 429]


async def test_a_huge_key_value_makes_a_counter_of_bounded_size(start_app):
    # The value comes from the client: it is hashed, so a 20 kB header neither grows
    # the counter's key nor stores what was sent.
    async with start_app(**MEMORY) as app, client_of(app) as http:
        huge = "x" * 20_000
        assert await statuses(http, "/by-tenant", 3, headers={"X-Tenant": huge}) == [
            200,
            200,
            429,
        ]
        counter = app_context(app).get(Limiter).counter
    assert all(len(key) < 200 for key in counter.counts)
    assert not any("xxxx" in key for key in counter.counts)

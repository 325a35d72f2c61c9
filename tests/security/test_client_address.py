"""The client address behind TRUSTED_PROXIES, and the rate limiter that counts by it."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from vibetuner.testing import default_app
from vibetuner.web.client_address import (
    forwarded_client,
    rate_limit_key,
    uvicorn_proxy_options,
)


@pytest.mark.parametrize(
    ("peer", "forwarded", "proxies", "client"),
    [
        # Nobody trusted (the default): the header is anyone's to forge.
        ("203.0.113.9", "198.51.100.1", [], "203.0.113.9"),
        # One reverse proxy on the same host.
        ("127.0.0.1", "198.51.100.1", ["127.0.0.1"], "198.51.100.1"),
        # The client forged an entry on the left: only the proxy's own entry counts.
        ("127.0.0.1", "1.2.3.4, 198.51.100.1", ["127.0.0.1"], "198.51.100.1"),
        # A load balancer in front of a proxy, both in the private network.
        ("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.1", ["10.0.0.0/8"], "198.51.100.1"),
        # A peer that is not a proxy: its header is ignored.
        ("198.51.100.7", "1.2.3.4", ["10.0.0.0/8"], "198.51.100.7"),
        # Every hop trusted: the left-most one.
        ("10.0.0.2", "10.0.0.5, 10.0.0.1", ["10.0.0.0/8"], "10.0.0.5"),
        # Garbage in the chain: nothing left of it can be believed.
        ("127.0.0.1", "1.2.3.4, not-an-ip", ["127.0.0.1"], "127.0.0.1"),
        # Ports and brackets as some proxies write them.
        ("127.0.0.1", "[2001:db8::1]:443", ["127.0.0.1"], "2001:db8::1"),
        ("127.0.0.1", "198.51.100.1:5123", ["127.0.0.1"], "198.51.100.1"),
        ("10.1.1.1", "198.51.100.1", ["*"], "198.51.100.1"),
    ],
)
def test_the_client_is_the_right_most_untrusted_hop(peer, forwarded, proxies, client):
    assert forwarded_client(peer, forwarded, proxies) == client


def test_ipv6_clients_are_counted_per_64():
    assert rate_limit_key("2001:db8:1:2::1") == rate_limit_key("2001:db8:1:2:ffff::9")
    assert rate_limit_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:3::1") != rate_limit_key("2001:db8:1:2::1")
    assert rate_limit_key("198.51.100.1") == "198.51.100.1"
    assert rate_limit_key("::ffff:198.51.100.1") == "198.51.100.1"


def test_uvicorn_gets_the_same_list():
    assert uvicorn_proxy_options([]) == {"proxy_headers": False}
    assert uvicorn_proxy_options(["10.0.0.0/8"]) == {
        "proxy_headers": True,
        "forwarded_allow_ips": ["10.0.0.0/8"],
    }


@asynccontextmanager
async def site(settings: Any, **changes: Any):
    changed = type(settings)(_env_file=None, **{**settings.model_dump(), **changes})
    application = default_app(settings=changed)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)  # the peer is 127.0.0.1
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def ask(http: httpx.AsyncClient, n: int, forwarded: str) -> int:
    response = await http.post(
        "/auth/magic-link",
        json={"email": f"p{n}@example.com"},
        headers={"X-Forwarded-For": forwarded},
    )
    return response.status_code


async def test_rate_limit_counts_the_client_behind_a_trusted_proxy(vibetuner_settings):
    async with site(
        vibetuner_settings, trusted_proxies=["127.0.0.1"], magic_link_rate_per_ip=2
    ) as http:
        assert await ask(http, 1, "2001:db8:1:2::1") == 200
        # Another address of the same /64: the same client.
        assert await ask(http, 2, "2001:db8:1:2::abcd") == 200
        assert await ask(http, 3, "2001:db8:1:2::ffff") == 429
        # Forging an entry on the left does not help.
        assert await ask(http, 4, "9.9.9.9, 2001:db8:1:2::1") == 429
        # Other clients behind the same proxy have their own count.
        assert await ask(http, 5, "2001:db8:9:9::1") == 200
        assert await ask(http, 6, "198.51.100.1") == 200


async def test_forwarded_for_is_ignored_without_trusted_proxies(vibetuner_settings):
    async with site(vibetuner_settings, magic_link_rate_per_ip=2) as http:
        assert await ask(http, 1, "198.51.100.1") == 200
        assert await ask(http, 2, "198.51.100.2") == 200
        # A new forged address each time: still the one peer, over its limit.
        assert await ask(http, 3, "198.51.100.3") == 429


@pytest.mark.parametrize(
    ("forwarded", "network"),
    [("198.51.100.77", "198.51.100.0/24"), ("2001:db8:1:2::9", "2001:db8:1::/48")],
)
async def test_audit_entries_and_sessions_name_the_client_behind_the_proxy(
    vibetuner_settings, forwarded, network
):
    # Behind a trusted proxy whose server does not rewrite the peer (any ASGI server but
    # `vibetuner run`'s uvicorn): the audit log and the sessions list show the client's
    # network, never the proxy's, nor an address a client forged on the left.
    from tests.admin.conftest import build_admin_app, make_user
    from vibetuner.models import UserSession
    from vibetuner.models.audit import AuditLog
    from vibetuner.testing import (
        app_context,
        follow_sign_in_link,
        send_csrf_token,
        set_session_cookie,
        signed_in_cookie,
    )

    changed = type(vibetuner_settings)(
        _env_file=None, **{**vibetuner_settings.model_dump(), "trusted_proxies": ["127.0.0.1"]}
    )
    application = build_admin_app(changed)
    headers = {"X-Forwarded-For": f"6.6.6.6, {forwarded}"}
    async with application.router.lifespan_context(application):
        settings = app_context(application).settings
        admin = await make_user("lead@example.com", roles=["admin"])
        member = await make_user("member@example.com")
        transport = httpx.ASGITransport(app=application)  # the peer is 127.0.0.1
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as http:
            set_session_cookie(http, settings, await signed_in_cookie(settings, admin))
            send_csrf_token(http, settings.session_cookie_name)
            done = await http.post(
                f"/admin/_api/users/action?name=deactivate&pks={member.id}", data={}
            )
            assert done.status_code == 200, done.text[:300]
        (entry,) = await AuditLog.find({"action": "deactivate"}).to_list()
        assert entry.ip_prefix == network
        # A sign-in through the same proxy.
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as browser:
            send_csrf_token(browser, settings.session_cookie_name)
            await browser.post("/auth/magic-link", data={"email": "lead@example.com"})
            from tests.auth.conftest import magic_link
            from vibetuner.testing import Outbox

            link = magic_link(Outbox(settings.email_file_dir).last)
            assert (await follow_sign_in_link(browser, link)).status_code == 303
        newest = await UserSession.find({"user_id": admin.id}).sort("-created_at").first_or_none()
        assert newest is not None and newest.ip_prefix == network

"""The address of the client behind the reverse proxies the app trusts.

``TRUSTED_PROXIES`` lists the addresses or networks of the proxies in front of the
app (default: none). When the connection comes from one of them, the client is the
right-most address of ``X-Forwarded-For`` that is not a trusted proxy -- each proxy
appends the address it got the request from, and only the entries added by trusted
proxies can be believed. Otherwise ``X-Forwarded-For`` is ignored: anyone can send one.

``vibetuner run`` hands the same list to uvicorn (``forwarded_allow_ips``) so that
``request.client`` and the URL scheme agree; :func:`client_address` gives the same
answer whichever server runs the app. IPv6 clients are counted per /64 network, the
block one household or server usually gets, so that one client cannot dodge a rate
limit by cycling through its addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from vibetuner.web.context import app_context

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_PREFIX = 64


@lru_cache(maxsize=32)
def _networks(proxies: tuple[str, ...]) -> tuple[bool, tuple[IPNetwork, ...]]:
    trust_all = "*" in proxies
    networks = tuple(ipaddress.ip_network(p, strict=False) for p in proxies if p != "*")
    return trust_all, networks


def _parse(host: str) -> IPAddress | None:
    host = host.strip()
    if host.startswith("["):  # "[2001:db8::1]:443"
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:  # "203.0.113.7:51234"
        host = host.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_trusted(address: IPAddress, proxies: Sequence[str]) -> bool:
    """True when ``address`` is one of ``proxies`` (addresses, networks, or ``*``)."""
    trust_all, networks = _networks(tuple(proxies))
    return trust_all or any(address in network for network in networks)


def forwarded_client(peer: str | None, forwarded_for: str | None, proxies: Sequence[str]) -> str:
    """The client's address given the connection's ``peer`` and ``X-Forwarded-For``.

    The right-most untrusted hop; the left-most entry when every hop is trusted; the
    peer itself when it is not a trusted proxy or the header says nothing usable.
    """
    peer_address = _parse(peer) if peer else None
    if peer_address is None:
        return peer or ""
    if not proxies or not forwarded_for or not is_trusted(peer_address, proxies):
        return str(peer_address)
    hops = [_parse(part) for part in forwarded_for.split(",")]
    for hop in reversed(hops):
        if hop is None:
            # Garbage in the chain: nothing to its left can be believed.
            return str(peer_address)
        if not is_trusted(hop, proxies):
            return str(hop)
    return str(hops[0]) if hops else str(peer_address)


def rate_limit_key(address: str) -> str:
    """``address`` as rate limits count it: IPv4 as is, IPv6 as its /64 network."""
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed) if parsed is not None else address


def client_address(request: Any) -> str | None:
    """The client of ``request`` as the app counts it (rate limits, logs).

    The right-most untrusted hop of ``X-Forwarded-For`` when the connection comes from
    a trusted proxy, else the peer address; IPv6 clients as their /64 network. None
    when the server gives no peer address (a Unix socket without a proxy).
    """
    peer = request.client.host if request.client else None
    if peer is None:
        return None
    proxies = app_trusted_proxies(request.app)
    forwarded = ", ".join(request.headers.getlist("x-forwarded-for")) or None
    return rate_limit_key(forwarded_client(peer, forwarded, proxies))


def app_trusted_proxies(app: Any) -> tuple[str, ...]:
    """``TRUSTED_PROXIES`` of ``app`` (from its app context's settings)."""

    return tuple(app_context(app).settings.trusted_proxies)


def uvicorn_proxy_options(trusted_proxies: Sequence[str]) -> dict[str, Any]:
    """uvicorn settings for ``TRUSTED_PROXIES``: proxy headers only from those proxies.

    With none trusted, uvicorn ignores ``X-Forwarded-*`` altogether (its own default
    would trust 127.0.0.1, or ``FORWARDED_ALLOW_IPS``).
    """
    if not trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(trusted_proxies)}

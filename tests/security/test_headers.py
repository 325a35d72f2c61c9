"""Security headers on every response: CSP with per-response nonces, framing, sniffing,
referrer, no-store for signed-in users, HSTS in production; routes can relax the CSP."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse

from vibetuner import create_app
from vibetuner.config import Settings
from vibetuner.web.security_headers import (
    csp_nonce,
    csp_sources,
    parse_policy,
    relax_csp,
    replace_csp,
)

PRODUCTION = {
    "environment": "production",
    "session_key": "Zr8-Qe2vLx0bN6tKp3WmYc9HfUa1Sj5GdTo7Ei4Rn_VwXy",
    "mongodb_url": "mongodb://db.internal:27017/app",
    "email_backend": "smtp",
    "smtp_host": "smtp.example.com",
    "base_url": "https://app.example.com",
}


def policy_of(response: httpx.Response) -> dict[str, list[str]]:
    return parse_policy(response.headers["content-security-policy"])


async def test_framework_pages_need_no_inline_code(client):
    page = await client.get("/auth/login", headers={"Accept": "text/html"})
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
    assert "<style" not in page.text and "style=" not in page.text
    assert policy_of(page)["script-src"] == ["'self'"]
    assert policy_of(page)["style-src"] == ["'self'"]


async def test_pages_get_a_nonce_that_their_inline_style_and_script_carry(client, app, tmp_path):
    from vibetuner import add_template_dir

    (tmp_path / "auth").mkdir()
    (tmp_path / "auth" / "login.html").write_text(
        '{% extends "base.html" %}{% block head %}<style nonce="{{ csp_nonce() }}">'
        "h1 { color: red }</style>{% endblock %}{% block content %}<h1>Hi</h1>"
        '<script nonce="{{ csp_nonce() }}">document.title = "x";</script>{% endblock %}'
    )
    add_template_dir(app, tmp_path)
    page = await client.get("/auth/login", headers={"Accept": "text/html"})
    policy = policy_of(page)
    nonces = set(re.findall(r'<(?:style|script) nonce="([^"]+)"', page.text))
    assert len(nonces) == 1
    (nonce,) = nonces
    assert f"'nonce-{nonce}'" in policy["script-src"]
    assert f"'nonce-{nonce}'" in policy["style-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in page.headers  # not in production
    assert "no-store" not in page.headers.get("cache-control", "")  # nobody signed in
    again = await client.get("/auth/login", headers={"Accept": "text/html"})
    assert nonce not in again.headers["content-security-policy"]


async def test_answers_without_inline_code_get_no_nonce(client):
    response = await client.get("/health")
    policy = policy_of(response)
    assert policy["script-src"] == ["'self'"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_signed_in_answers_are_not_stored(signed_in_client):
    me = await signed_in_client.get("/auth/me")
    assert me.status_code == 200
    assert me.headers["cache-control"] == "no-store"


async def test_blob_downloads_keep_their_own_policy(signed_in_client):
    uploaded = await signed_in_client.post(
        "/blobs", files={"file": ("page.html", b"<script>alert(1)</script>", "text/html")}
    )
    content = await signed_in_client.get(f"/blobs/{uploaded.json()['id']}/content")
    assert content.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert content.headers["cache-control"] == "private, no-cache"
    assert content.headers["x-content-type-options"] == "nosniff"


async def test_csrf_refusals_get_the_headers_too(client):
    refused = await client.post(
        "/auth/magic-link", data={"email": "a@example.com"}, headers={"Origin": "null"}
    )
    assert refused.status_code == 403
    assert refused.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in refused.headers


def app_with_routes(settings: Settings) -> Any:
    application = create_app(settings=settings)

    @application.get("/map", dependencies=[Depends(csp_sources(img_src="https://tiles.example"))])
    async def map_page(request: Request) -> HTMLResponse:
        return HTMLResponse(f'<script nonce="{csp_nonce(request)}">1</script>')

    @application.get("/embed")
    async def embed(request: Request) -> HTMLResponse:
        relax_csp(request, frame_ancestors=["https://partner.example"], frame_src="https:")
        return HTMLResponse("embeddable")

    @application.get("/legacy")
    async def legacy(request: Request) -> HTMLResponse:
        replace_csp(request, None)
        return HTMLResponse("no policy")

    @application.get("/own")
    async def own() -> JSONResponse:
        return JSONResponse({}, headers={"Content-Security-Policy": "default-src 'none'"})

    @application.get("/touch")
    async def touch(request: Request) -> dict:
        request.session["x"] = 1
        return {}

    return application


async def get(application: Any, path: str, base_url: str = "http://testserver") -> Any:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
        return await http.get(path)


async def test_routes_relax_or_replace_the_policy(vibetuner_settings):
    application = app_with_routes(vibetuner_settings)
    mapped = await get(application, "/map")
    policy = policy_of(mapped)
    assert "https://tiles.example" in policy["img-src"] and "'self'" in policy["img-src"]
    assert any(source.startswith("'nonce-") for source in policy["script-src"])

    embedded = await get(application, "/embed")
    policy = policy_of(embedded)
    assert policy["frame-ancestors"] == ["https://partner.example"]
    assert "x-frame-options" not in embedded.headers  # the route allows framing

    legacy = await get(application, "/legacy")
    assert "content-security-policy" not in legacy.headers
    assert legacy.headers["x-content-type-options"] == "nosniff"

    own = await get(application, "/own")
    assert own.headers["content-security-policy"] == "default-src 'none'"


async def test_production_adds_hsts(vibetuner_settings):
    application = app_with_routes(Settings(_env_file=None, **PRODUCTION))
    response = await get(application, "/touch", base_url="https://testserver")
    assert response.headers["strict-transport-security"] == "max-age=63072000"


@pytest.mark.parametrize(
    ("changes", "check"),
    [
        ({"csp_report_only": True}, lambda h: "content-security-policy-report-only" in h),
        ({"security_headers": False}, lambda h: "x-frame-options" not in h),
        (
            {"content_security_policy": "default-src 'self'; frame-ancestors 'self'"},
            lambda h: h["x-frame-options"] == "SAMEORIGIN",
        ),
    ],
)
async def test_settings_change_the_headers(vibetuner_settings, changes, check):
    settings = Settings(_env_file=None, **{**vibetuner_settings.model_dump(), **changes})
    response = await get(app_with_routes(settings), "/map")
    assert check(response.headers), dict(response.headers)


async def test_unsafe_inline_chosen_by_the_app_is_kept(vibetuner_settings):
    settings = Settings(
        _env_file=None,
        **{
            **vibetuner_settings.model_dump(),
            "content_security_policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
        },
    )
    policy = policy_of(await get(app_with_routes(settings), "/map"))
    # A nonce next to 'unsafe-inline' would switch it off in browsers.
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert any(source.startswith("'nonce-") for source in policy["default-src"])

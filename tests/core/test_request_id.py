"""Request ids: every answer has one, a trusted proxy's is kept, anyone else's is not."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter

from tests.helpers import capture_json_logs
from vibetuner import create_app
from vibetuner.config import Settings

HEX_ID = re.compile(r"[0-9a-f]{32}")
router = APIRouter()


@router.get("/boom")
async def boom() -> None:
    raise RuntimeError("kaboom")


@router.get("/talk")
async def talk() -> dict[str, str]:
    logging.getLogger("myapp.routes").info("hello from a route")
    return {"ok": "yes"}


async def serve(settings: Settings, peer: str = "203.0.113.9") -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings=settings, routers=[router])
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(
            app=application, raise_app_exceptions=False, client=(peer, 51234)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def http(vibetuner_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in serve(vibetuner_settings):
        yield client


@pytest.fixture
async def behind_proxy(vibetuner_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    settings = vibetuner_settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]})
    async for client in serve(settings, peer="10.1.2.3"):
        yield client


async def test_every_answer_has_its_own_id(http: httpx.AsyncClient) -> None:
    ids = [(await http.get(path)).headers.get("X-Request-ID") for path in ("/health", "/health")]
    missing = await http.get("/nowhere")
    ids.append(missing.headers.get("X-Request-ID"))
    assert all(value is not None and HEX_ID.fullmatch(value) for value in ids), ids
    assert len(set(ids)) == 3


async def test_an_id_sent_by_anyone_is_replaced(http: httpx.AsyncClient) -> None:
    # Not from a trusted proxy: the client cannot choose the id its lines are logged under.
    answer = await http.get("/health", headers={"X-Request-ID": "pick-me"})
    assert answer.headers["X-Request-ID"] != "pick-me"
    assert HEX_ID.fullmatch(answer.headers["X-Request-ID"])


async def test_a_trusted_proxys_id_is_kept(behind_proxy: httpx.AsyncClient) -> None:
    answer = await behind_proxy.get("/health", headers={"X-Request-ID": "lb-7f3a.42_x"})
    assert answer.headers["X-Request-ID"] == "lb-7f3a.42_x"


@pytest.mark.parametrize(
    "sent",
    ["a" * 129, "two words", "evil\tline", 'quote"d', "ümlaut", ""],
)
async def test_a_trusted_proxys_id_must_be_a_sane_token(
    behind_proxy: httpx.AsyncClient, sent: str
) -> None:
    answer = await behind_proxy.get("/health", headers=[(b"X-Request-ID", sent.encode("utf-8"))])
    assert answer.headers["X-Request-ID"] != sent
    assert HEX_ID.fullmatch(answer.headers["X-Request-ID"])


async def test_a_server_error_quotes_the_id(http: httpx.AsyncClient) -> None:
    api = await http.get("/boom", headers={"Accept": "application/json"})
    assert api.status_code == 500
    assert api.json()["request_id"] == api.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(api.headers["X-Request-ID"])

    page = await http.get("/boom", headers={"Accept": "text/html"})
    assert page.status_code == 500
    assert page.headers["X-Request-ID"] in page.text
    assert "quote the request id" in page.text


async def test_an_error_page_shows_the_id_and_client_errors_keep_their_body(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/nowhere", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["X-Request-ID"] in page.text
    api = await http.get("/auth/me", headers={"Accept": "application/json"})
    assert api.json() == {"detail": "Not signed in.", "code": "not_signed_in"}


async def test_log_lines_of_a_request_carry_its_id_and_route(http: httpx.AsyncClient) -> None:
    with capture_json_logs() as logs:
        answer = await http.get("/talk")
        failed = await http.get("/boom", headers={"Accept": "application/json"})
    (said,) = [e for e in logs.entries() if e["message"] == "hello from a route"]
    assert said["request_id"] == answer.headers["X-Request-ID"]
    assert said["logger"] == "myapp.routes" and said["route"] == "/talk"
    assert said["method"] == "GET" and said["level"] == "INFO"
    (error,) = [e for e in logs.entries() if e["logger"] == "vibetuner.errors"]
    assert error["request_id"] == failed.headers["X-Request-ID"]
    assert "kaboom" in error["message"]

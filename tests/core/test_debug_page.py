"""In development a browser sees what broke; elsewhere, and for API clients, nothing of it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Request

from vibetuner import create_app
from vibetuner.config import Settings
from vibetuner.web.pages import render

router = APIRouter()


@router.get("/boom")
async def boom() -> None:
    api_key = "local-secret-value"  # noqa: F841 -- a local the page must mask
    raise RuntimeError("kaboom")


@router.get("/missing-template")
async def missing_template(request: Request) -> Any:
    return render(request, "nowhere/missing.html", {})


async def answers(settings: Settings, path: str, accept: str) -> httpx.Response:
    app = create_app(settings=settings, features=[], routers=[router])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.get(
                path, headers={"Accept": accept, "Cookie": "other=cookie-secret-value"}
            )


@pytest.fixture
def development(vibetuner_settings: Settings) -> Settings:
    return vibetuner_settings.model_copy(update={"environment": "development"})


async def test_development_shows_the_traceback_to_a_browser(development: Settings) -> None:
    page = await answers(development, "/boom", "text/html")
    assert page.status_code == 500
    assert "RuntimeError at GET /boom" in page.text and "kaboom" in page.text
    assert "raise RuntimeError(&quot;kaboom&quot;)" in page.text  # the app's own frame, with source
    assert "framework frames" in page.text
    # A local named like a key, and the Cookie header, are masked.
    assert "<th>api_key</th><td>********</td>" in page.text
    assert "cookie-secret-value" not in page.text


async def test_development_names_a_missing_template(development: Settings) -> None:
    page = await answers(development, "/missing-template", "text/html")
    assert page.status_code == 500 and "TemplateNotFound" in page.text
    assert "nowhere/missing.html" in page.text


@pytest.mark.parametrize("environment", ["test", "production"])
async def test_elsewhere_the_visitor_learns_nothing(
    vibetuner_settings: Settings, environment: str
) -> None:
    settings = vibetuner_settings.model_copy(update={"environment": environment})
    page = await answers(settings, "/boom", "text/html")
    assert page.status_code == 500
    assert "kaboom" not in page.text and "Traceback" not in page.text


async def test_api_clients_never_get_the_traceback(development: Settings) -> None:
    answer = await answers(development, "/boom", "application/json")
    assert answer.status_code == 500
    assert answer.json() == {
        "detail": answer.json()["detail"],
        "code": "internal_error",
        "request_id": answer.headers["X-Request-ID"],
    }
    assert "kaboom" not in answer.text

"""An app with the billing feature next to vibetuner's own, and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.thirdparty.billing import BillingFeature
from vibetuner import AdminFeature, AuthFeature, BlobsFeature, JobsFeature, create_app
from vibetuner.testing import app_context, send_csrf_token, set_session_cookie, signed_in_cookie


def build_billing_app(settings: Any) -> Any:
    # JobsFeature([]): no jobs of its own, so mark_paid runs only if the hook hands it over.
    features = [AuthFeature(), BlobsFeature(), JobsFeature([]), AdminFeature(), BillingFeature()]
    return create_app(settings=settings, features=features)


@pytest.fixture
async def billing_app(vibetuner_settings: Any) -> AsyncIterator[Any]:
    application = build_billing_app(vibetuner_settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http_for(billing_app: Any) -> AsyncIterator[Any]:
    """``await http_for(user_or_None, html=False)``: a client signed in as the user (or not)."""
    settings = app_context(billing_app).settings
    opened: list[httpx.AsyncClient] = []

    async def make(person: Any, *, html: bool = False) -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=billing_app),
            base_url="http://testserver",
            headers={"Accept": "text/html"} if html else {},
        )
        opened.append(http)
        if person is not None:
            set_session_cookie(http, settings, await signed_in_cookie(settings, person))
        send_csrf_token(http, settings.session_cookie_name)
        return http

    yield make
    for http in opened:
        await http.aclose()

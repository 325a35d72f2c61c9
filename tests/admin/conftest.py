"""An app with the admin (and jobs, and an app model of its own), and helpers for its pages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from beanie import Document
from pydantic import Field

from vibetuner.testing import app_context, send_csrf_token, set_session_cookie, signed_in_cookie


class Memo(Document):
    """An app model registered with one line: ``AdminFeature(models=[Memo])``."""

    title: str = Field(max_length=200)
    body: str = ""
    # A secret by its name: never shown, exported, or edited in the admin.
    api_token: str = ""

    class Settings:
        name = "memos"


def build_admin_app(settings: Any) -> Any:
    from tests.jobs.jobs_for_tests import record  # the job the admin's retry test runs
    from vibetuner import create_app
    from vibetuner.admin import AdminFeature
    from vibetuner.app import default_features
    from vibetuner.jobs.feature import JobsFeature

    return create_app(
        settings=settings,
        features=[*default_features(), JobsFeature([record]), AdminFeature(models=[Memo])],
        models=[Memo],
    )


@pytest.fixture
async def admin_app(vibetuner_settings: Any) -> AsyncIterator[Any]:
    application = build_admin_app(vibetuner_settings)
    async with application.router.lifespan_context(application):
        yield application


async def make_user(email: str | None = None, **fields: Any) -> Any:
    from vibetuner.models import UserModel
    from vibetuner.models.mixins import utcnow

    person = UserModel(
        email=email or f"u-{uuid.uuid4().hex[:8]}@example.com",
        email_verified_at=utcnow(),
        **fields,
    )
    await person.insert()
    return person


@pytest.fixture
async def browser_for(admin_app: Any) -> AsyncIterator[Any]:
    """``await browser_for(user_or_None)``: an HTTP client signed in as the user (or not)."""
    settings = app_context(admin_app).settings
    opened: list[httpx.AsyncClient] = []

    async def make(person: Any) -> httpx.AsyncClient:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=admin_app),
            base_url="http://testserver",
            headers={"Accept": "text/html"},
        )
        opened.append(http)
        if person is not None:
            set_session_cookie(http, settings, await signed_in_cookie(settings, person))
        send_csrf_token(http, settings.session_cookie_name)
        return http

    yield make
    for http in opened:
        await http.aclose()


class FormReader(HTMLParser):
    """The fields of each ``<form method=post>`` of a page, as a browser would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[list[tuple[str, str]]] = []
        self._fields: list[tuple[str, str]] | None = None
        self._textarea = False
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self._fields = []
            self.forms.append(self._fields)
            return
        fields = self._fields
        if fields is None:
            return
        if tag == "input" and "name" in a:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button", "file"):
                fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea" and "name" in a:
            self._textarea = True
            fields.append((a["name"], ""))
        elif tag == "select" and "name" in a:
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            fields.append((self._select, a.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea and self._fields:
            name, value = self._fields[-1]
            self._fields[-1] = (name, value + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = False
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self._fields = None


def form_fields(page: str, having: str) -> list[tuple[str, str]]:
    """The fields of the page's post form that has a field named ``having``."""
    reader = FormReader()
    reader.feed(page)
    for fields in reader.forms:
        if any(name == having for name, _ in fields):
            return fields
    raise AssertionError(f"no form with a {having!r} field in {reader.forms}")


def replace_field(fields: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    assert any(key == name for key, _ in fields), (name, fields)
    return [(key, value if key == name else old) for key, old in fields]


def as_form(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Form fields for httpx (repeated names keep every value, in order)."""
    form: dict[str, list[str]] = {}
    for name, value in fields:
        form.setdefault(name, []).append(value)
    return form

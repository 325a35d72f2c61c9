"""What the admin relies on in starlette-admin's public API behaves as it expects.

(The admin's own tests check the result over HTTP: one CSRF check, and no "add a new
one" link where creating is not allowed.)"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette_admin.contrib.beanie import Admin
from starlette_admin.security.csrf import CSRFMiddleware

from vibetuner.admin.home import HomeView
from vibetuner.admin.site import VibetunerAdmin


def csrf_middlewares(admin: Admin) -> list[Any]:
    return [m for m in admin.middlewares if m.cls is CSRFMiddleware]


async def test_contract_the_admin_mounts_what_its_middlewares_list_holds_after_construction():
    # starlette-admin puts its CSRF middleware in the public ``middlewares`` list while
    # it is constructed; VibetunerAdmin takes it out there, before the admin is mounted.
    assert len(csrf_middlewares(Admin(secret_key="x" * 32))) == 1
    admin = VibetunerAdmin(secret_key="x" * 32)
    assert csrf_middlewares(admin) == []
    app = Starlette()
    admin.mount_to(app)
    # Mounted without it: an unsafe request with no CSRF cookie or token is not refused
    # by starlette-admin (the app's own CSRF middleware is what checks it).
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        answer = await http.post("/admin/api/nothing")
    assert answer.status_code == 404
    original = Admin(secret_key="x" * 32)
    app = Starlette()
    original.mount_to(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        refused = await http.post("/admin/api/nothing")
    assert refused.status_code == 403


async def test_contract_a_custom_view_given_as_index_view_serves_the_home_page():
    home = HomeView("Test admin")
    admin = VibetunerAdmin(secret_key="x" * 32, title="Test admin", index_view=home)
    assert admin.index_view is home
    app = Starlette()
    admin.mount_to(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        page = await http.get("/admin/")
    assert page.status_code == 200
    assert "No data views are available." in page.text


def test_contract_the_panel_helpers_the_home_page_uses_exist():
    import inspect

    from starlette_admin import BaseModelView
    from starlette_admin.helpers import create_url, view_list_url

    assert list(inspect.signature(view_list_url).parameters)[:2] == ["request", "key"]
    assert list(inspect.signature(create_url).parameters)[:2] == ["request", "key"]
    for name in ("can_create", "count", "is_accessible"):
        assert callable(getattr(BaseModelView, name))

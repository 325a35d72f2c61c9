"""The parts of starlette-admin that ``vibetuner/_compat/starlette_admin.py`` relies on
behave as it expects. (The admin's own tests check the result: one CSRF check, and no
"add a new one" link where creating is not allowed.)"""

from __future__ import annotations

import inspect
from typing import Any

from starlette.applications import Starlette
from starlette_admin import BaseModelView
from starlette_admin.contrib.beanie import Admin
from starlette_admin.security.csrf import CSRFMiddleware
from starlette_admin.views import DefaultIndexView

from vibetuner._compat.starlette_admin import AdminWithAppCsrf


def csrf_middlewares(admin: Admin) -> list[Any]:
    return [m for m in admin.middlewares if getattr(m, "cls", None) is CSRFMiddleware]


def test_contract_admin_adds_its_own_csrf_through_init_csrf():
    assert len(csrf_middlewares(Admin(secret_key="x" * 32))) == 1
    assert csrf_middlewares(AdminWithAppCsrf(secret_key="x" * 32)) == []
    # Still mountable and routed as usual without it.
    admin = AdminWithAppCsrf(secret_key="x" * 32)
    admin.mount_to(Starlette())
    assert admin.app is not None


def test_contract_the_home_page_builds_one_panel_per_view_with_build_view_panel():
    assert isinstance(Admin(secret_key="x" * 32).index_view, DefaultIndexView)
    params = list(inspect.signature(DefaultIndexView._build_view_panel).parameters)
    assert params == ["self", "request", "view"]
    assert inspect.iscoroutinefunction(DefaultIndexView._build_view_panel)
    assert "_build_view_panel" in inspect.getsource(DefaultIndexView._build_widget)


def test_contract_the_panel_helpers_vibetuner_uses_exist():
    from starlette_admin.helpers import create_url, view_list_url

    assert list(inspect.signature(view_list_url).parameters)[:2] == ["request", "key"]
    assert list(inspect.signature(create_url).parameters)[:2] == ["request", "key"]
    assert hasattr(BaseModelView, "can_create") and hasattr(BaseModelView, "count")

"""starlette-admin beyond its public API: its CSRF cookie, and the home page's panels.

Why, for each:

- ``Admin.__init__`` always adds starlette-admin's own double-submit CSRF middleware
  (``_init_csrf``); there is no option to leave it out. The app's CSRF middleware
  already checks every unsafe request under ``/admin`` (with the app's token), and a
  second cookie-and-token pair would make every admin form fail one check or the
  other. ``AdminWithAppCsrf`` skips it.
- The default home page offers "add a new one" for every view, also where the view
  does not allow creating (the link led to a 403 page), and says "1 total records".
  The panel is built by ``DefaultIndexView._build_view_panel``, with no public hook;
  ``home_panels`` replaces it on one index view instance.

Checked by ``tests/admin/test_compat_starlette_admin.py``.
"""

from __future__ import annotations

from typing import Any

from markupsafe import escape
from starlette.requests import Request
from starlette_admin import HtmlWidget, PanelWidget
from starlette_admin.contrib.beanie import Admin
from starlette_admin.helpers import create_url, view_list_url


class AdminWithAppCsrf(Admin):
    """starlette-admin's ``Admin`` without its own CSRF middleware (the app checks CSRF)."""

    def _init_csrf(self) -> None:
        return None


def home_panels(index: Any) -> None:
    """Make ``index`` (a ``DefaultIndexView``) show each view's panel as vibetuner
    words it: "1 record" / "12 records", and "add a new one" only for views that allow
    creating."""

    async def panel(request: Request, view: Any) -> Any:
        try:
            count = await view.count(request)
            counted = f"{count} record" if count == 1 else f"{count} records"
        except Exception:  # as starlette-admin's own panel: the page still shows
            counted = "? records"
        href = escape(view_list_url(request, str(view.key)))
        offer = ""
        if view.can_create(request):
            create = escape(create_url(request, str(view.key)))
            offer = f' or <a href="{create}">add a new one</a>'
        html = f'<p><strong>{counted}</strong></p><p><a href="{href}">Browse them</a>{offer}.</p>'
        return PanelWidget(
            title=view.menu_label, icon=view.icon or "", children=[HtmlWidget(html=html)]
        )

    index._build_view_panel = panel

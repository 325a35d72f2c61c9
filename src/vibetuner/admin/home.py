"""The admin's home page: one panel per view, in vibetuner's words.

starlette-admin's default home offers "add a new one" for every view, also where the
view does not allow creating (the link led to a 403 page), and says "1 total records".
This page is built from its public pieces instead: a ``CustomView`` given as the
admin's ``index_view``, whose widget lists the views the signed-in admin may open.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from markupsafe import escape
from starlette.requests import Request
from starlette_admin import (
    BaseModelView,
    BaseWidget,
    ColumnWidget,
    CustomView,
    DropDown,
    HtmlWidget,
    PanelWidget,
)
from starlette_admin.helpers import create_url, view_list_url


def model_views(views: list[Any]) -> Iterator[BaseModelView]:
    """The model views among ``views``, those inside drop-down menus included."""
    for view in views:
        if isinstance(view, DropDown):
            yield from model_views(list(view.views))
        elif isinstance(view, BaseModelView):
            yield view


async def view_panel(request: Request, view: BaseModelView) -> BaseWidget:
    """One view's panel: "1 record" / "12 records", and "add a new one" only where
    the view allows creating."""
    try:
        count = await view.count(request)
        counted = f"{count} record" if count == 1 else f"{count} records"
    except Exception:  # as starlette-admin's own home page: the page still shows
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


class HomeView(CustomView):
    """The admin's ``index_view``: a welcome line and a panel per view (``views``, filled
    as the admin's views are added)."""

    def __init__(self, title: str) -> None:
        self.app_title = title
        self.views: list[Any] = []
        super().__init__(menu_label="", route_name="index", add_to_menu=False, widget=self.panels)

    async def panels(self, request: Request) -> BaseWidget:
        """The page's widget, for the views ``request``'s admin may open."""
        accessible = [view for view in model_views(self.views) if view.is_accessible(request)]
        if not accessible:
            return HtmlWidget(html="<p>No data views are available.</p>")
        welcome = HtmlWidget(html=f"<h2>Welcome to {escape(self.app_title)}</h2>")
        return ColumnWidget(
            children=[welcome, *[await view_panel(request, view) for view in accessible]]
        )

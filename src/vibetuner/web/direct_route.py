"""``DirectRoute``: an API route whose endpoint takes the request and answers itself.

FastAPI's request handler reads the body, resolves dependencies, runs the endpoint and
serializes what it returns. For an endpoint whose only parameter is the ``Request`` and
which returns a ``Response`` itself, none of that does anything, yet it costs about a
tenth of a fast endpoint's time. ``DirectRoute`` calls such an endpoint directly; the
route is still an ``APIRoute``, so its OpenAPI entry (``response_model``,
``responses``), its methods and ``url_path_for`` are FastAPI's. Any other endpoint gets
FastAPI's handler unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute


def takes_only_the_request(dependant: Dependant) -> bool:
    """True when an endpoint needs nothing FastAPI resolves: no parameters but the request."""
    return (
        dependant.request_param_name is not None
        and not dependant.dependencies
        and not dependant.path_params
        and not dependant.query_params
        and not dependant.header_params
        and not dependant.cookie_params
        and not dependant.body_params
        and dependant.websocket_param_name is None
        and dependant.http_connection_param_name is None
        and dependant.response_param_name is None
        and dependant.background_tasks_param_name is None
        and dependant.security_scopes_param_name is None
    )


class DirectRoute(APIRoute):
    """An ``APIRoute`` that calls an ``async def endpoint(request) -> Response`` directly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The endpoint itself when it qualifies, else FastAPI's request handler."""
        endpoint = self.endpoint
        if not (inspect.iscoroutinefunction(endpoint) and takes_only_the_request(self.dependant)):
            return super().get_route_handler()
        name = self.name

        async def handler(request: Request) -> Response:
            response = await endpoint(request)
            if not isinstance(response, Response):
                raise TypeError(f"the endpoint {name!r} must return a Response")
            return response

        return handler

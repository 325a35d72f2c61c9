"""The framework's ready-made routers, for apps that want all of them."""

from __future__ import annotations

from fastapi import APIRouter


def default_routers() -> list[APIRouter]:
    """Every router vibetuner ships (``/health`` is always included by ``create_app``)."""
    from vibetuner.frontend.auth import router as auth_router
    from vibetuner.frontend.blobs import router as blobs_router

    return [auth_router, blobs_router]

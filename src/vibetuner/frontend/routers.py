"""The framework's ready-made routers, for apps that want all of them."""

from __future__ import annotations

from fastapi import APIRouter


def default_routers() -> list[APIRouter]:
    """Every router vibetuner ships (``/health`` is always included by ``create_app``)."""
    return []

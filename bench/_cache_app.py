"""The app bench/cache.py serves: one public page, at /cached with ``cache_page`` and at
/uncached without; both read the 20 newest articles from the database and render them
in vibetuner's layout. Settings come from the environment the bench sets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beanie import Document
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from vibetuner import create_app, render_page
from vibetuner.cache import CacheFeature, cache_page


class Article(Document):
    title: str
    body: str
    published_at: datetime

    class Settings:
        name = "bench_articles"


router = APIRouter()


async def articles_page(request: Request) -> HTMLResponse:
    articles = await Article.find().sort(-Article.published_at).limit(20).to_list()
    return render_page(request, "articles.html", {"title": "Articles", "articles": articles})


@router.get("/cached", dependencies=[Depends(cache_page(ttl=300))])
async def cached(request: Request) -> HTMLResponse:
    return await articles_page(request)


@router.get("/uncached")
async def uncached(request: Request) -> HTMLResponse:
    return await articles_page(request)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if await Article.count() == 0:
        now = datetime.now(UTC)
        await Article.insert_many(
            [
                Article(
                    title=f"Article {n}",
                    body="A paragraph of text about something worth reading. " * 4,
                    published_at=now - timedelta(hours=n),
                )
                for n in range(40)
            ]
        )
    yield


app = create_app(
    features=[CacheFeature()],
    models=[Article],
    routers=[router],
    lifespan=lifespan,
    template_dirs=[Path(__file__).parent / "_cache_templates"],
)

"""vibetuner's own jobs: files of a deleted account go in a job; the hourly blob check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from vibetuner import AuthFeature, BlobsFeature, JobsFeature, app_context, create_app
from vibetuner.blobs.jobs import check_blobs
from vibetuner.models import Blob, UserModel


@pytest.fixture
async def app(vibetuner_settings: Any) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings=vibetuner_settings, features=[AuthFeature(), BlobsFeature(), JobsFeature([])]
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_deleting_an_account_removes_its_files_in_a_job(
    signed_in_client: Any, user: Any, jobs: Any, blob_store: Any, vibetuner_settings: Any
) -> None:
    blob = await blob_store.put(b"holiday photo", filename="a.jpg", uploaded_by=user)
    done = await signed_in_client.post("/account/delete", data={"confirm_email": user.email})
    assert done.status_code == 303
    assert [queued.name for queued in jobs.enqueued] == ["vibetuner.delete_blob"]
    await jobs.drain()
    assert await Blob.get(blob.id) is None
    assert not any(p.is_file() for p in vibetuner_settings.blob_directory.rglob("*"))
    assert await UserModel.get(user.id) is None


async def test_the_blob_check_runs_as_a_periodic_job(app: Any, blob_store: Any) -> None:
    assert check_blobs.schedule == "23 * * * *"
    orphan = await blob_store.put(b"x", filename="x.txt")
    await blob_store.backend.delete(orphan.key)  # metadata left without its object
    await check_blobs(app_context(app))
    assert await Blob.get(orphan.id) is None

"""Orphan detection and removal (``vibetuner blobs check``), on local disk and S3."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from tests.blobs.conftest import leftovers, stored_keys
from vibetuner.blobs.check import find_orphans, remove_orphans
from vibetuner.cli import app as cli_app
from vibetuner.cli.blobs import run_check
from vibetuner.models import Blob, BlobStatus
from vibetuner.models.mixins import utcnow
from vibetuner.testing import app_context


async def make_orphans(store: Any) -> dict[str, Any]:
    healthy = await store.put(b"healthy", filename="ok.txt")
    lost = await store.put(b"lost", filename="lost.txt")
    await store.backend.delete(lost.key)  # metadata without object

    async def one(data: bytes):  # type: ignore[no-untyped-def]
        yield data

    stray_key = f"blobs/{uuid.uuid4().hex}"
    await store.backend.write(stray_key, one(b"stray"), content_type="text/plain")

    failed = Blob(
        key=f"blobs/{uuid.uuid4().hex}", backend=store.backend.name, status=BlobStatus.FAILED
    )
    await failed.insert()
    await store.backend.write(failed.key, one(b"half"), content_type="text/plain")

    stale = Blob(key=f"blobs/{uuid.uuid4().hex}", backend=store.backend.name)
    await stale.insert()
    await stale.set({Blob.db_insert_dt: utcnow() - timedelta(hours=3)})
    in_progress = Blob(key=f"blobs/{uuid.uuid4().hex}", backend=store.backend.name)
    await in_progress.insert()
    other_backend = Blob(
        key=f"blobs/{uuid.uuid4().hex}",
        backend="elsewhere",
        status=BlobStatus.AVAILABLE,
    )
    await other_backend.insert()
    return {
        "healthy": healthy,
        "lost": lost,
        "stray": stray_key,
        "failed": failed,
        "stale": stale,
        "in_progress": in_progress,
        "other_backend": other_backend,
    }


async def test_find_and_remove_orphans(store: Any) -> None:
    made = await make_orphans(store)
    report = await find_orphans(store)
    assert report.objects_without_metadata == [made["stray"]]
    assert [b.id for b in report.metadata_without_objects] == [made["lost"].id]
    assert {b.id for b in report.unfinished} == {made["failed"].id, made["stale"].id}
    assert not report.clean

    assert await remove_orphans(store, report) == 4
    after = await find_orphans(store)
    assert after.clean
    assert await stored_keys(store) == [made["healthy"].key]
    remaining = {blob.id async for blob in Blob.find_all()}
    assert remaining == {made["healthy"].id, made["in_progress"].id, made["other_backend"].id}


async def test_remove_keeps_what_became_whole_after_the_scan(store: Any) -> None:
    async def one(data: bytes):  # type: ignore[no-untyped-def]
        yield data

    lost = await store.put(b"late", filename="late.txt")
    await store.backend.delete(lost.key)
    stray_key = f"blobs/{uuid.uuid4().hex}"
    await store.backend.write(stray_key, one(b"stray"), content_type="text/plain")
    report = await find_orphans(store)
    assert [b.id for b in report.metadata_without_objects] == [lost.id]
    assert report.objects_without_metadata == [stray_key]

    # Between the scan and the removal the object arrives, and the stray gets its metadata.
    await store.backend.write(lost.key, one(b"late"), content_type="text/plain")
    await Blob(key=stray_key, backend=store.backend.name, status=BlobStatus.AVAILABLE).insert()

    assert await remove_orphans(store, report) == 0
    assert await Blob.get(lost.id) is not None
    assert sorted(await stored_keys(store)) == sorted([lost.key, stray_key])


async def test_run_check_reports_then_deletes(app: Any, store: Any) -> None:
    made = await make_orphans(store)
    settings = app_context(app).settings
    console = Console(record=True, width=200)
    clean = await run_check(
        settings,
        delete=False,
        grace=timedelta(hours=1),
        console=console,
        mongo=app_context(app).mongo,
    )
    text = console.export_text()
    assert clean is False
    assert f"object without metadata: {made['stray']}" in text
    assert f"metadata without object: {made['lost'].id}" in text
    assert "unfinished upload (failed)" in text and "unfinished upload (pending)" in text
    assert "4 orphans; run with --delete" in text
    assert len(await stored_keys(store)) == 3  # nothing removed without --delete

    console = Console(record=True, width=200)
    await run_check(
        settings,
        delete=True,
        grace=timedelta(hours=1),
        console=console,
        mongo=app_context(app).mongo,
    )
    assert "Removed 4 orphans." in console.export_text()
    console = Console(record=True, width=200)
    assert await run_check(
        settings,
        delete=False,
        grace=timedelta(hours=1),
        console=console,
        mongo=app_context(app).mongo,
    )
    assert "No orphans." in console.export_text()


def test_cli_refuses_a_throwaway_in_memory_database(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONGODB_URL", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "test")
    result = CliRunner().invoke(cli_app, ["blobs", "check", "--delete"])
    assert result.exit_code == 2
    assert "MONGODB_URL is not set" in result.output
    assert "Traceback" not in result.output


def test_cli_checks_the_development_database(monkeypatch, tmp_path) -> None:
    # In development the check sees what the dev server stored: here, a file on disk
    # that no Blob document knows.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MONGODB_URL", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "development")
    orphan = tmp_path / "data" / "blobs" / "blobs" / "ab" / ("ab" * 16)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left behind")
    hours_ago = time.time() - 2 * 3600  # older than the grace period
    os.utime(orphan, (hours_ago, hours_ago))
    result = CliRunner().invoke(cli_app, ["blobs", "check"])
    assert "Traceback" not in result.output
    assert "object without metadata: blobs/" + "ab" * 16 in result.output, result.output


def test_cli_reports_an_unreachable_database_in_one_line(monkeypatch, tmp_path) -> None:
    from tests.blobs.conftest import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MONGODB_URL", f"mongodb://127.0.0.1:{free_port()}/x")
    monkeypatch.setenv("MONGODB_TIMEOUT_MS", "200")
    result = CliRunner().invoke(cli_app, ["blobs", "check"])
    assert result.exit_code == 2
    assert "Error:" in result.output and "Traceback" not in result.output


async def interrupted_upload(store: Any) -> str:
    """What a crash in the middle of an upload leaves in the backend; returns the key."""
    key = f"blobs/{uuid.uuid4().hex}"
    backend = store.backend
    if backend.name == "local":
        temp = backend.root / ".tmp" / f"{uuid.uuid4().hex}.part"
        temp.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(b"half a file")
        old = utcnow().timestamp() - 3 * 3600
        os.utime(temp, (old, old))
    else:
        await backend.client.create_multipart_upload(Bucket=backend.bucket, Key=key)
    return key


async def test_interrupted_uploads_are_found_and_removed(store: Any) -> None:
    await interrupted_upload(store)
    # The temp file is three hours old; moto stamps the multipart upload now, hence grace 0.
    report = await find_orphans(
        store, grace=timedelta(hours=1) if store.backend.name == "local" else timedelta(0)
    )
    assert len(report.stale_uploads) == 1 and not report.clean
    assert await remove_orphans(store, report) == 1
    assert await leftovers(store) == []
    assert (await find_orphans(store, grace=timedelta(0))).clean

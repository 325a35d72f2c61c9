"""What ``StaticAssets`` remembers: outside development the files found and not found
until restart; in development a changed or added file on its next use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vibetuner.web.static_assets import MAX_MISSING, StaticAssets


def test_production_remembers_files_and_missing_names(tmp_path: Path) -> None:
    assets = StaticAssets([tmp_path], reload=False)
    (tmp_path / "app.css").write_text("a {}")
    first = assets.url("app.css")
    assert first.startswith("/static/app.") and first.endswith(".css")
    assert assets.url("app.css") is first  # computed once
    assert assets.asset("late.css") is None
    (tmp_path / "late.css").write_text("b {}")
    assert assets.asset("late.css") is None  # deployed files do not appear at run time
    with pytest.raises(LookupError):
        assets.url("late.css")
    assets.add_dir(tmp_path)  # a folder added is looked in again
    assert assets.asset("late.css") is not None


def test_development_sees_changed_and_added_files(tmp_path: Path) -> None:
    assets = StaticAssets([tmp_path], reload=True)
    assert assets.asset("app.css") is None
    (tmp_path / "app.css").write_text("a {}")
    first = assets.url("app.css")
    (tmp_path / "app.css").write_text("a { color: red }")
    stat = (tmp_path / "app.css").stat()
    os.utime(tmp_path / "app.css", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert assets.url("app.css") != first


def test_requests_for_unknown_names_do_not_grow_memory_without_bound(tmp_path: Path) -> None:
    assets = StaticAssets([tmp_path], reload=False)
    for index in range(MAX_MISSING + 500):
        assert assets.asset(f"nothing-{index}.css") is None
    assert len(assets._missing) == MAX_MISSING

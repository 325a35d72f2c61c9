"""Dates, sizes and browsers as people say them, in their language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vibetuner.i18n import Catalogs, format_ago, format_filesize, use_locale
from vibetuner.user_agents import browser_name

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CATALOGS = Catalogs(["en", "es", "de"])
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.mark.parametrize(
    ("locale", "ago", "expected"),
    [
        ("en", timedelta(seconds=5), "just now"),
        ("en", timedelta(minutes=2), "2 minutes ago"),
        ("en", timedelta(days=3), "3 days ago"),
        ("es", timedelta(minutes=2), "hace 2 minutos"),
        ("de", timedelta(minutes=2), "vor 2 Minuten"),
        ("de", timedelta(seconds=1), "gerade eben"),
    ],
)
def test_how_long_ago(locale: str, ago: timedelta, expected: str) -> None:
    with use_locale(CATALOGS, locale):
        assert format_ago(NOW - ago, now=NOW) == expected


def test_a_naive_datetime_from_the_database_is_utc() -> None:
    naive = (NOW - timedelta(hours=2)).replace(tzinfo=None)
    with use_locale(CATALOGS, "en"):
        assert format_ago(naive, now=NOW) == "2 hours ago"
        assert format_ago(None) == ""


@pytest.mark.parametrize(
    ("locale", "size", "expected"),
    [
        ("en", 0, "0 B"),
        ("en", 6, "6 B"),
        ("en", 1023, "1,023 B"),
        ("en", 1024, "1 KB"),
        ("en", 1234, "1.2 KB"),
        ("en", 5 * 1024 * 1024 + 300_000, "5.3 MB"),
        ("en", 3 * 1024**5, "3,072 TB"),
        ("de", 1234, "1,2 KB"),
        ("es", 1536, "1,5 KB"),
    ],
)
def test_file_sizes(locale: str, size: int, expected: str) -> None:
    with use_locale(CATALOGS, locale):
        assert format_filesize(size) == expected


@pytest.mark.parametrize(
    ("locale", "user_agent", "expected"),
    [
        ("en", CHROME_LINUX, "Chrome on Linux"),
        ("en", FIREFOX_WINDOWS, "Firefox on Windows"),
        ("de", FIREFOX_WINDOWS, "Firefox auf Windows"),
        ("es", CHROME_LINUX, "Chrome en Linux"),
        ("en", "curl/8.5.0", "curl"),
        ("en", "", "Unknown browser"),
        ("en", None, "Unknown browser"),
        ("en", "\x00\x01 garbage", "Unknown browser"),
        ("de", "", "Unbekannter Browser"),
    ],
)
def test_browser_names(locale: str, user_agent: str | None, expected: str) -> None:
    with use_locale(CATALOGS, locale):
        assert browser_name(user_agent) == expected

"""The logging settings and what ``configure_logging`` installs."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from pydantic import ValidationError

from vibetuner.config import Settings
from vibetuner.logs import ContextFilter, TextFormatter, configure_logging, log_format, scrub
from vibetuner.request_id import RequestInfo, bound


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, environment="test", **values)  # type: ignore[call-arg]


def test_log_levels_read_from_text() -> None:
    chosen = settings(log_levels="vibetuner.jobs=debug, uvicorn.access=WARNING")
    assert chosen.log_levels == {"vibetuner.jobs": "DEBUG", "uvicorn.access": "WARNING"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("vibetuner.jobs", "is not logger=LEVEL"), ("myapp=LOUD", "myapp: level must be one of")],
)
def test_bad_log_levels_are_refused_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        settings(log_levels=raw)


def test_auto_format_is_json_in_production_only() -> None:
    assert log_format(settings()) == "text"
    assert log_format(settings(log_format="json")) == "json"
    production = settings().model_copy(update={"environment": "production"})
    assert log_format(production) == "json"


@pytest.fixture
def restore_logging() -> Any:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    levels = {name: logging.getLogger(name).level for name in ("myapp", "uvicorn.access")}
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_configure_logging_sends_everything_to_one_json_handler(
    restore_logging: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings(log_format="json", log_level="WARNING", log_levels="myapp=DEBUG"))
    logging.getLogger("myapp").debug("from the app")
    logging.getLogger("other").info("too quiet for WARNING")
    with bound(RequestInfo(id="req-1", user_id="u-1")):
        logging.getLogger("uvicorn.error").warning("from uvicorn")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(e["logger"], e["message"]) for e in lines] == [
        ("myapp", "from the app"),
        ("uvicorn.error", "from uvicorn"),
    ]
    assert lines[1]["request_id"] == "req-1" and lines[1]["user_id"] == "u-1"
    assert "request_id" not in lines[0]


def test_text_lines_are_coloured_on_a_terminal() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(TextFormatter(colour=True))
    record = logging.LogRecord("myapp", logging.ERROR, __file__, 1, "went %s", ("wrong",), None)
    handler.handle(record)
    assert "\x1b[31mERROR" in stream.getvalue() and "myapp: went wrong" in stream.getvalue()


def test_secret_query_values_are_scrubbed_outside_a_request_too() -> None:
    line = "GET /blobs/1/signed?token=abc.def&size=2 and /cb?code=xyz&state=s1"
    assert scrub(line) == (
        "GET /blobs/1/signed?token=[redacted]&size=2 and /cb?code=[redacted]&state=[redacted]"
    )

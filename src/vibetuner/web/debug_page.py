"""The development error page: what broke, where, and the request that broke it.

Shown in development only (``ENVIRONMENT=development``), to browsers, instead of the
"Something went wrong" page. It is built here in Python, not from a template, so it
still works when the error is a missing or broken template. Secrets stay hidden:
cookie and authorization headers, and local variables whose names look like keys,
tokens or passwords, are masked.
"""

from __future__ import annotations

import html
import linecache
import re
import sys
import sysconfig
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from vibetuner.request_id import current_request_id
from vibetuner.web.security_headers import csp_nonce

MASKED = "********"
SECRET_NAME = re.compile(r"key|secret|token|password|passwd|cookie|authorization|csrf", re.I)
HIDDEN_HEADERS = {"cookie", "authorization", "x-csrf-token", "proxy-authorization"}
# Frames from these are folded away: the standard library, installed packages, and
# vibetuner itself (also when installed editable from a checkout).
LIBRARY_PATHS = tuple(
    {sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    | {str(Path(__file__).resolve().parents[1])}
)
CONTEXT_LINES = 3
LOCALS_SHOWN = 30
VALUE_CHARS = 300

STYLE = """
body{font:14px/1.5 ui-sans-serif,system-ui,sans-serif;margin:0;background:#fafafa;color:#18181b}
header{background:#991b1b;color:#fff;padding:1.25rem 2rem}header h1{margin:0;font-size:1.3rem}
header p{margin:.3rem 0 0;opacity:.9}main{padding:1rem 2rem;max-width:80rem}
h2{font-size:1rem;margin:1.5rem 0 .5rem}.frame{background:#fff;border:1px solid #e4e4e7;
border-radius:.5rem;margin:.5rem 0;padding:.5rem .75rem}.frame.lib{opacity:.6}
.where{font-family:ui-monospace,monospace;font-size:13px;overflow-wrap:anywhere}
pre{margin:.4rem 0;overflow-x:auto;font:12.5px/1.45 ui-monospace,monospace}
.hit{background:#fee2e2;display:inline-block;min-width:100%}table{border-collapse:collapse;width:100%}
td,th{text-align:left;vertical-align:top;padding:.2rem .5rem;border-bottom:1px solid #e4e4e7;
font:12.5px ui-monospace,monospace;overflow-wrap:anywhere}
th{width:30%;max-width:14rem;color:#52525b}
details summary{cursor:pointer;color:#52525b}
@media (prefers-color-scheme:dark){body{background:#09090b;color:#e4e4e7}
.frame{background:#18181b;border-color:#27272a}.hit{background:#450a0a}
td,th{border-color:#27272a}th{color:#a1a1aa}}
"""


def _is_library(filename: str) -> bool:
    return filename.startswith(LIBRARY_PATHS) or filename.startswith("<")


def _value(name: str, value: Any) -> str:
    if SECRET_NAME.search(name):
        return MASKED
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the error page
        text = f"<repr failed: {type(exc).__name__}>"
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + "..."


def _frames(tb: TracebackType | None) -> list[str]:
    """One block per frame; runs of library frames folded into one ``<details>``."""
    shown: list[str] = []
    folded: list[str] = []

    def fold() -> None:
        if folded:
            count = f"{len(folded)} framework frame{'s' if len(folded) > 1 else ''}"
            shown.append(f"<details><summary>{count}</summary>{''.join(folded)}</details>")
            folded.clear()

    while tb is not None:
        frame, lineno = tb.tb_frame, tb.tb_lineno
        filename, function = frame.f_code.co_filename, frame.f_code.co_name
        library = _is_library(filename)
        start = max(lineno - CONTEXT_LINES, 1)
        lines = []
        for number in range(start, lineno + CONTEXT_LINES + 1):
            source = linecache.getline(filename, number)
            if not source:
                continue
            text = html.escape(f"{number:>5} {source.rstrip()}")
            lines.append(f'<span class="hit">{text}</span>' if number == lineno else text)
        variables = ""
        if not library:
            rows = "".join(
                f"<tr><th>{html.escape(name)}</th><td>{html.escape(_value(name, value))}</td></tr>"
                for name, value in list(frame.f_locals.items())[:LOCALS_SHOWN]
            )
            if rows:
                variables = (
                    f"<details><summary>Local variables</summary><table>{rows}</table></details>"
                )
        block = (
            f'<div class="frame{" lib" if library else ""}">'
            f'<div class="where">{html.escape(filename)}, line {lineno}, in '
            f"<strong>{html.escape(function)}</strong></div>"
            f"<pre>{chr(10).join(lines)}</pre>{variables}</div>"
        )
        if library and tb.tb_next is not None:
            folded.append(block)  # the innermost frame stays in view, wherever it is
        else:
            fold()
            shown.append(block)
        tb = tb.tb_next
    fold()
    return shown


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return list(reversed(chain))


def debug_page(request: Request, exc: BaseException) -> HTMLResponse:
    """A 500 page with the traceback (innermost frame last), the request and its headers."""
    sections = []
    for number, error in enumerate(_chain(exc)):
        if number:
            sections.append("<h2>During handling of the above, this happened:</h2>")
        summary = "".join(traceback.format_exception_only(type(error), error)).strip()
        sections.append(f"<h2>{html.escape(summary)}</h2>")
        sections.extend(_frames(error.__traceback__))
    headers = "".join(
        f"<tr><th>{html.escape(name)}</th>"
        f"<td>{MASKED if name.lower() in HIDDEN_HEADERS else html.escape(value)}</td></tr>"
        for name, value in request.headers.items()
    )
    title = f"{type(exc).__name__} at {request.method} {request.url.path}"
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f'<style nonce="{html.escape(_nonce(request))}">{STYLE}</style></head><body>'
        f"<header><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(str(exc)) or '(no message)'}</p>"
        "<p>This page is shown in development only; in production the visitor sees "
        "a short message and the traceback goes to the log.</p></header><main>"
        f"<h2>Request</h2><table><tr><th>method</th><td>{html.escape(request.method)}</td></tr>"
        f"<tr><th>URL</th><td>{html.escape(str(request.url))}</td></tr>"
        f"<tr><th>request id</th><td>{html.escape(current_request_id() or '')}</td></tr>"
        f"<tr><th>Python</th><td>{html.escape(sys.version.split()[0])}</td></tr></table>"
        f"<h2>Traceback</h2>{''.join(sections)}"
        f"<h2>Headers</h2><table>{headers}</table></main></body></html>"
    )
    return HTMLResponse(body, status_code=500)


def _nonce(request: Request) -> str:

    return csp_nonce(request)

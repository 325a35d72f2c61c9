"""Sizes in bytes as messages say them."""

from __future__ import annotations


def format_size(size: int) -> str:
    """``52428800`` -> ``"50 MiB"``: sizes for messages."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{round(value, 1):g} {unit}"
        value /= 1024
    return f"{size} bytes"

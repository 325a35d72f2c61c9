"""The places where vibetuner relies on another library beyond its public API.

One module per library. Each says why no public way exists; each has a contract test
(``tests/*/test_compat_*.py``) that fails when the library's behaviour changes, and
the library has an upper bound in ``pyproject.toml``. Nothing else in vibetuner reaches
into another library's internals.
"""

"""Every use of a dependency's private or undocumented names, one module per library.

Each module says why no public way exists, and ``tests/core/test_compat_*.py`` fail when
the behaviour relied on changes; ``pyproject.toml`` bounds those libraries from above.
"""

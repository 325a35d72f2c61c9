"""README.md is the landing page: short, the Quick start verbatim, every link working.

What the README used to hold (the settings table, the development database's gaps) is
in the documentation site now, checked by ``tests/docs/test_site.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"

QUICK_START = [
    "python -m pip install -e . && vibetuner scaffold new ../myapp --defaults && cd ../myapp"
    ' && python -m pip install -e ".[dev]" && vibetuner run dev',
    'python -m pip install -e ".[test]" && python -m pytest',
]


def test_the_readme_is_a_short_landing_page():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 200


def test_the_readme_shows_the_two_quick_start_commands_verbatim():
    blocks = re.findall(r"^```bash\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert [block.strip() for block in blocks[:2]] == QUICK_START


def test_every_relative_link_of_the_readme_resolves_to_a_file_in_the_repository():
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    local = [target.split("#")[0] for target in targets if not re.match(r"^[a-z]+:", target)]
    assert len(local) >= 10, "the landing page links into the docs"
    broken = [link for link in local if not (REPO_ROOT / link).is_file()]
    assert broken == []
    # Links to a section point at a heading the page has.
    for target in targets:
        if "#" in target and not re.match(r"^[a-z]+:", target):
            path, anchor = target.split("#", 1)
            headings = re.findall(
                r"^#+ (.+)$", (REPO_ROOT / path).read_text(encoding="utf-8"), re.M
            )
            slugs = {
                re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-") for h in headings
            }
            assert anchor in slugs, target

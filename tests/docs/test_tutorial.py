"""The tutorial cannot rot: its test builds the app from the very files its pages show.

Every code block of ``docs/tutorial/*.md`` is a ``pymdownx.snippets`` include of a file
under ``docs/tutorial/code/<step>/``. The test scaffolds a fresh project with the CLI,
installs it in a virtual environment (as ``tests/scaffold`` does), then for each step
copies the step's project files over the project's and runs every command the page
shows, in order: the development server (with a sign-in through the printed link),
``vibetuner i18n``, the app's own tests, ``vibetuner users``, and the production
settings check. Every file under ``docs/tutorial/code`` must be shown by a page and
used by the test, and every command it holds must be one the test knows how to run.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from babel.messages.pofile import read_po, write_po

from tests.scaffold.conftest import REPO_ROOT, python_in, scaffold
from tests.scaffold.test_generated_projects import Server, clean_env, install
from vibetuner.i18n import catalog_problems
from vibetuner.testing import csrf_token_in, free_port

PAGES = REPO_ROOT / "docs" / "tutorial"
CODE = PAGES / "code"
# A block is exactly one include: ``--8<-- "step/path"``, optionally ``:section`` or
# ``:start:end`` (line numbers).
BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```\s*$", re.S | re.M)
INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::([^"]+))?"$')
# Files of a step that are not copied into the project: commands and the catalog entries.
NOT_PROJECT_FILES = (".sh", ".po")
EMAIL = "ada@example.com"


def tutorial_blocks() -> list[tuple[str, str, str | None]]:
    """Every code block of the tutorial pages as (page, included file, section)."""
    blocks = []
    for page in sorted(PAGES.glob("*.md")):
        for body in BLOCK.findall(page.read_text(encoding="utf-8")):
            lines = body.strip().splitlines()
            match = INCLUDE.match(lines[0]) if len(lines) == 1 else None
            assert match, f"{page.name}: a code block that is not one included file:\n{body}"
            blocks.append((page.name, match.group(1), match.group(2)))
    return blocks


def step_files() -> set[str]:
    """Every file under docs/tutorial/code, relative to it."""
    return {
        path.relative_to(CODE).as_posix()
        for path in CODE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_every_block_includes_a_file_and_every_file_is_shown():
    blocks = tutorial_blocks()
    shown = {path for _, path, _ in blocks}
    assert shown == step_files()
    for page, path, section in blocks:
        text = (CODE / path).read_text(encoding="utf-8")
        if section and not section[0].isdigit():
            assert f"--8<-- [start:{section}]" in text, f"{page}: {path} has no {section}"
            assert f"--8<-- [end:{section}]" in text, f"{page}: {path} has no end of {section}"
    # Reported with the docs: how many blocks the build-and-run below executes.
    print(f"{len(blocks)} tutorial code blocks, from {len(shown)} files")


SNIPPET_MARK = re.compile(r"--8<-- \[(start|end):[\w-]+\]")


def scaffold_changes(original: str, changed: str) -> list[str]:
    """Where ``changed`` (a step's copy of a scaffolded file, snippet marks aside) does
    more than add to ``original``: a line removed, or one rewritten so that some of its
    words are gone. Both would silently undo the scaffold's own code when the page's
    reader adds the shown lines to their project."""
    old = original.splitlines()
    new = [line for line in changed.splitlines() if not SNIPPET_MARK.search(line)]
    problems = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "delete":
            problems += [f"removed: {line.strip()}" for line in old[i1:i2]]
        elif tag == "replace":
            words = set(re.findall(r"\w+", "\n".join(new[j1:j2])))
            lost = [line for line in old[i1:i2] if not set(re.findall(r"\w+", line)) <= words]
            problems += [f"rewritten: {line.strip()}" for line in lost]
    return problems


def test_the_steps_only_add_to_the_scaffolded_files(tmp_path, monkeypatch):
    # The steps ship whole files; where the scaffold has the same file, the step's copy
    # must be the scaffold's with the page's additions, or the tutorial has gone stale.
    monkeypatch.setenv("VIBETUNER_CACHE_DIR", str(tmp_path / "cache"))
    project = scaffold(tmp_path / "myapp")
    compared, problems = 0, []
    for path in sorted(CODE.glob("*/*/**/*")):
        rel = path.relative_to(CODE)
        original = project / Path(*rel.parts[1:])
        if path.is_file() and original.is_file() and path.suffix not in NOT_PROJECT_FILES:
            compared += 1
            changes = scaffold_changes(original.read_text(), path.read_text())
            problems += [f"{rel}: {change}" for change in changes]
    assert compared >= 6
    assert problems == []


def test_the_comparison_with_the_scaffold_sees_removed_and_rewritten_lines():
    original = "a = 1\n# see jobs.purge\nb = [x]\n"
    assert scaffold_changes(original, "a = 1\n# see jobs.purge\nb = [x, y]\nc = 2\n") == []
    assert scaffold_changes(original, "a = 1\nb = [x]\n") == ["removed: # see jobs.purge"]
    assert scaffold_changes(original, "a = 1\n# see notes.purge\nb = [x]\n") == [
        "rewritten: # see jobs.purge"
    ]


class Tutorial:
    """The project being built, the commands run so far, and the files applied."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cwd = root
        self.project = root / "myapp"
        self.venv = root / "venv"
        self.used: set[str] = set()
        self.server_output = ""

    def env(self, **extra: str) -> dict[str, str]:
        return {**clean_env(self.venv), **extra}

    def file(self, rel: str) -> Path:
        self.used.add(rel)
        return CODE / rel

    def commands(self, rel: str) -> list[str]:
        return [line for line in self.file(rel).read_text().splitlines() if line.strip()]

    def apply(self, step: str) -> None:
        """Copy the step's project files (``src/...``, ``tests/...``) over the project's."""
        for path in sorted((CODE / step).rglob("*")):
            rel = path.relative_to(CODE / step)
            if path.is_dir() or path.suffix in NOT_PROJECT_FILES:
                continue
            if path.name == ".env":  # the production settings, applied by their step
                continue
            self.file(path.relative_to(CODE).as_posix())
            target = self.project / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    def vibetuner(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(python_in(self.venv).parent / "vibetuner"), *args],
            cwd=self.cwd, env=self.env(**env), capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        if check:
            assert result.returncode == 0, f"vibetuner {args}: {result.stdout}{result.stderr}"
        return result

    def shell(self, line: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", line], cwd=self.cwd, env=self.env(**env),
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    def run(self, line: str, known: dict[str, Callable[[], None]]) -> None:
        """Run one command line of the tutorial; a line the test does not know fails it."""
        if line in known:
            known[line]()
        elif line.startswith("vibetuner "):
            self.vibetuner(*line.split()[1:])
        else:
            pytest.fail(f"the tutorial shows a command this test does not run: {line!r}")


def start(tutorial: Tutorial) -> None:
    """Step 0: scaffold, install, run the development server and sign in through it."""

    def scaffold_new() -> None:
        scaffold(tutorial.project)

    def cd() -> None:
        tutorial.cwd = tutorial.project

    def pip_install() -> None:
        # Offline, as tests/scaffold does: this checkout and the project, editable, into
        # a fresh venv that sees the test environment's packages (pytest, ruff ...).
        install(tutorial.project, tutorial.venv)

    def run_dev() -> None:
        tutorial.server_output = sign_in_on_the_dev_server(tutorial)

    known = {
        "vibetuner scaffold new myapp --defaults": scaffold_new,
        "cd myapp": cd,
        'python -m pip install -e ".[dev]"': pip_install,
        "vibetuner run dev": run_dev,
    }
    for line in tutorial.commands("00-start/commands.sh"):
        tutorial.run(line, known)


def sign_in_on_the_dev_server(tutorial: Tutorial) -> str:
    """What the page asks: open the app, sign in with the link printed in the console."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = Server(tutorial.project, tutorial.venv, "dev", "--port", str(port))
    try:
        assert server.wait_for_health(f"{base}/health").status_code == 200
        with httpx.Client(base_url=base, timeout=10) as browser:
            login = browser.get("/auth/login")
            sent = browser.post(
                "/auth/magic-link",
                data={"email": EMAIL, "csrf_token": csrf_token_in(login.text)},
                headers={"accept": "text/html"},
            )
            assert sent.status_code == 200
            link = None
            deadline = time.monotonic() + 10
            while link is None and time.monotonic() < deadline:
                found = re.findall(r"(http://\S+/auth/magic-link/\S+)", server.output)
                link = found[-1] if found else None
                time.sleep(0.1)
            assert link, f"no sign-in link printed:\n{server.output}"
            confirm = browser.get(link.replace("http://127.0.0.1:8000", base))
            signed_in = browser.post(confirm.url, data={"csrf_token": csrf_token_in(confirm.text)})
            assert signed_in.status_code in (302, 303)
            assert browser.get("/auth/me").json()["email"] == EMAIL
    finally:
        output = server.stop()
    return output


def translate(tutorial: Tutorial) -> None:
    """Step 4: extract and update, fill in the entries the page shows, compile."""
    for line in tutorial.commands("05-translation/extract.sh"):
        tutorial.run(line, {})
    for language in ("es", "de"):
        catalog_path = tutorial.project / f"src/my_app/locales/{language}/LC_MESSAGES/messages.po"
        with catalog_path.open("rb") as handle:
            catalog = read_po(handle)
        with tutorial.file(f"05-translation/messages.{language}.po").open("rb") as handle:
            entries = read_po(handle)
        for entry in entries:
            if not entry.id:
                continue
            message = catalog.get(entry.id)
            assert message is not None, f"the page translates {entry.id!r}, which the app lacks"
            assert not message.string or message.fuzzy, f"{entry.id!r} was already translated"
            # As the page says: fill in msgstr, and drop Babel's fuzzy guess.
            message.string = entry.string
            message.flags.discard("fuzzy")
        with catalog_path.open("wb") as handle:
            write_po(handle, catalog)
        assert catalog_problems(catalog_path) == [], "the page leaves strings untranslated"
    for line in tutorial.commands("05-translation/compile.sh"):
        tutorial.run(line, {})


def run_the_apps_tests(tutorial: Tutorial) -> None:
    """Step 5: the page's command runs the app's tests, the tutorial's new file included."""

    def pytest_() -> None:
        result = subprocess.run(
            [str(python_in(tutorial.venv)), "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"],
            cwd=tutorial.project, env=tutorial.env(), capture_output=True, text=True,
            timeout=600, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
        summary = result.stdout.strip().splitlines()[-1]
        # pytest adds "(0:01:15)" to a run over a minute (a loaded machine).
        passed = r"=* ?\d+ passed(, \d+ skipped)? in [\d.]+s( \(\d+:\d\d:\d\d\))? ?=*"
        assert re.fullmatch(passed, summary), summary
        # Only what needs a real MongoDB may skip (the command counts), and only without one.
        skips = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
        assert all("TEST_MONGODB_URL" in line for line in skips), skips
        assert result.stdout.count("PASSED tests/test_feedback.py::") == 6, result.stdout

    for line in tutorial.commands("06-test/commands.sh"):
        tutorial.run(line, {"python -m pytest": pytest_})


# Asks the app as it stands (in the project's venv, in process) for one page.
PROBE = """
import asyncio, sys, tempfile
import httpx
from vibetuner import Settings
from my_app.app import build_app

async def main():
    data = tempfile.mkdtemp()
    settings = Settings(_env_file=None, environment="test", data_dir=data, email_backend="file")
    app = build_app(settings=settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get(sys.argv[1], headers={"Accept": "text/html"})
            print(page.status_code, page.headers.get("location", ""))
            print(page.text)

asyncio.run(main())
"""


def probe(tutorial: Tutorial, path: str) -> tuple[str, str]:
    """The status line (code and location) and the body of ``GET path``, signed out."""
    result = subprocess.run(
        [str(python_in(tutorial.venv)), "-c", PROBE, path],
        cwd=tutorial.project, env=tutorial.env(), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    status, _, body = result.stdout.partition("\n")
    return status, body


def promote(tutorial: Tutorial) -> None:
    """Step 6: the user who signed in on the dev server becomes an admin."""
    outputs = []

    def record(line: str) -> Callable[[], None]:
        def run() -> None:
            outputs.append(tutorial.vibetuner(*line.split()[1:]).stdout)

        return run

    lines = tutorial.commands("07-admin/commands.sh")
    for line in lines:
        tutorial.run(line, {line: record(line)})
    assert f"{EMAIL} now has the role admin" in outputs[0]
    assert EMAIL in outputs[1]


def production(tutorial: Tutorial) -> None:
    """Step 7: the production settings are accepted with the secrets, refused without."""
    pyproject = tutorial.project / "pyproject.toml"
    text = pyproject.read_text()
    assert '"vibetuner[css,memory] ' in text, "the page says how vibetuner's line looks"
    page = (PAGES / "production.md").read_text(encoding="utf-8")
    assert '`"vibetuner[css,memory,jobs,s3] ..."`' in page
    pyproject.write_text(text.replace('"vibetuner[css,memory] ', '"vibetuner[css,memory,jobs,s3] '))
    install_again = subprocess.run(
        [
            str(python_in(tutorial.venv)), "-m", "pip", "install", "-q", "--no-index",
            "--no-build-isolation", "--no-deps", "-e", str(tutorial.project),
        ],
        capture_output=True, text=True, check=False, env=tutorial.env(),
    )  # fmt: skip
    assert install_again.returncode == 0, install_again.stderr
    shutil.copyfile(tutorial.file("08-production/.env"), tutorial.project / ".env")

    secrets = "\n".join(tutorial.commands("08-production/secrets.sh"))
    [check] = tutorial.commands("08-production/check.sh")
    accepted = tutorial.shell(f"set -e\n{secrets}\n{check}")
    assert accepted.returncode == 0, accepted.stderr

    refused = tutorial.shell(check)
    assert refused.returncode != 0
    assert "SESSION_KEY" in refused.stderr and "MONGODB_URL" in refused.stderr

    def refuses_to_start(line: str) -> Callable[[], None]:
        def run() -> None:
            result = tutorial.vibetuner(*line.split()[1:], check=False)
            assert result.returncode == 2, result.stdout + result.stderr
            message = " ".join((result.stdout + result.stderr).split())
            assert "ENVIRONMENT=production refuses unsafe settings" in message
            assert "SESSION_KEY" in message and "MONGODB_URL" in message

        return run

    for line in tutorial.commands("08-production/commands.sh"):
        tutorial.run(line, {line: refuses_to_start(line)})


def test_the_tutorial_builds_a_working_app(tmp_path, monkeypatch):
    # The scaffold's template cache stays in this test's directory.
    monkeypatch.setenv("VIBETUNER_CACHE_DIR", str(tmp_path / "cache"))
    tutorial = Tutorial(tmp_path)

    start(tutorial)
    assert "Application startup complete" in tutorial.server_output
    tutorial.apply("01-field")
    tutorial.apply("02-page")
    # The new page, open to anyone at this step ...
    status, body = probe(tutorial, "/feedback")
    assert status.startswith("200") and "Tell us what works and what does not." in body
    tutorial.apply("03-protect")
    # ... and for signed-in users only at the next.
    status, _ = probe(tutorial, "/feedback")
    assert status.startswith("303 /auth/login?next=")
    tutorial.apply("04-upload-email-job")
    translate(tutorial)
    tutorial.apply("06-test")
    run_the_apps_tests(tutorial)
    lint = subprocess.run(
        [str(python_in(tutorial.venv)), "-m", "ruff", "check", "src", "tests"],
        cwd=tutorial.project, env=tutorial.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert lint.returncode == 0, lint.stdout
    formatted = subprocess.run(
        [str(python_in(tutorial.venv)), "-m", "ruff", "format", "--check", "src", "tests"],
        cwd=tutorial.project, env=tutorial.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert formatted.returncode == 0, formatted.stdout
    promote(tutorial)
    production(tutorial)

    # Nothing shown on a page went untested.
    assert tutorial.used == step_files()
    assert os.path.exists(tutorial.project / "data" / "devdb.bson")

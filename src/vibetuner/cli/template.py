"""The project template that ships with vibetuner, and its local git history.

``copier update`` needs the template under git, with a ref for the version a project
was made from and one for the version to update to. The template ships as plain files
(inside the wheel, or the checkout for editable installs), so every render goes through
a cached git repository: each distinct template content becomes a commit with a tag
(``v<vibetuner version>+<content hash>``, then ``.post1`` ...), and projects record
that tag.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vibetuner

CONFIG_FILE = "copier.yml"
INSTALLED_KEY = "vibetuner"
# Commit as a fixed identity, without signing, whatever the user's git config says.
GIT_CONFIG = (
    "-c", "user.name=vibetuner", "-c", "user.email=vibetuner@localhost",
    "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main",
)  # fmt: skip


class TemplateError(Exception):
    """The template cannot be found or put under git."""


def installed_template() -> Path:
    """The template directory of the installed vibetuner.

    Inside the package in a wheel install; at the repository root (next to ``src/``)
    in an editable install of a checkout.
    """
    package = Path(vibetuner.__file__).resolve().parent
    for candidate in (package / "scaffold_templates", package.parents[1] / "scaffold_templates"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise TemplateError(
        f"the vibetuner project template is missing (looked in {package / 'scaffold_templates'}); "
        "reinstall vibetuner"
    )


def cache_dir() -> Path:
    """Where template repositories are kept: ``VIBETUNER_CACHE_DIR``, else the user cache."""
    configured = os.environ.get("VIBETUNER_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vibetuner"


def has_git() -> bool:
    """True when the ``git`` program is on ``PATH``."""
    return shutil.which("git") is not None


def is_git_root(path: Path) -> bool:
    """True when ``path`` is the top directory of a git repository."""
    try:
        top = git(path, "rev-parse", "--show-toplevel")
    except TemplateError:
        return False
    return Path(top).resolve() == path.resolve()


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; its output, or ``TemplateError`` with git's message."""
    result = subprocess.run(
        ["git", *GIT_CONFIG, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise TemplateError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def content_hash(template: Path) -> str:
    """SHA-256 over the template's relative paths and file contents."""
    digest = hashlib.sha256()
    for path in sorted(template_files(template)):
        digest.update(path.relative_to(template).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def template_files(template: Path) -> Iterator[Path]:
    """Files of the template, without git metadata and bytecode caches."""
    for path in template.rglob("*"):
        parts = path.relative_to(template).parts
        if ".git" in parts or "__pycache__" in parts or not path.is_file():
            continue
        yield path


def repository_for(template: Path) -> Path:
    """The cache repository of ``template``: one for the installed template, else one per path."""
    if template.resolve() == installed_template().resolve():
        key = INSTALLED_KEY
    else:
        key = "path-" + hashlib.sha256(str(template.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "templates" / key


@contextmanager
def locked(repo: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``repo`` so two commands never commit at once."""
    repo.parent.mkdir(parents=True, exist_ok=True)
    with open(repo.with_suffix(".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def versioned(template: Path) -> tuple[Path, str]:
    """Put the current content of ``template`` in its cache repository.

    Returns the repository and the tag of this content, committing and tagging it
    first when this content was never seen.
    """
    if not has_git():
        raise TemplateError("git is not installed")
    repo = repository_for(template)
    digest = content_hash(template)
    with locked(repo):
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True, exist_ok=True)
            git(repo, "init", "--quiet")
        for line in git(
            repo, "tag", "--list", "--format=%(refname:short) %(contents:subject)"
        ).splitlines():
            tag, _, subject = line.partition(" ")
            if subject == f"content {digest}":
                return repo, tag
        sync_files(template, repo)
        git(repo, "add", "--all")
        git(repo, "commit", "--quiet", "--allow-empty", "-m", f"Template content {digest[:12]}")
        tag = next_tag(repo, digest)
        git(repo, "tag", "-a", tag, "-m", f"content {digest}")
        return repo, tag


def sync_files(template: Path, repo: Path) -> None:
    """Make the work tree of ``repo`` an exact copy of ``template``."""
    for entry in repo.iterdir():
        if entry.name == ".git":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for path in template_files(template):
        target = repo / path.relative_to(template)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def next_tag(repo: Path, digest: str) -> str:
    """``v<version>+<content>``, then ``v<version>.post<N>+<content>`` for later contents.

    The content hash in the tag means a rebuilt history never reuses a name for other
    content; the ``.post`` number keeps the versions of one release in order.
    """
    base = f"v{vibetuner.__version__}"
    releases = [
        tag.split("+", 1)[0]
        for tag in git(repo, "tag", "--list").splitlines()
        if tag.startswith(base)
    ]
    count = sum(1 for r in releases if r == base or r.startswith(f"{base}.post"))
    release = base if count == 0 else f"{base}.post{count}"
    return f"{release}+{digest[:10]}"


def has_ref(repo: Path, ref: str) -> bool:
    """True when ``ref`` names a commit in ``repo``."""
    try:
        git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except TemplateError:
        return False
    return True


def questions(template: Path) -> dict[str, dict[str, Any]]:
    """The questions of ``template``'s ``copier.yml``, by name."""
    import yaml

    config = yaml.safe_load((template / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    return {
        k: (v if isinstance(v, dict) else {"default": v})
        for k, v in config.items()
        if not k.startswith("_")
    }

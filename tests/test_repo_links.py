"""No file of the repository refers to documents outside it (issue 14, item 14): a clone
is complete. A relative path that climbs out of the repository, a path into a `shared`
checkout beside it, a Markdown link to a file that is not in the repository, and a document
named that the repository does not hold (a design note kept elsewhere) all fail here."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
SIBLING = "../" + "shared/"  # spelled apart so that this file does not match itself
# `../` runs that start a relative path (not inside an absolute one, a URL or `/../`).
CLIMB = re.compile(r"(?<![\w./~-])((?:\.\./)+)([\w][\w.-]*)")
# A document named in prose or a comment: `docs/operations.md`, `README.md`, ...
MENTIONED_DOC = re.compile(r"(?<![\w./:-])([\w][\w./-]*\.md)\b")
# [text](target) and ![alt](target); the target up to a space, `)` or `#`.
MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>#]*)")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    files = []
    for name in listed:
        if not name or name.endswith(b".lock"):
            continue
        path = ROOT / name.decode()
        if path.is_file() and b"\0" not in path.read_bytes()[:4096]:
            files.append(path)
    return files


def inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


def test_no_file_refers_to_a_sibling_checkout_or_climbs_out_of_the_repository() -> None:
    problems = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        rel = path.relative_to(ROOT)
        for number, line in enumerate(text.splitlines(), 1):
            if SIBLING in line:
                problems.append(f"{rel}:{number} refers to {SIBLING}")
            for climb, name in CLIMB.findall(line):
                if not inside(path.parent / climb / name):
                    problems.append(f"{rel}:{number} refers to {climb}{name}, outside the repo")
    assert not problems, "\n".join(problems)


def test_every_markdown_link_to_a_file_lands_in_the_repository() -> None:
    problems = []
    for path in tracked_text_files():
        if path.suffix != ".md":
            continue
        rel = path.relative_to(ROOT)
        for target in MD_LINK.findall(path.read_text(encoding="utf-8")):
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # an anchor, or a URL (https:, mailto:)
            base = ROOT if target.startswith("/") else path.parent
            resolved = base / unquote(target.lstrip("/"))
            if not inside(resolved):
                problems.append(f"{rel}: {target} is outside the repository")
            elif not resolved.exists():
                problems.append(f"{rel}: {target} does not exist")
    assert not problems, "\n".join(problems)


def test_every_document_a_file_names_is_in_the_repository() -> None:
    """A `.md` named anywhere (a comment, a docstring, prose) is a file of the repository:
    relative to the naming file, to the root, or under docs/."""
    problems = []
    for path in tracked_text_files():
        rel = path.relative_to(ROOT)
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            for name in MENTIONED_DOC.findall(line):
                candidates = (path.parent / name, ROOT / name, ROOT / "docs" / name)
                if not any(inside(c) and c.exists() for c in candidates):
                    problems.append(f"{rel}:{number} names {name}, which is not in the repository")
    assert not problems, "\n".join(problems)


# A test file named in prose, a comment or a docstring: `tests/test_openapi.py`, ...
MENTIONED_TEST = re.compile(r"(?<![\w.-])((?:[\w.-]+/)*tests/[\w/]+\.py)\b")


def test_every_test_file_a_file_names_exists() -> None:
    """A named test file (`tests/<name>.py`, at the root or in a package's own tests/)
    is one the repository holds: a renamed or merged test leaves no stale pointer."""
    files = tracked_text_files()
    held = {path.relative_to(ROOT).as_posix() for path in files}
    problems = []
    for path in files:
        rel = path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for named in MENTIONED_TEST.findall(line):
                if not any(h == named or h.endswith("/" + named) for h in held):
                    problems.append(f"{rel}:{number} names {named}, which does not exist")
    assert not problems, "\n".join(problems)

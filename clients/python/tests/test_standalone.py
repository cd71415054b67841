"""The client goes into sellers' servers: it imports nothing of Tessera's services or kernel,
and every third-party package it imports is one it declares (httpx, PyJWT)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Import name -> distribution, for what the client may import.
ALLOWED = {"httpx": "httpx", "jwt": "pyjwt"}


def top_level_imports() -> set[str]:
    found: set[str] = set()
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names)


def test_the_client_imports_only_itself_httpx_and_pyjwt() -> None:
    assert top_level_imports() == {"tessera_client", *ALLOWED}


def test_its_distribution_declares_exactly_those() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert names == set(ALLOWED.values())
    assert (ROOT / "src" / "tessera_client" / "py.typed").exists()

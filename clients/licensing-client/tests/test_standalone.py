"""The client ships inside desktop apps: it must not depend on the services' kernel
(`tessera.shared`, whose signing stack the services use) nor on any service. It keeps its
own small verifier (jose.py, trust.py, lease.py)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_client_imports_no_tessera_package_but_its_own() -> None:
    sources = sorted((ROOT / "src").rglob("*.py"))
    assert sources
    foreign = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module.startswith("tessera") and not module.startswith("tessera.licensing_client")
    }
    assert foreign == set()


def test_the_client_distribution_depends_on_no_tessera_distribution() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["dependencies"]
    assert [d for d in project["dependencies"] if d.lower().startswith("tessera")] == []

"""Every image starts: each service installed alone, as the Dockerfile installs it (`uv sync
--frozen --no-dev --package <service>`: its package, tessera-shared and what they declare,
nothing the workspace happens to have), imports every one of its modules and builds its app.
A dependency a service imports but does not declare (hidden in the workspace because another
service pulls it in) fails here. The venvs come from uv's cache, offline when it can."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# service -> (its package's name, its import package)
SERVICES = {
    "auth": ("tessera-auth", "tessera.auth"),
    "billing": ("tessera-billing", "tessera.billing"),
    "licensing": ("tessera-licensing", "tessera.licensing"),
    "webhooks": ("tessera-webhooks", "tessera.webhooks"),
    "portal-web": ("tessera-portal", "tessera.portal"),
    "site": ("tessera-site", "tessera.site"),
}

# Import every module of the package, then build the app as `tessera-<service> serve` does
# (settings from the environment: the test's placeholders are enough to build, not to serve).
IMPORT_ALL = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
from fastapi import FastAPI
app = importlib.import_module(sys.argv[1] + ".app").create_app()
print(isinstance(app, FastAPI))
"""


def uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).exists(), "uv is needed (./dev installs it)"
    return found


def install_alone(package: str, venv: Path) -> None:
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_LINK_MODE": "copy" if os.environ.get("UV_LINK_MODE") == "copy" else "hardlink",
    }
    env.pop("VIRTUAL_ENV", None)
    command = [uv(), "sync", "--frozen", "--no-dev", "--package", package, "-q"]
    offline = subprocess.run([*command, "--offline"], cwd=REPO, env=env, capture_output=True)
    if offline.returncode != 0:  # something not in the cache yet: fetch it once
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_installed_alone_imports_and_builds_its_app(
    service: str, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    package, module = SERVICES[service]
    install_alone(package, venv)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TESSERA_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    env["TESSERA_SITE_DIST_DIR"] = str(tmp_path / "dist")
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", IMPORT_ALL, module],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "True"


def declared(pyproject: Path) -> set[str]:
    data = tomllib.loads(pyproject.read_text())
    return {dist_name(spec) for spec in data["project"].get("dependencies", [])}


def dist_name(spec: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]).lower()


def imported(src: Path) -> set[str]:
    """The top-level names of every absolute import in the source tree."""
    names: set[str] = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"tessera"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_declares_every_package_it_imports(service: str) -> None:
    """A direct import is declared by the service itself or by the kernel it builds on
    (tessera-shared), not merely pulled in by some other dependency."""
    root = REPO / "services" / service
    mine = declared(root / "pyproject.toml") | declared(REPO / "shared" / "pyproject.toml")
    providers = importlib.metadata.packages_distributions()
    undeclared = {
        name: sorted(providers.get(name, ["?"]))
        for name in imported(root / "src")
        if not {dist_name(d) for d in providers.get(name, [])} & mine
    }
    assert not undeclared, f"{service} imports packages it does not declare: {undeclared}"


def test_the_kernel_declares_every_package_it_imports() -> None:
    mine = declared(REPO / "shared" / "pyproject.toml")
    providers = importlib.metadata.packages_distributions()
    undeclared = sorted(
        name
        for name in imported(REPO / "shared" / "src")
        if not {dist_name(d) for d in providers.get(name, [])} & mine
    )
    assert not undeclared

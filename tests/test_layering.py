"""The layering inside and between services, read from the code's own imports (ast).

Inside a service, the folders and top-level modules of its package (`tessera.auth.users`,
`tessera.auth.context`, ...) form layers: one may import another only if the other never
imports it back, directly or through a chain. A loop means two parts cannot be understood,
tested or moved apart, so this test fails naming every loop and the files that close it.
Between services there are no imports at all: a service learns what another knows from
events or over HTTP (docs/architecture.md, "Layering").
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {p.name: p for p in sorted(REPO.glob("services/*/src/tessera/*")) if p.is_dir()}


@dataclass(frozen=True)
class Import:
    source: Path  # the importing file, relative to its service package
    module: str  # the absolute module (or module.name) it names


def module_of(package: str, relative: Path) -> list[str]:
    parts = ["tessera", package, *relative.with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports(package: str, root: Path | None = None) -> Iterator[Import]:
    """Every import in the package's files, relative ones resolved, including those inside
    functions and under `if TYPE_CHECKING:` (a type is a dependency too)."""
    root = root or PACKAGES[package]
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        here = module_of(package, relative)
        if path.name != "__init__.py":
            here = here[:-1]  # a module's relative imports start from its package
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(relative, alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    start = here[: len(here) - (node.level - 1)]
                    base = ".".join([*start, *([node.module] if node.module else [])])
                yield Import(relative, base)
                for alias in node.names:
                    yield Import(relative, f"{base}.{alias.name}")


def part_of(relative: Path) -> str:
    """The layer a file belongs to: its top folder, or its own name at the top."""
    return relative.parts[0].removesuffix(".py")


def layer_graph(package: str) -> dict[str, dict[str, set[str]]]:
    """part -> imported part -> the files (relative to the package) that import it."""
    prefix = f"tessera.{package}."
    graph: dict[str, dict[str, set[str]]] = {}
    for imp in imports(package):
        if not imp.module.startswith(prefix):
            continue
        source, target = part_of(imp.source), imp.module[len(prefix) :].split(".")[0]
        root = PACKAGES[package]
        if target != source and ((root / target).is_dir() or (root / f"{target}.py").exists()):
            graph.setdefault(source, {}).setdefault(target, set()).add(imp.source.as_posix())
    return graph


def loops(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected parts with more than one member (Tarjan), each as one closed
    walk through all its members, so the message shows the loop to break."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members: list[str] = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def shortest_loop(graph: dict[str, dict[str, set[str]]], members: list[str]) -> list[str]:
    """The shortest loop through the first member, inside the strongly connected part."""
    start = members[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, {})):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in members and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError("a strongly connected part always has a loop")


def describe(graph: dict[str, dict[str, set[str]]], members: list[str]) -> str:
    walk = shortest_loop(graph, members)
    steps = [
        f"    {a} -> {b}: {', '.join(sorted(graph[a][b]))}" for a, b in itertools.pairwise(walk)
    ]
    return f"  {' -> '.join(walk)} (all of: {', '.join(members)})\n" + "\n".join(steps)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_two_parts_of_a_service_import_each_other(package: str) -> None:
    graph = layer_graph(package)
    found = loops(graph)
    assert not found, f"tessera.{package} has import loops between its parts:\n" + "\n".join(
        describe(graph, members) for members in found
    )


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_a_service_never_imports_another_service(package: str) -> None:
    others = {f"tessera.{name}" for name in PACKAGES if name != package}
    crossing = sorted(
        f"{imp.source.as_posix()} imports {imp.module}"
        for imp in imports(package)
        if imp.module in others or imp.module.startswith(tuple(f"{o}." for o in others))
    )
    assert not crossing, f"tessera.{package} imports another service:\n" + "\n".join(crossing)


def test_the_kernel_never_imports_a_service() -> None:
    services = tuple(f"tessera.{name}" for name in PACKAGES)
    crossing = sorted(
        f"{imp.source.as_posix()} imports {imp.module}"
        for imp in imports("shared", REPO / "shared" / "src" / "tessera" / "shared")
        if imp.module in services or imp.module.startswith(tuple(f"{s}." for s in services))
    )
    assert not crossing, "tessera.shared imports a service:\n" + "\n".join(crossing)


def documented_ladders() -> dict[str, list[set[str]]]:
    """The table in docs/architecture.md: per service, its parts from the top down."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("### Layering inside a service", 1)[1].split("\n#", 1)[0]
    ladders = {}
    for service, ladder in re.findall(r"^\| (\w+) \| (`.*`) \|$", section, re.MULTILINE):
        ladders[service] = [set(re.findall(r"`(\w+)`", step)) for step in ladder.split("→")]
    return ladders


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_documented_layers_are_the_code_s(package: str) -> None:
    """docs/architecture.md names every part of the service on its ladder, and every import
    between parts points down it."""
    ladder = documented_ladders().get(package)
    assert ladder, f"docs/architecture.md has no layering row for {package}"
    floor = {part: level for level, parts in enumerate(ladder) for part in parts}
    root = PACKAGES[package]
    parts = {
        p.name.removesuffix(".py")
        for p in root.iterdir()
        if (p.is_dir() and any(p.rglob("*.py"))) or (p.suffix == ".py" and p.name != "__init__.py")
    }
    assert parts - floor.keys() == set(), f"parts of {package} missing from the table"
    assert floor.keys() - parts == set(), f"the table names parts {package} does not have"
    upward = sorted(
        f"{a} -> {b} ({', '.join(sorted(files))})"
        for a, targets in layer_graph(package).items()
        for b, files in targets.items()
        if floor[a] >= floor[b]
    )
    assert not upward, f"imports that do not point down the documented ladder: {upward}"


def test_the_loop_finder_names_a_loop_and_passes_a_ladder() -> None:
    """The finder itself: a three-part loop is reported through every member, with the
    files that close it; a ladder (each part importing only those below) is not."""
    ladder = {"routes": {"service": {"r.py"}}, "service": {"queries": {"s.py"}}}
    assert loops(ladder) == []
    looped = {
        "a": {"b": {"a/x.py"}},
        "b": {"c": {"b/y.py"}},
        "c": {"a": {"c/z.py"}, "d": {"c/w.py"}},
    }
    assert loops(looped) == [["a", "b", "c"]]
    assert describe(looped, ["a", "b", "c"]).splitlines() == [
        "  a -> b -> c -> a (all of: a, b, c)",
        "    a -> b: a/x.py",
        "    b -> c: b/y.py",
        "    c -> a: c/z.py",
    ]

"""bench/usage.py's profile attributes py-spy's samples to a record's steps by function
names: each name it looks for must still be a function where it looks, or a renamed step
would silently read 0 % (docs/performance.md, "Usage")."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {
    "usage/fast_path": "services/licensing/src/tessera/licensing/usage/fast_path.py",
    "usage/service": "services/licensing/src/tessera/licensing/usage/service.py",
    "usage/routes": "services/licensing/src/tessera/licensing/usage/routes.py",
    "synced_limits": "shared/src/tessera/shared/synced_limits.py",
}


def load_bench() -> ModuleType:
    sys.path.insert(0, str(ROOT / "bench"))  # it imports its neighbours, as when run
    spec = importlib.util.spec_from_file_location("bench_usage", ROOT / "bench/usage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


BENCH = load_bench()
FRAMES = [
    (step, name, where)
    for step, frames in (*BENCH.STEPS.items(), ("record", BENCH.RECORD))
    for name, where in frames
    if where in OURS
]


@pytest.mark.parametrize(
    ("step", "name", "where"), FRAMES, ids=[f"{where}:{name}" for _, name, where in FRAMES]
)
def test_each_profiled_step_names_a_function_of_ours_that_exists(
    step: str, name: str, where: str
) -> None:
    source = (ROOT / OURS[where]).read_text()
    assert re.search(rf"^\s*(async )?def {re.escape(name)}\(", source, re.M), (step, name)
    # As py-spy writes it: a method by its class, then the file and line.
    frame = f"Owner.{name} ({OURS[where].split('/src/', 1)[-1].replace('tessera/', '')}:12)"
    stack = f"Runner.run (asyncio/runners.py:118);{frame}"
    assert BENCH._in_step(stack, ((name, where),))


def test_a_step_does_not_match_another_files_function_of_the_same_name() -> None:
    stack = "Runner.run (asyncio/runners.py:118);record (licensing/orders/service.py:40)"
    assert not BENCH._in_step(stack, BENCH.RECORD)

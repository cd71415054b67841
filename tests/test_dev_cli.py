"""`./dev test`'s summary names the C# client's tests as run only when the arguments select
their module."""

from __future__ import annotations

import pytest

from tessera.devstack.cli import dotnet_selected

CASES = {
    "whole-suite": ([], True),
    "parallel-whole-suite": (["-n", "2", "--dist", "loadfile"], True),
    "the-module": (["tests/test_dotnet_client.py", "-q"], True),
    "one-test-in-it": (["tests/test_dotnet_client.py::test_x"], True),
    "its-folder": (["tests", "-x"], True),
    "another-service": (["services/licensing/tests", "-q"], False),
    "another-module": (["tests/test_openapi.py"], False),
    "a-k-value-named-tests": (["-k", "tests", "services/licensing/tests"], False),
    "deselected": (["--deselect", "tests/test_dotnet_client.py"], False),
    "ignored": (["tests", "--ignore=tests/test_dotnet_client.py"], False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_csharp_module_is_selected_only_by_arguments_that_collect_it(case: str) -> None:
    args, selected = CASES[case]
    assert dotnet_selected(args) is selected

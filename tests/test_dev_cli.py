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


def test_up_points_billing_at_the_stripe_standin_only_when_no_stripe_key_is_set() -> None:
    from tessera.billing.settings import BillingSettings
    from tessera.devstack.stack import stripe_configured, use_stripe_standin

    assert not stripe_configured({})
    assert not stripe_configured({"TESSERA_BILLING_STRIPE_SECRET_KEY": " "})
    assert stripe_configured({"TESSERA_BILLING_STRIPE_SECRET_KEY": "sk_test_mine"})
    env: dict[str, str] = {}
    url = use_stripe_standin(env, 12411)
    assert url == "http://127.0.0.1:12411" == env["TESSERA_BILLING_STRIPE_API_BASE"]
    assert stripe_configured(env)
    # What billing makes of it (its settings refuse a malformed Connect client id).
    prefix = "TESSERA_BILLING_"
    settings = BillingSettings.model_validate(
        {name.removeprefix(prefix).lower(): value for name, value in env.items()}
    )
    assert not settings.test_checkout and not settings.live
    assert settings.stripe_connect_client_id == env[f"{prefix}STRIPE_CONNECT_CLIENT_ID"]


def test_the_stripe_commands_say_when_no_standin_answers() -> None:
    from typer.testing import CliRunner

    from tessera.devstack.cli import app
    from tessera.devstack.infra import free_port
    from tessera.devstack.stack import STRIPE_STANDIN_PORT

    offset = str(free_port() - STRIPE_STANDIN_PORT)
    for args in (["clock", "advance", "--days", "1"], ["card", "fail", "--customer", "a@b.co"]):
        result = CliRunner().invoke(app, ["stripe", *args, "--port-offset", offset])
        assert result.exit_code == 1 and "is `./dev up` running" in result.output, result.output

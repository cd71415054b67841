"""`./dev`: `up` runs the whole stack, `test` runs every test, both on real servers."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer

from tessera.devstack.infra import infrastructure, wait_for_port
from tessera.devstack.stack import (
    MAIL_HTTP_PORT,
    SERVICES,
    STRIPE_STANDIN_PORT,
    create_databases,
    stack_env,
    start_mailcatcher,
    start_services,
    start_stripe_standin,
    stop_processes,
    stripe_configured,
    use_stripe_standin,
    wait_ready,
)

app = typer.Typer(help="Tessera's dev bootstrap.", no_args_is_help=True, add_completion=False)

REPO = Path(__file__).resolve().parents[4]
# The pytest module that builds clients/licensing-dotnet with mcs and runs its NUnit suites.
DOTNET_TESTS = "tests/test_dotnet_client.py"
DEV_DIR = REPO / ".dev"


@app.command()
def up(
    embedded: bool = typer.Option(
        False, "--embedded", help="Start embedded NATS/Postgres/Redis even if system ones answer."
    ),
    port_offset: int = typer.Option(0, help="Add this to every service port."),
    smoke: bool = typer.Option(
        False,
        "--smoke",
        help="Start everything, check every /readyz, run a customer's journey (buy, mail, "
        "sign in, activate, validate), stop; exit 0 if it all worked.",
    ),
) -> None:
    """Run the whole stack: infra, databases, migrations, every service."""
    root = DEV_DIR / ("smoke" if smoke else "up")
    with infrastructure(root / "infra", embedded=embedded) as infra:
        typer.echo("infrastructure:\n" + infra.describe())
        create_databases(infra)
        env = stack_env(infra, port_offset, root)
        mail = start_mailcatcher(port_offset, root / "logs")
        processes = []
        standin_url = None
        if not stripe_configured(env):
            # No Stripe key: billing talks to the local stand-in, through the same code
            # that talks to Stripe (docs/stripe-standin.md, "Offline: ./dev up").
            standin_url = use_stripe_standin(env, STRIPE_STANDIN_PORT + port_offset)
            billing_url = f"http://127.0.0.1:{env['TESSERA_BILLING_PORT']}"
            processes.append(
                start_stripe_standin(
                    STRIPE_STANDIN_PORT + port_offset,
                    billing_url,
                    root / "logs",
                    state_file=root / "stripe-standin.state",
                )
            )
            wait_for_port("127.0.0.1", STRIPE_STANDIN_PORT + port_offset, "Stripe stand-in")
        processes += start_services(env, port_offset, root / "logs")
        try:
            status = wait_ready(port_offset)
            for svc in SERVICES:
                url = f"http://127.0.0.1:{svc.port + port_offset}"
                typer.echo(f"  {svc.name:<11}{url:<26}{status[svc.name]}")
            mail_url = f"http://127.0.0.1:{MAIL_HTTP_PORT + port_offset}"
            mail_status = (
                "already running"
                if mail is None
                else "running"
                if mail.poll() is None
                else "exited (see mail.log)"
            )
            typer.echo(f"  {'dev mail':<11}{mail_url:<26}{mail_status}")
            stripe = f"stand-in {standin_url}" if standin_url else "Stripe (your key)"
            typer.echo(f"  {'stripe':<11}{stripe}")
            ready = all(s == "ready" for s in status.values())
            if smoke:
                if not ready:
                    typer.echo(f"smoke: not every service became ready; logs in {root / 'logs'}")
                    raise typer.Exit(1)
                typer.echo("smoke: every service is ready")
                run_journey(port_offset, root / "logs")
                return
            typer.echo(f"logs: {root / 'logs'}   Ctrl-C stops everything started here.")
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            typer.echo("a service exited; stopping the stack")
            raise typer.Exit(1)
        except KeyboardInterrupt:
            typer.echo("stopping")
        finally:
            stop_processes(processes + ([mail] if mail is not None else []))


def run_journey(port_offset: int, logs: Path) -> None:
    """The smoke's customer journey against the stack `up` started (see devstack.journey)."""
    from tessera.devstack.journey import JourneyFailed, journey

    url = {svc.name: f"http://127.0.0.1:{svc.port + port_offset}" for svc in SERVICES}
    mail_url = f"http://127.0.0.1:{MAIL_HTTP_PORT + port_offset}"
    try:
        asyncio.run(journey(url, mail_url, lambda step: typer.echo(f"smoke: {step}")))
    except (JourneyFailed, httpx.HTTPError) as error:
        typer.echo(f"smoke: the journey failed: {error}; logs in {logs}")
        raise typer.Exit(1) from error
    typer.echo("smoke: a customer bought, signed in, activated and validated")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def test(
    ctx: typer.Context,
    embedded: bool = typer.Option(False, "--embedded", help="Force embedded servers."),
) -> None:
    """Run every test against real servers (started if missing), isolated per run."""
    run_id = secrets.token_hex(3)
    with infrastructure(DEV_DIR / "test" / "infra", embedded=embedded) as infra:
        typer.echo("infrastructure:\n" + infra.describe())
        env = {**os.environ, **infra.env(), "TESSERA_TEST_RUN": run_id}
        args = list(ctx.args) or ["-n", "2", "--dist", "loadfile"]
        mcs = shutil.which("mcs")
        selected = dotnet_selected(args)
        if mcs is None and selected:
            # Without Mono the C# client cannot be built: leave its module out and say so
            # below, rather than fail every run on a machine without it (CI installs Mono).
            args += ["--deselect", DOTNET_TESTS]
        result = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=REPO, env=env)
    if not selected:
        typer.echo("C# client tests: not selected")
    elif mcs:
        typer.echo(f"C# client tests: run with {mcs}")
    else:
        typer.echo("C# client tests: not run (mcs not on PATH; install mono-devel to run them)")
    raise typer.Exit(result.returncode)


# pytest options whose value is the next argument (so it is not read as a path).
VALUE_OPTIONS = {"-k", "-m", "-n", "-p", "-c", "-o", "--dist", "--maxfail", "--rootdir"}
LEAVE_OUT = ("--deselect", "--ignore")


def dotnet_selected(args: list[str]) -> bool:
    """Whether pytest's `args` collect the C# client's module: no path given (the whole
    suite) or a path that is the module, a test in it or a folder holding it, and it is not
    deselected or ignored. (`-k` and `-m` filters are not evaluated.)"""
    target = (REPO / DOTNET_TESTS).resolve()

    def covers(arg: str) -> bool:
        path = (REPO / arg.split("::", 1)[0]).resolve()
        return path == target or path in target.parents

    paths: list[str] = []
    left_out = False
    rest = iter(args)
    for arg in rest:
        option, _, value = arg.partition("=")
        if option in LEAVE_OUT:
            left_out |= covers(value or next(rest, ""))
        elif arg in VALUE_OPTIONS:
            next(rest, None)
        elif not arg.startswith("-"):
            paths.append(arg)
    return not left_out and (not paths or any(covers(p) for p in paths))


@app.command()
def asyncapi(
    out: Path = typer.Option(REPO / "docs" / "asyncapi", help="Folder for the documents."),
) -> None:
    """Write each service's AsyncAPI document (generated by FastStream) to docs/."""
    from tessera.devstack.asyncapi import write_documents

    for path in write_documents(out):
        typer.echo(path)


@app.command()
def openapi(
    out: Path = typer.Option(REPO / "docs" / "openapi", help="Folder for the documents."),
) -> None:
    """Write each HTTP service's OpenAPI document to docs/openapi/, the AsyncAPI ones to
    docs/asyncapi/ (the contracts tests/test_openapi.py and tests/test_asyncapi.py hold the
    code to), and the webhook event catalogue's JSON Schemas into docs/webhooks.md."""
    from tessera.devstack.asyncapi import write_documents as write_asyncapi
    from tessera.devstack.openapi import write_documents
    from tessera.webhooks.catalogue.service import with_catalogue

    for path in [*write_documents(out), *write_asyncapi(out.parent / "asyncapi")]:
        typer.echo(path)
    catalogue = out.parent / "webhooks.md"
    catalogue.write_text(with_catalogue(catalogue.read_text(encoding="utf-8")), encoding="utf-8")
    typer.echo(catalogue)


@app.command("stripe-standin")
def stripe_standin(
    port: int = typer.Option(12111, envvar="TESSERA_STRIPE_STANDIN_PORT"),
    host: str = typer.Option("127.0.0.1", envvar="TESSERA_STRIPE_STANDIN_HOST"),
    public_url: str | None = typer.Option(
        None, envvar="TESSERA_STRIPE_STANDIN_PUBLIC_URL", help="Default: http://HOST:PORT."
    ),
    api_key: str | None = typer.Option(
        None,
        envvar="TESSERA_STRIPE_STANDIN_API_KEY",
        help="Accept only this key (default: any sk_test_).",
    ),
    platform_webhook_url: str | None = typer.Option(
        None, envvar="TESSERA_STRIPE_STANDIN_WEBHOOK_URL"
    ),
    platform_webhook_secret: str = typer.Option(
        "whsec_standin", envvar="TESSERA_STRIPE_STANDIN_WEBHOOK_SECRET"
    ),
    connect_webhook_url: str | None = typer.Option(
        None, envvar="TESSERA_STRIPE_STANDIN_CONNECT_WEBHOOK_URL"
    ),
    connect_webhook_secret: str = typer.Option(
        "whsec_standin_connect", envvar="TESSERA_STRIPE_STANDIN_CONNECT_WEBHOOK_SECRET"
    ),
    client_id: str = typer.Option("ca_standin", envvar="TESSERA_STRIPE_STANDIN_CLIENT_ID"),
    state_file: Path | None = typer.Option(
        None,
        envvar="TESSERA_STRIPE_STANDIN_STATE_FILE",
        help="Keep the state here between runs (default: in memory only).",
    ),
    clock_per_customer: bool = typer.Option(
        False,
        "--clock-per-customer",
        help="Put every new customer on a test clock of its own (`./dev stripe clock advance`).",
    ),
) -> None:
    """Serve the Stripe API stand-in (docs/stripe-standin.md): point the stripe library's
    `base_addresses` at it."""
    import uvicorn

    from tessera.devstack.stripe_standin.app import create_app
    from tessera.devstack.stripe_standin.settings import StandInSettings, WebhookTarget

    settings = StandInSettings(
        public_url=public_url or f"http://{host}:{port}",
        api_key=api_key,
        client_id=client_id,
        clock_per_customer=clock_per_customer,
        state_file=str(state_file) if state_file else None,
        platform_webhook=WebhookTarget(platform_webhook_url, platform_webhook_secret)
        if platform_webhook_url
        else None,
        connect_webhook=WebhookTarget(connect_webhook_url, connect_webhook_secret)
        if connect_webhook_url
        else None,
    )
    typer.echo(f"Stripe stand-in on http://{host}:{port}")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


stripe_app = typer.Typer(
    help="Drive the Stripe stand-in `./dev up` runs with no Stripe key.", no_args_is_help=True
)
clock_app = typer.Typer(help="Test clocks: move subscriptions through time.", no_args_is_help=True)
card_app = typer.Typer(help="Make a customer's card decline, or pay again.", no_args_is_help=True)
stripe_app.add_typer(clock_app, name="clock")
stripe_app.add_typer(card_app, name="card")
app.add_typer(stripe_app, name="stripe")

STANDIN_OFFSET = typer.Option(0, "--port-offset", help="The offset `./dev up` was given.")
CUSTOMER = typer.Option(None, "--customer", help="The customer's email (default: everyone).")


def standin_url(port_offset: int) -> str:
    return f"http://127.0.0.1:{STRIPE_STANDIN_PORT + port_offset}"


def _hint(error: Exception, port_offset: int) -> str:
    if isinstance(error, httpx.ConnectError):
        return (
            f" (nothing at {standin_url(port_offset)}: is `./dev up` running with no Stripe "
            "key, and with this --port-offset?)"
        )
    return ""


@clock_app.command("advance")
def clock_advance(
    days: float = typer.Option(..., "--days", help="How far to move the clock on."),
    customer: str | None = CUSTOMER,
    port_offset: int = STANDIN_OFFSET,
) -> None:
    """Advance the test clock of a customer (or of every customer) bought offline: renewals,
    failed renewals, retries and period ends happen and reach billing as Stripe's events."""
    from tessera.devstack.stripe_control import ControlError, advance

    try:
        moved = advance(standin_url(port_offset), days, customer)
    except (ControlError, httpx.HTTPError) as error:
        typer.echo(f"stripe clock: {error}{_hint(error, port_offset)}")
        raise typer.Exit(1) from error
    for done in moved:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(done.frozen_time))
        where = f" (account {done.account})" if done.account else ""
        typer.echo(f"{done.clock}{where} now at {when}: {', '.join(done.customers)}")


def _card(email: str, failing: bool, port_offset: int) -> None:
    from tessera.devstack.stripe_control import ControlError, set_failing

    try:
        ids = set_failing(standin_url(port_offset), email, failing)
    except (ControlError, httpx.HTTPError) as error:
        typer.echo(f"stripe card: {error}{_hint(error, port_offset)}")
        raise typer.Exit(1) from error
    typer.echo(f"{email} ({', '.join(ids)}): {'declines' if failing else 'pays'}")


@card_app.command("fail")
def card_fail(
    customer: str = typer.Option(..., "--customer", help="The customer's email."),
    port_offset: int = STANDIN_OFFSET,
) -> None:
    """From now on the customer's payments decline (renewals fail: past_due, retries)."""
    _card(customer, True, port_offset)


@card_app.command("fix")
def card_fix(
    customer: str = typer.Option(..., "--customer", help="The customer's email."),
    port_offset: int = STANDIN_OFFSET,
) -> None:
    """The customer's payments succeed again (the next retry pays)."""
    _card(customer, False, port_offset)


@app.command()
def lint(
    fix: bool = typer.Option(False, "--fix", help="Apply ruff's fixes and formatting."),
) -> None:
    """ruff (lint + format) and mypy, as CI runs them."""
    steps = (
        [["ruff", "check", "--fix", "."], ["ruff", "format", "."]]
        if fix
        else [["ruff", "check", "."], ["ruff", "format", "--check", "."]]
    )
    mypy = ["shared/src", "services", "clients", "devtools/src", "devtools/tests", "tests"]
    steps.append(["mypy", *mypy, "conftest.py"])
    failed = [
        step[0]
        for step in steps
        if subprocess.run([sys.executable, "-m", *step], cwd=REPO).returncode
    ]
    if failed:
        typer.echo(f"lint failed: {', '.join(failed)}")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

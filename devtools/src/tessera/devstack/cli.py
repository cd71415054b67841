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

from tessera.devstack.infra import infrastructure
from tessera.devstack.stack import (
    MAIL_HTTP_PORT,
    SERVICES,
    create_databases,
    stack_env,
    start_mailcatcher,
    start_services,
    stop_processes,
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
        processes = start_services(env, port_offset, root / "logs")
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
        if mcs is None:
            # Without Mono the C# client cannot be built: leave its module out and say so
            # below, rather than fail every run on a machine without it (CI installs Mono).
            args += ["--deselect", DOTNET_TESTS]
        result = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=REPO, env=env)
    typer.echo(
        f"C# client tests: run with {mcs}"
        if mcs
        else "C# client tests: not run (mcs not on PATH; install mono-devel to run them)"
    )
    raise typer.Exit(result.returncode)


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
    """Write each HTTP service's OpenAPI document to docs/openapi/, and the AsyncAPI ones
    to docs/asyncapi/ (the contracts tests/test_openapi.py and tests/test_asyncapi.py hold
    the code to)."""
    from tessera.devstack.asyncapi import write_documents as write_asyncapi
    from tessera.devstack.openapi import write_documents

    for path in [*write_documents(out), *write_asyncapi(out.parent / "asyncapi")]:
        typer.echo(path)


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
    steps.append(
        ["mypy", "shared/src", "services", "clients", "devtools/src", "tests", "conftest.py"]
    )
    failed = [
        step[0]
        for step in steps
        if subprocess.run([sys.executable, "-m", *step], cwd=REPO).returncode
    ]
    if failed:
        typer.echo(f"lint failed: {', '.join(failed)}")
        raise typer.Exit(1)

"""The C# licensing client (clients/licensing-dotnet), built with Mono's mcs against the
.NET Framework 4.8 reference assemblies and tested with NUnit: every vector of
docs/licensing-client.md, then a live suite against this test's own stack (billing, auth,
licensing and the portal as uvicorn processes on real Postgres, NATS and Redis, mail over
SMTP to the dev catcher).

The stack is prepared as customers and an admin would: purchases on billing's test
checkout make the licenses (one refunded, one disputed, one expired by an admin), the
welcome mail's link signs the buyer in, and the C# suite gets their keys and the browser
session (which approves its device sign-in as the portal's page does) in TESSERA_LIVE_*.

Without `mcs` on PATH these tests fail, naming what to install; `./dev test` leaves this
module out there instead and says so in its summary (CI installs Mono first).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from tessera.devstack.infra import Infra, Server, free_port, wait_for_port
from tessera.devstack.journey import LINK, SKU, Browser, Inbox
from tessera.devstack.pins import root_pins
from tessera.devstack.stack import (
    DATABASES,
    stack_env,
    start_mailcatcher,
    start_services,
    stop_processes,
    wait_ready,
)
from tessera.licensing_client import LeaseStore, LicensingClient
from tessera.shared.db.pool import with_database
from tessera.shared.settings import InfraSettings

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "clients" / "licensing-dotnet" / "build.sh"
# Webhooks too: auth consumes its stream (webhooks.endpoint.disabled.v1) and waits for it.
SERVICES = ("billing", "auth", "licensing", "webhooks", "portal-web")
# What the offline suite holds today: a lost fixture or an emptied vector block shows here.
OFFLINE_TESTS = 50
LIVE_TESTS = 12
# nunit-console's summary (NUnit 2.6).
SUMMARY = re.compile(
    r"Tests run: (\d+), Errors: (\d+), Failures: (\d+), Inconclusive: (\d+),.*?\n"
    r"\s*Not run: (\d+),"
)
FLOATING_POLICY = """
INSERT INTO policies (code, product_code, max_machines, duration_seconds, lease_seconds,
                      grace_seconds, heartbeat_seconds, heartbeat_grace_seconds, floating,
                      seller_id, mode)
VALUES ('chartgpt-floating', 'chartgpt', 1, NULL, 3600, 0, 2, 2, true, '00000000-0000-4000-8000-000000000001', 'live')
"""
MONO = "Mono (Debian: apt-get install mono-devel libnunit-cil-dev nunit-console libsodium23)"


def run_suite(mode: str, out: Path, env: dict[str, str], timeout: float) -> tuple[int, int]:
    """Build and run the NUnit suite; (tests run, tests passed) from its summary."""
    if shutil.which("mcs") is None:
        pytest.fail(f"mcs is not on PATH: install {MONO}", pytrace=False)
    result = subprocess.run(
        ["bash", str(BUILD), mode],
        env={**os.environ, **env, "TESSERA_DOTNET_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    report = result.stdout[-20000:] + result.stderr[-5000:]
    assert result.returncode == 0, report
    counts = SUMMARY.search(result.stdout)
    assert counts, report
    run, errors, failures, inconclusive, not_run = map(int, counts.groups())
    return run, run - errors - failures - inconclusive - not_run


def test_the_csharp_client_passes_every_published_vector(tmp_path: Path) -> None:
    run, passed = run_suite("test", tmp_path, {}, timeout=300)
    assert (run, passed) == (OFFLINE_TESTS, OFFLINE_TESTS)


@pytest.mark.integration
@pytest.mark.timeout(600)
async def test_the_csharp_client_against_the_running_services(
    prepared: dict[str, str], tmp_path: Path
) -> None:
    run, passed = await asyncio.to_thread(run_suite, "live", tmp_path, prepared, 420)
    assert (run, passed) == (OFFLINE_TESTS + LIVE_TESTS, OFFLINE_TESTS + LIVE_TESTS)


# ------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    url: dict[str, str]
    inbox: Inbox
    env: dict[str, str]
    databases: dict[str, str]


@pytest.fixture
async def stack(
    database_factory: Any, infra_settings: InfraSettings, tmp_path: Path
) -> AsyncIterator[Stack]:
    """This test's own stack: `./dev up`'s processes on free ports, fresh databases and
    namespace. Each process's log is printed at the end (pytest shows it on failure)."""
    ports = {name: free_port() for name in SERVICES}
    smtp_port, mail_port = free_port(), free_port()
    databases = {name: await database_factory(name) for name in DATABASES}
    infra = Infra(
        nats=Server("nats", str(infra_settings.nats_url), embedded=False),
        postgres=Server("postgres", with_database(databases["billing"], "postgres"), False),
        redis=Server("redis", str(infra_settings.redis_url), embedded=False),
    )
    env = stack_env(
        infra,
        0,
        tmp_path,
        ports=ports,
        database_urls=databases,
        namespace=infra_settings.namespace,
        smtp_port=smtp_port,
    )
    # The device flow's first poll is due one interval after the authorization: one second
    # keeps the C# suite quick (slow_down still adds auth's 5 s, as the client expects).
    env["TESSERA_AUTH_DEVICE_POLL_INTERVAL_SECONDS"] = "1"
    # Heartbeats written and lapsed machines swept within moments, not every 15 s.
    env["TESSERA_LICENSING_HEARTBEAT_FLUSH_SECONDS"] = "0.1"
    env["TESSERA_LICENSING_HEARTBEAT_SWEEP_SECONDS"] = "0.3"
    logs = tmp_path / "logs"
    mail = start_mailcatcher(0, logs, smtp_port=smtp_port, http_port=mail_port)
    assert mail is not None, "a free port already had a mail server on it"
    processes = [mail, *start_services(env, 0, logs, ports=ports, only=SERVICES)]
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", mail_port, "mail catcher")
        status = await asyncio.to_thread(wait_ready, 0, 150, ports=ports, only=SERVICES)
        assert all(s == "ready" for s in status.values()), status
        url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        yield Stack(url, Inbox(f"http://127.0.0.1:{mail_port}"), env, databases)
    finally:
        await asyncio.to_thread(stop_processes, processes)
        for log in sorted(logs.glob("*.log")):
            print(f"----- {log.name}\n{log.read_text(errors='replace')[-4000:]}")


async def call(url: str, method: str, path: str, token: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        answer = await http.request(
            method, path, headers={"authorization": f"Bearer {token}"}, **kwargs
        )
    assert answer.status_code in (200, 201), f"{method} {path}: {answer.status_code} {answer.text}"
    return answer.json()


class Buyer:
    """One customer: buys on the test checkout, signed in to the portal by the welcome mail."""

    def __init__(self, stack: Stack, eventually: Callable[..., Awaitable[Any]]) -> None:
        self.stack = stack
        self.eventually = eventually
        self.email = f"dotnet-{secrets.token_hex(4)}@example.com"
        self.shop = Browser(stack.url["billing"])
        self.portal = Browser(stack.url["portal-web"])
        self.orders: set[str] = set()

    async def token(self) -> str:
        async with httpx.AsyncClient(base_url=self.stack.url["auth"], timeout=10) as auth:
            answer = await auth.post(
                "/v1/sessions/token", json={"session_id": self.portal.cookie("tessera_session")}
            )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    async def buy(self) -> tuple[httpx.Response, dict[str, Any]]:
        """(the paid checkout page, whose buttons refund or dispute; the license it made)."""
        paid = await self.shop.submit(await self.shop.get(f"/buy/{SKU}"), "Pay", email=self.email)
        assert "Payment received" in paid.text
        if not self.orders:
            welcome = await self.eventually(
                lambda: self.stack.inbox.text(self.email, "Welcome to"), timeout=30
            )
            link = LINK.search(welcome)
            assert link, welcome
            signed_in = await self.portal.submit(await self.portal.get(link.group(0)), "Sign in")
            assert urlsplit(str(signed_in.url)).path == "/licenses"

        async def new_license() -> dict[str, Any] | None:
            token = await self.token()
            orders = await call(self.stack.url["billing"], "GET", "/v1/me/orders", token)
            fresh = [o["id"] for o in orders if o["id"] not in self.orders]
            if not fresh:
                return None
            mine = await call(self.stack.url["licensing"], "GET", "/v1/me/licenses", token)
            found = [lic for lic in mine if lic["order_id"] == fresh[0]]
            return found[0] if found else None

        license_: dict[str, Any] = await self.eventually(new_license, timeout=30)
        self.orders.add(license_["order_id"])
        return paid, license_


async def says(client: LicensingClient, key: str, fingerprint: str, code: str) -> bool:
    return (await client.validate(key, fingerprint)).code == code


@pytest.fixture
async def prepared(stack: Stack, eventually: Any, tmp_path: Path) -> dict[str, str]:
    """The licenses the C# suite needs, made as customers and an admin make them."""
    buyer = Buyer(stack, eventually)
    async with (
        buyer.shop,
        buyer.portal,
        LicensingClient(
            stack.url["licensing"],
            LeaseStore(tmp_path / "python-lease.json", machine_id="prepare"),
            roots=await root_pins(stack.url["licensing"]),
        ) as desktop,
    ):
        _, active = await buyer.buy()
        _, spare = await buyer.buy()

        refunded_page, refunded = await buyer.buy()
        refunded_machine = f"dotnet-refunded-{secrets.token_hex(6)}"
        activated = await desktop.activate(refunded_machine, key=refunded["key"])
        assert activated.code == "VALID", activated.body
        await buyer.shop.submit(refunded_page, "Refund in full")
        await eventually(
            lambda: says(desktop, refunded["key"], refunded_machine, "REVOKED"), timeout=30
        )

        disputed_page, disputed = await buyer.buy()
        await buyer.shop.submit(disputed_page, "Open a dispute")
        await eventually(
            lambda: says(desktop, disputed["key"], "dotnet-any", "SUSPENDED"), timeout=30
        )

        _, expired = await buyer.buy()
        grant = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-c",
                "from tessera.auth.cli import main; main()",
                *("admins", "grant", buyer.email),
            ],
            env={**os.environ, **stack.env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert grant.returncode == 0, grant.stdout + grant.stderr
        await call(
            stack.url["licensing"],
            "POST",
            f"/v1/admin/licenses/{expired['id']}/extend",
            await buyer.token(),
            json={"expires_at": "2025-01-01T00:00:00Z", "reason": "the C# suite's expired license"},
        )
        assert await says(desktop, expired["key"], "dotnet-any", "EXPIRED")

        # A floating license (one seat, heartbeats every 2 s with 2 s of grace), granted by
        # the admin under a policy the operator added.
        conn = await asyncpg.connect(stack.databases["licensing"])
        try:
            await conn.execute(FLOATING_POLICY)
        finally:
            await conn.close()
        [floating] = await call(
            stack.url["licensing"],
            "POST",
            "/v1/admin/licenses",
            await buyer.token(),
            json={
                "account_id": active["account_id"],
                "email": buyer.email,
                "policy": "chartgpt-floating",
                "reason": "the C# suite's floating seat",
            },
        )

        return {
            "TESSERA_LIVE_LICENSING_URL": stack.url["licensing"],
            "TESSERA_LIVE_AUTH_URL": stack.url["auth"],
            "TESSERA_LIVE_PINS": ",".join(await root_pins(stack.url["licensing"])),
            "TESSERA_LIVE_KEY": active["key"],
            "TESSERA_LIVE_SEATS": str(active["max_machines"]),
            "TESSERA_LIVE_SPARE_KEY": spare["key"],
            "TESSERA_LIVE_REVOKED_KEY": refunded["key"],
            "TESSERA_LIVE_REVOKED_FINGERPRINT": refunded_machine,
            "TESSERA_LIVE_SUSPENDED_KEY": disputed["key"],
            "TESSERA_LIVE_EXPIRED_KEY": expired["key"],
            "TESSERA_LIVE_FLOATING_KEY": floating["key"],
            "TESSERA_LIVE_SESSION": buyer.portal.cookie("tessera_session"),
        }

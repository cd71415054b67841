"""Subscriptions offline, as `./dev up` runs them with no Stripe key: billing as a uvicorn
process pointed at the Stripe stand-in (a process too, started as `./dev up` starts it, each
new customer on a test clock of its own), on real NATS, Postgres and Redis. A buyer
subscribes to the home catalog's tier; `./dev stripe clock advance` moves a month on and
billing hears the renewal; `./dev stripe card fail` and another month make it past_due."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tessera.devstack.cli import app as dev
from tessera.devstack.infra import Infra, Server, free_port, wait_for_port
from tessera.devstack.stack import (
    STANDIN_API_KEY,
    STRIPE_STANDIN_PORT,
    stack_env,
    start_services,
    start_stripe_standin,
    stop_processes,
    use_stripe_standin,
    wait_ready,
)
from tessera.shared.db.pool import with_database
from tessera.shared.settings import InfraSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@dataclass
class Offline:
    billing: httpx.AsyncClient
    standin: httpx.AsyncClient
    # `./dev stripe ... --port-offset` that reaches this test's stand-in.
    offset: str
    keys: dict[str, dict[str, str]]

    def dev(self, *args: str) -> str:
        result = CliRunner().invoke(dev, [*args, "--port-offset", self.offset])
        assert result.exit_code == 0, result.output
        return result.output

    async def subscription(self, subscription_id: str) -> dict[str, Any] | None:
        answer = await self.billing.get(
            f"/v1/subscriptions/{subscription_id}", headers=self.keys["secret"]
        )
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
async def offline(
    database_factory: Any,
    infra_settings: InfraSettings,
    all_streams: None,
    home_keys: Any,
    tmp_path: Path,
) -> AsyncIterator[Offline]:
    """Billing alone (the streams of the services it follows made as they would make them)."""
    ports = {"billing": free_port()}
    standin_port = free_port()
    billing_db = await database_factory("billing")
    infra = Infra(
        nats=Server("nats", str(infra_settings.nats_url), embedded=False),
        postgres=Server("postgres", with_database(billing_db, "postgres"), False),
        redis=Server("redis", str(infra_settings.redis_url), embedded=False),
    )
    env = stack_env(
        infra,
        0,
        tmp_path,
        ports=ports,
        database_urls={"billing": billing_db},
        namespace=infra_settings.namespace,
    )
    standin_url = use_stripe_standin(env, standin_port)
    env["TESSERA_BILLING_STRIPE_SYNC_RETRY_SECONDS"] = "0.2"
    billing_url = f"http://127.0.0.1:{ports['billing']}"
    logs = tmp_path / "logs"
    processes = [start_stripe_standin(standin_port, billing_url, logs)]
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", standin_port, "Stripe stand-in")
        processes += start_services(env, 0, logs, ports=ports, only=["billing"])
        status = await asyncio.to_thread(wait_ready, 0, 120, ports=ports, only=["billing"])
        assert status == {"billing": "ready"}, status
        keys = await home_keys()
        async with (
            httpx.AsyncClient(base_url=billing_url, timeout=20) as billing,
            httpx.AsyncClient(
                base_url=standin_url,
                headers={"authorization": f"Bearer {STANDIN_API_KEY}"},
                timeout=20,
            ) as standin,
        ):
            yield Offline(billing, standin, str(standin_port - STRIPE_STANDIN_PORT), keys)
    finally:
        await asyncio.to_thread(stop_processes, processes)
        for log in sorted(logs.glob("*.log")):
            print(f"----- {log.name}\n{log.read_text(errors='replace')[-4000:]}")


async def test_a_subscription_bought_offline_renews_and_falls_past_due_on_its_clock(
    offline: Offline, eventually: Any
) -> None:
    email = f"offline-{secrets.token_hex(4)}@example.com"

    # Subscribe to the home catalog's tier (once billing holds the key and has synced the
    # tier's price to the stand-in), and pay on the stand-in's hosted checkout.
    async def started() -> dict[str, Any] | None:
        answer = await offline.billing.post(
            "/v1/checkout/subscriptions",
            json={"tier": "platform", "interval": "month", "email": email},
            headers=offline.keys["publishable"],
        )
        assert answer.status_code in (201, 401, 409), answer.text
        return answer.json() if answer.status_code == 201 else None

    session = await eventually(started, timeout=60, interval=0.3)
    assert session["url"].startswith(str(offline.standin.base_url))
    page = await offline.standin.get(session["url"])
    assert page.status_code == 200 and "Pay" in page.text
    paid = await offline.standin.post(f"/_standin/checkout/{session['id']}/pay", data={})
    assert paid.status_code == 303, paid.text
    subscription_id = (await offline.standin.get(f"/v1/checkout/sessions/{session['id']}")).json()[
        "subscription"
    ]

    async def status_is(wanted: str) -> dict[str, Any] | None:
        sub = await offline.subscription(subscription_id)
        return sub if sub is not None and sub["status"] == wanted else None

    first = await eventually(lambda: status_is("active"), timeout=30, interval=0.2)

    # A month on: renewed, a new period, still active.
    moved = offline.dev("stripe", "clock", "advance", "--days", "31", "--customer", email)
    assert email in moved

    async def renewed() -> dict[str, Any] | None:
        sub = await status_is("active")
        later = sub is not None and sub["current_period_start"] > first["current_period_start"]
        return sub if later else None

    await eventually(renewed, timeout=30, interval=0.2)

    # The card fails; a month on the renewal is declined: past_due.
    assert "declines" in offline.dev("stripe", "card", "fail", "--customer", email)
    offline.dev("stripe", "clock", "advance", "--days", "31", "--customer", email)
    await eventually(lambda: status_is("past_due"), timeout=30, interval=0.2)

"""A subscription checkout started through the client: billing on a real port selling the
home seller's tier through the Stripe stand-in (the real protocol, stripe-python)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tessera_client import AsyncTessera, NotFound

from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.infra import free_port
from tessera.devstack.serving import LoopServer
from tessera.devstack.stripe_standin.testing import API_KEY, PLATFORM_SECRET, running_standin
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

CATALOG = Path(__file__).resolve().parents[3] / "deploy" / "catalog.json"
GRANTS = {"features": ["export"], "quotas": {"api_calls": {"limit": 500}},
          "rate_per_minute": 60, "seats": 1}  # fmt: skip


@pytest.fixture
async def selling(
    database_factory: Any, infra_settings: InfraSettings, all_streams: None, home_keys: Any
) -> AsyncIterator[tuple[str, str, str]]:
    """(billing's URL, the home seller's live secret key, the stand-in's URL), with a tier
    `pro` in Stripe."""
    async with running_standin() as standin:
        billing = create_billing(
            BillingSettings(
                database_url=await database_factory("billing"), catalog_file=CATALOG,
                stripe_secret_key=API_KEY, stripe_api_base=standin.url,
                stripe_webhook_secrets=[PLATFORM_SECRET], stripe_sync_retry_seconds=0.2,
            ),
            infra_settings,
        )  # fmt: skip
        port = free_port()
        server = await LoopServer.start(billing, port)
        try:
            context = billing.state.context
            await asyncio.wait_for(context.messaging_ready.wait(), 30)
            keys = await home_keys()
            secret = keys["secret"]["authorization"][7:]
            await asyncio.wait_for(context.key_book.wait_ready(), 10)
            for _ in range(500):
                try:
                    context.key_book.check(secret)
                    break
                except Exception:
                    await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{port}"
            await a_tier(url, keys["secret"], context.pool)
            yield url, secret, standin.url
        finally:
            await server.stop(30)


async def a_tier(url: str, sk: dict[str, str], pool: Any) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        made = await http.post("/v1/products", json={"code": "tool", "name": "Tool"}, headers=sk)
        assert made.status_code == 201, made.text
        made = await http.post(
            "/v1/tiers",
            json={"code": "pro", "product": "tool", "name": "Pro", "trial_days": 0,
                  "prices": {"month": {"amount": 900, "currency": "usd"}}, "grants": GRANTS},
            headers=sk,
        )  # fmt: skip
        assert made.status_code == 201, made.text
    for _ in range(600):  # until the catalog is in Stripe
        if not await pool.fetchval(
            "SELECT count(*) FROM stripe_sync WHERE state IN ('pending', 'local', 'failed')"
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the catalog never reached Stripe")


async def test_a_subscription_checkout_for_a_tier(selling: tuple[str, str, str]) -> None:
    billing_url, secret, standin_url = selling
    async with AsyncTessera(secret, seller="home", billing_url=billing_url) as tessera:
        checkout = await tessera.start_subscription_checkout(
            "pro",
            email="buyer@example.com",
            success_url="https://acme.example/thanks",
        )
        with pytest.raises(NotFound) as unknown:
            await tessera.start_subscription_checkout("no-such-tier")
    async with httpx.AsyncClient(base_url=standin_url) as stripe:
        session = await stripe.get(
            f"/v1/checkout/sessions/{checkout.id}",
            headers={"authorization": f"Bearer {API_KEY}"},
        )
    assert unknown.value.code == "unknown-tier"
    assert checkout.url.startswith(standin_url)
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["mode"] == "subscription" and body["metadata"]["tessera_tier"] == "pro"
    assert body["success_url"].startswith("https://acme.example/thanks")

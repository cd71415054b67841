"""Subscriptions end to end, against the Stripe stand-in (through the official library):
billing sells a tier with a trial through Checkout in subscription mode, hears Stripe's
events, publishes `billing.subscription.*.v1`, and licensing turns them into the customer's
entitlement. A test clock drives the lifecycle: trialing, renewed to active, upgraded
mid-period, past due with a grace period, then canceled and ended."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.devstack.stripe_standin.testing import (
    API_KEY,
    PLATFORM_SECRET,
    StandInServer,
    running_standin,
)
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.events.topology import BILLING, Namespace
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration

CATALOG = Path(__file__).resolve().parents[1] / "deploy" / "catalog.json"
DAY = 86400
PRO_GRANTS = {"features": ["export"], "quotas": {"api_calls": {"limit": 500}},
              "rate_per_minute": 60, "seats": 1}  # fmt: skip
TEAM_GRANTS = {"features": ["export", "sso"], "quotas": {"api_calls": {"limit": 5000}},
               "rate_per_minute": 600, "seats": 5}  # fmt: skip


@dataclass
class World:
    standin: StandInServer
    billing: httpx.AsyncClient
    licensing: httpx.AsyncClient
    billing_app: Any
    namespace: Namespace
    nats_url: str
    keys: dict[str, dict[str, str]]
    forwarded: int = 0

    async def forward(self) -> None:
        """Hand billing every event the stand-in sent since the last call, in the order
        Stripe sent them, and wait until billing has applied them."""
        await self.standin.delivered()
        deliveries = self.standin.platform.deliveries[self.forwarded :]
        self.forwarded += len(deliveries)
        for body, signature in deliveries:
            answer = await self.billing.post(
                "/webhooks/stripe",
                content=body,
                headers={"stripe-signature": signature, "content-type": "application/json"},
            )
            assert answer.status_code == 200, answer.text
        pool = self.billing_app.state.context.pool
        for _ in range(500):
            if not await pool.fetchval(
                "SELECT count(*) FROM stripe_events WHERE status = 'received'"
            ):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("billing did not apply the events")

    async def subscription(self, subscription_id: str) -> dict[str, Any]:
        answer = await self.billing.get(
            f"/v1/subscriptions/{subscription_id}", headers=self.keys["secret"]
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def published(self) -> list[tuple[str, int]]:
        """Every `billing.subscription.*` billing published: (subject, sequence)."""
        nc = await nats.connect(self.nats_url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(
                self.namespace.subject("billing.subscription.>"),
                stream=self.namespace.stream(BILLING),
            )
            out: list[tuple[str, int]] = []
            while True:
                try:
                    batch = await sub.fetch(100, timeout=0.3)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                for message in batch:
                    kind = message.subject.split("billing.subscription.", 1)[1]
                    out.append((kind, json.loads(message.data)["sequence"]))
            await sub.unsubscribe()
            return out
        finally:
            await nc.close()


@pytest.fixture
async def world(
    database_factory: Any,
    infra_settings: InfraSettings,
    running: Any,
    all_streams: None,
    home_keys: Any,
) -> AsyncIterator[World]:
    async with running_standin() as standin, AsyncExitStack() as exits:
        billing = create_billing(
            BillingSettings(
                database_url=await database_factory("billing"), catalog_file=CATALOG,
                stripe_secret_key=API_KEY, stripe_api_base=standin.url,
                stripe_webhook_secrets=[PLATFORM_SECRET], stripe_sync_retry_seconds=0.2,
            ),
            infra_settings,
        )  # fmt: skip
        licensing = create_licensing(
            LicensingSettings(database_url=await database_factory("licensing")), infra_settings
        )
        clients = []
        for name, app in (("billing", billing), ("licensing", licensing)):
            await exits.enter_async_context(running(app))
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
            clients.append(
                await exits.enter_async_context(
                    httpx.AsyncClient(transport=transport, base_url=f"http://{name}")
                )
            )
        namespace = Namespace(infra_settings.namespace)
        keys = await home_keys()
        for app in (billing, licensing):
            book = app.state.context.key_book
            await asyncio.wait_for(book.wait_ready(), 10)
            for _ in range(500):
                if all(_holds(book, k["authorization"][7:]) for k in keys.values()):
                    break
                await asyncio.sleep(0.01)
        yield World(
            standin, clients[0], clients[1], billing, namespace, str(infra_settings.nats_url), keys
        )


def _holds(book: Any, text: str) -> bool:
    try:
        book.check(text)
    except Exception:
        return False
    return True


async def _synced(world: World) -> None:
    pool = world.billing_app.state.context.pool
    for _ in range(600):
        if not await pool.fetchval(
            "SELECT count(*) FROM stripe_sync WHERE state IN ('pending', 'local', 'failed')"
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the catalog never reached Stripe")


async def _tiers(world: World) -> None:
    sk = world.keys["secret"]
    made = await world.billing.post(
        "/v1/products", json={"code": "tool", "name": "Tool"}, headers=sk
    )
    assert made.status_code == 201, made.text
    for code, amount, trial, grants in (
        ("pro", 900, 14, PRO_GRANTS),
        ("team", 2900, 0, TEAM_GRANTS),
    ):
        made = await world.billing.post(
            "/v1/tiers",
            json={"code": code, "product": "tool", "name": code.title(), "trial_days": trial,
                  "prices": {"month": {"amount": amount, "currency": "usd"}}, "grants": grants},
            headers=sk,
        )  # fmt: skip
        assert made.status_code == 201, made.text
    await _synced(world)


def ts(value: str) -> int:
    return int(datetime.fromisoformat(value).timestamp())


async def test_a_subscription_from_trial_to_its_end_and_the_entitlement_it_grants(
    world: World,
) -> None:
    await _tiers(world)
    stripe = world.standin.client()
    start = int(time.time())
    clock = await stripe.v1.test_helpers.test_clocks.create_async({"frozen_time": start})
    customer = await stripe.v1.customers.create_async(
        {"email": "sub@example.com", "test_clock": clock.id}
    )
    # A publishable key starts the checkout; Stripe already knows the buyer (same email).
    started = await world.billing.post(
        "/v1/checkout/subscriptions",
        json={"tier": "pro", "interval": "month", "email": "sub@example.com"},
        headers=world.keys["publishable"],
    )
    assert started.status_code == 201, started.text
    session = await stripe.v1.checkout.sessions.retrieve_async(started.json()["id"])
    assert session.mode == "subscription" and session.customer == customer.id
    assert session.metadata is not None and session.metadata["tessera_tier"] == "pro"
    async with httpx.AsyncClient(base_url=world.standin.url) as control:
        done = await control.post(f"/_standin/checkout/sessions/{session.id}/complete", json={})
        assert done.status_code == 200, done.text
    await world.forward()

    # Trialing: started, with the tier's grants; the entitlement is valid.
    [subscription_id] = [
        s.id for s in (await stripe.v1.subscriptions.list_async({"customer": customer.id})).data
    ]
    sub = await world.subscription(subscription_id)
    assert (sub["status"], sub["tier"], sub["interval"]) == ("trialing", "pro", "month")
    account = sub["customer_id"]
    listed = await world.billing.get(
        f"/v1/customers/{account}/subscriptions", headers=world.keys["secret"]
    )
    assert [s["id"] for s in listed.json()] == [subscription_id]
    ent = await _entitled(world, account, lambda e: e["status"] == "trialing")
    assert ent["valid"] and ent["tier"] == "pro" and ent["grants"] == PRO_GRANTS
    portal = await world.billing.post(
        f"/v1/customers/{account}/billing-portal", headers=world.keys["secret"]
    )
    assert portal.status_code == 200 and portal.json()["url"].startswith(world.standin.url)

    # Past the trial: renewed, active, a new period.
    trial_end = ts(sub["trial_end"])
    await stripe.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": trial_end + 3600}
    )
    await world.forward()
    sub = await world.subscription(subscription_id)
    assert sub["status"] == "active" and ts(sub["current_period_start"]) == trial_end
    ent = await _entitled(world, account, lambda e: e["status"] == "active")
    assert ent["valid"]

    # An upgrade mid-period, through the seller API: Stripe changes it, its event changes us.
    changed = await world.billing.post(
        f"/v1/subscriptions/{subscription_id}", json={"tier": "team"},
        headers={**world.keys["secret"], "idempotency-key": "upgrade-1"},
    )  # fmt: skip
    assert changed.status_code == 202, changed.text
    await world.forward()
    assert (await world.subscription(subscription_id))["tier"] == "team"
    ent = await _entitled(world, account, lambda e: e["tier"] == "team")
    assert ent["grants"] == TEAM_GRANTS and ent["valid"]

    # Cancel at the period's end, then (a day later on the clock) resume: both through the
    # seller API, both only once Stripe's event says so.
    sk = world.keys["secret"]
    canceled = await world.billing.post(
        f"/v1/subscriptions/{subscription_id}/cancel", json={"at_period_end": True}, headers=sk
    )
    assert canceled.status_code == 202 and not canceled.json()["cancel_at_period_end"]
    await world.forward()
    assert (await world.subscription(subscription_id))["cancel_at_period_end"]
    ent = await _entitled(world, account, lambda e: e["cancel_at_period_end"])
    assert ent["valid"]
    await stripe.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": trial_end + DAY + 3600}
    )
    resumed = await world.billing.post(f"/v1/subscriptions/{subscription_id}/resume", headers=sk)
    assert resumed.status_code == 202, resumed.text
    await world.forward()
    assert not (await world.subscription(subscription_id))["cancel_at_period_end"]
    await _entitled(world, account, lambda e: not e["cancel_at_period_end"])

    # The card fails at the next renewal: past due, still valid for the seller's grace.
    period_end = ts(sub["current_period_end"])
    async with httpx.AsyncClient(base_url=world.standin.url) as control:
        await control.post(
            f"/_standin/customers/{customer.id}/payment_method", json={"failing": True}
        )
    await stripe.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": period_end + 3600}
    )
    await world.forward()
    sub = await world.subscription(subscription_id)
    assert sub["status"] == "past_due" and ts(sub["past_due_since"]) == period_end
    ent = await _entitled(world, account, lambda e: e["status"] == "past_due")
    assert ent["grace_until"] is not None
    assert datetime.fromisoformat(ent["grace_until"]) == datetime.fromtimestamp(
        period_end, UTC
    ) + timedelta(days=7)
    assert ent["valid"]  # now (the real clock) is well before the clock's grace end

    # The retries fail too: Stripe cancels it; ended, and the entitlement with it.
    await stripe.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": period_end + 30 * DAY}
    )
    await world.forward()
    assert (await world.subscription(subscription_id))["status"] == "canceled"
    ent = await _entitled(world, account, lambda e: e["ended"])
    assert not ent["valid"] and ent["status"] == "canceled"

    kinds = [kind for kind, _ in await world.published()]
    assert kinds[0] == "started.v1" and kinds[-1] == "ended.v1"
    assert {"renewed.v1", "changed.v1"} <= set(kinds)
    sequences = [sequence for _, sequence in await world.published()]
    assert sequences == list(range(1, len(sequences) + 1))

    # Replaying every event, shuffled, changes nothing and publishes nothing.
    before = await world.subscription(subscription_id)
    pool = world.billing_app.state.context.pool
    events = await pool.fetch("SELECT id FROM stripe_events ORDER BY random()")
    for row in events:
        await pool.execute("UPDATE stripe_events SET status = 'received' WHERE id = $1", row["id"])
    await world.forward()
    assert await world.subscription(subscription_id) == before
    assert len(await world.published()) == len(sequences)


async def _entitled(world: World, account: str, wanted: Any) -> dict[str, Any]:
    answer = None
    for _ in range(500):
        answer = await world.licensing.get(
            f"/v1/customers/{account}/entitlements", headers=world.keys["secret"]
        )
        if answer.status_code == 200 and answer.json() and wanted(answer.json()[0]):
            return dict(answer.json()[0])
        await asyncio.sleep(0.02)
    raise AssertionError(f"licensing never got there: {answer.text if answer else None}")


async def test_a_subscription_canceled_now_ends_at_once(world: World) -> None:
    await _tiers(world)
    started = await world.billing.post(
        "/v1/checkout/subscriptions",
        json={"tier": "team", "interval": "month", "email": "now@example.com"},
        headers=world.keys["publishable"],
    )
    assert started.status_code == 201, started.text
    async with httpx.AsyncClient(base_url=world.standin.url) as control:
        done = await control.post(
            f"/_standin/checkout/sessions/{started.json()['id']}/complete", json={}
        )
        assert done.status_code == 200, done.text
    await world.forward()
    [subscription_id] = [
        s.id for s in (await world.standin.client().v1.subscriptions.list_async()).data
    ]
    sub = await world.subscription(subscription_id)
    assert (sub["status"], sub["tier"]) == ("active", "team")
    ent = await _entitled(world, sub["customer_id"], lambda e: e["status"] == "active")
    assert ent["grants"] == TEAM_GRANTS
    canceled = await world.billing.post(
        f"/v1/subscriptions/{subscription_id}/cancel", json={"at_period_end": False},
        headers=world.keys["secret"],
    )  # fmt: skip
    assert canceled.status_code == 202, canceled.text
    await world.forward()
    assert (await world.subscription(subscription_id))["status"] == "canceled"
    ent = await _entitled(world, sub["customer_id"], lambda e: e["ended"])
    assert not ent["valid"]
    # Ended is final: changing it is refused, and Stripe is not asked.
    again = await world.billing.post(
        f"/v1/subscriptions/{subscription_id}/resume", headers=world.keys["secret"]
    )
    assert again.status_code == 409 and again.json()["type"].endswith("subscription-ended")

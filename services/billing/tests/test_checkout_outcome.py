"""What a checkout's success page is told, by the session id alone: the order of any seller,
or the subscription the checkout started; and the address only masked (whoever holds the
URL may ask)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import nats
import pytest
from test_subscriptions import apply_all  # type: ignore[import-not-found]

from tessera.billing.catalog import service as catalog
from tessera.billing.catalog.schemas import ProductIn, TierIn
from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.checkout.service import mask_email
from tessera.billing.webhooks import service as webhooks
from tessera.devstack.seller_keys import publish_seller_keys
from tessera.devstack.stripe_standin.testing import StandInServer
from tessera.shared.api_keys.format import Kind
from tessera.shared.sellers import HOME_LIVE, Tenant

Headers = dict[str, str]


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("jane.doe@example.com", "j•••@e•••.com"),
        ("j@mail.example.co.uk", "j•••@m•••.uk"),
        ("x@localhost", "x•••@l•••"),
    ],
)
def test_an_address_is_shown_masked(address: str, shown: str) -> None:
    assert mask_email(address) == shown
    local, domain = address.split("@")
    assert local not in shown or len(local) == 1
    assert domain.split(".")[0] not in shown


# --- the outcome of a subscription checkout, and of any seller's ---------------------------
# (the connected seller's one-time order: test_connect.py, the checkout made on its account)


async def seller_keys(billing: Any, wanted: list[tuple[Tenant, Kind]]) -> dict[str, Headers]:
    """Headers with a new key of each (tenant, kind), published as auth would; by kind."""
    context = billing.app.state.context
    nc = await nats.connect(billing.nats_url)
    try:
        texts = await publish_seller_keys(
            nc.jetstream(), billing.namespace, context.key_book, context.sellers, wanted
        )
    finally:
        await nc.close()
    return {kind: {"authorization": f"Bearer {text}"} for (_, kind), text in texts.items()}


async def trial_tier(billing: Any) -> None:
    """The home seller's tier `pro` (14 days' trial, 9.00 a month), synced to Stripe."""
    context = billing.app.state.context
    await catalog.create_product(
        billing.pool, context.accounts, HOME_LIVE, ProductIn(code="tool", name="Tool")
    )
    tier = TierIn(
        code="pro", product="tool", name="Pro", trial_days=14,
        prices={"month": {"amount": 900, "currency": "usd"}},
    )  # fmt: skip
    await catalog.create_tier(billing.pool, context.accounts, HOME_LIVE, tier)
    for _ in range(300):
        if not await billing.value("SELECT count(*) FROM stripe_sync WHERE state <> 'synced'"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the tier never reached the stand-in")


async def outcome_of(billing: Any, session_id: str) -> dict[str, Any]:
    answer = await billing.client.get(f"/v1/checkout/sessions/{session_id}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def outcome_until(billing: Any, session_id: str, state: str) -> dict[str, Any]:
    for _ in range(300):
        found = await outcome_of(billing, session_id)
        if found["state"] == state:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{session_id} never became {state}: {found}")


async def test_a_subscription_checkout_ends_in_its_trial_whatever_the_order(
    on_standin: Any, standin: StandInServer
) -> None:
    """A subscription checkout never becomes an order: its success page is told the
    subscription (trialing, its tier and trial end), from the events Stripe sends, in any
    order and twice over; before them it is pending."""
    billing = on_standin
    await trial_tier(billing)
    keys = await seller_keys(billing, [(HOME_LIVE, "publishable")])
    started = await billing.client.post(
        "/v1/checkout/subscriptions",
        json={"tier": "pro", "email": "sub.buyer@example.com"},
        headers=keys["publishable"],
    )
    assert started.status_code == 201, started.text
    session_id = started.json()["id"]
    assert (await outcome_of(billing, session_id))["state"] == "pending"
    async with httpx.AsyncClient(base_url=standin.url) as control:
        done = await control.post(f"/_standin/checkout/sessions/{session_id}/complete", json={})
        assert done.status_code == 200, done.text

    seen = await outcome_until(billing, session_id, "trialing")
    assert seen["kind"] == "subscription"
    assert (seen["product"], seen["tier"], seen["interval"]) == ("tool", "pro", "month")
    assert seen["order_id"] is None and seen["account_ready"] is True
    assert seen["email_hint"] == "s•••@e•••.com" and "sub.buyer" not in str(seen)
    trial_end = datetime.fromisoformat(seen["trial_end"])
    assert timedelta(days=13) < trial_end - datetime.now(UTC) <= timedelta(days=14, minutes=1)

    await standin.delivered()
    events = [json.loads(body) for body, _ in standin.platform.deliveries]
    completed = [e for e in events if e["type"] == "checkout.session.completed"]
    rest = [e for e in events if e["type"] != "checkout.session.completed"]
    assert completed and rest
    # The subscription's own events before its checkout: nothing says whose session yet.
    await apply_all(billing, rest)
    assert (await outcome_of(billing, session_id))["kind"] is None
    # The checkout before the subscription's own events: a subscription, status unknown.
    await apply_all(billing, completed)
    early = await outcome_of(billing, session_id)
    assert (early["state"], early["kind"], early["email_hint"]) == (
        "pending", "subscription", "s•••@e•••.com",
    )  # fmt: skip
    # Every event, reversed, and shuffled and doubled: the same answer.
    orders = {"reversed": events[::-1]}
    for shuffle in (1, 2):
        doubled = events * 2
        random.Random(shuffle).shuffle(doubled)
        orders[f"shuffled-{shuffle}"] = doubled
    for name, order in orders.items():
        await apply_all(billing, order)
        assert await outcome_of(billing, session_id) == seen, name


async def test_an_order_is_found_whichever_seller_it_belongs_to(
    billing: Any, stripe_events: Any
) -> None:
    """The session id alone finds the order in any tenant (Stripe's ids are unique across
    accounts); an unknown session stays pending, a malformed one is a 422."""
    home_event, home = stripe_events.purchase("home@example.com")
    assert await billing.outcome(home_event) == "processed"
    # Another seller's paid checkout, applied in its tenant as the Connect endpoint's routing
    # would: its SKU is none of that seller's, so the order is held for review.
    seller = Tenant(UUID("00000000-0000-4000-8000-0000000000c3"), "test")
    their_event, theirs = stripe_events.purchase("seller@example.org")
    async with billing.pool.acquire() as conn, conn.transaction():
        applied = await webhooks.apply(
            conn, seller, their_event["id"], their_event["type"], their_event["data"]["object"]
        )
    assert applied.status == "processed", applied
    mine = await outcome_of(billing, home["session"])
    assert (mine["state"], mine["kind"], mine["email_hint"]) == ("paid", "payment", "h•••@e•••.com")
    other = await outcome_of(billing, theirs["session"])
    assert (other["state"], other["kind"], other["email_hint"]) == (
        "held", "payment", "s•••@e•••.org",
    )  # fmt: skip
    assert (await outcome_of(billing, shapes.stripe_id("cs")))["state"] == "pending"
    malformed = await billing.client.get("/v1/checkout/sessions/cs_test_<b>")
    assert malformed.status_code == 422

"""Revenue figures against hand-computed scenarios (docs/billing.md, "Revenue").

November 2026, the home seller, live mode. Subscriptions are built from Stripe-shaped
events applied through billing's applier (as Stripe's deliveries are), reversed and twice:

  usd  yearly     active since 1 Oct, 12000 a year            MRR 1000 all month
  usd  canceled   active since 5 Oct, 1900 a month; deleted 25 Nov    churn 1900
  usd  past_due   active since 15 Oct, 900; past due since 20 Oct   0 all month
  usd  upgraded   started 10 Nov at 900, upgraded 20 Nov to 2900   new 900, expansion 2000
  usd  trial      trialing since 5 Nov (900), active from 19 Nov  new 900 from 19 Nov
  eur  eur        active since 3 Nov, 5000 a month              new 5000 (eur only)

  usd: start 1000 + 1900 = 2900; end 1000 + 2900 + 900 = 4800
       new 1800, expansion 2000, churned 1900: 2900 + 1800 + 2000 - 1900 = 4800
       customers 2 -> 3, one lost (0.5); revenue churn 1900 / 2900 = 0.6552; ARPU 4800 / 3
  Another seller's subscription (99900 usd) and the home seller's test mode are never counted.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import nats
import pytest

from tessera.billing.payments import queries as payment_queries
from tessera.billing.payments import service as payments
from tessera.billing.revenue import service as revenue
from tessera.billing.subscriptions.state import Logged
from tessera.billing.webhooks import service
from tessera.devstack.seller_keys import publish_seller_keys
from tessera.devstack.stripe_standin.testing import (
    API_KEY,
    StandInServer,
    recurring_price,
    running_standin,
)
from tessera.shared.sellers import HOME_LIVE, Tenant

pytestmark = pytest.mark.integration

OTHER = Tenant(UUID("00000000-0000-4000-8000-0000000000b2"), "live")
HOME_TEST = Tenant(HOME_LIVE.seller_id, "test")


def ts(month: int, day: int) -> int:
    return int(datetime(2026, month, day, 12, tzinfo=UTC).timestamp())


def snapshot(
    sid: str, status: str, amount: int, *, interval: str = "month", currency: str = "usd",
    tier: str = "pro", start: int, price: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    period = 365 if interval == "year" else 30
    return {
        "id": sid, "object": "subscription", "status": status, "customer": f"cus_{sid}",
        "start_date": start, "created": start, "cancel_at_period_end": False,
        "metadata": {"tessera_tier": tier},
        "items": {"data": [{
            "id": f"si_{sid}", "quantity": 1,
            "current_period_start": start, "current_period_end": start + period * 86400,
            "price": {"id": price or f"price_{tier}_{interval}_{amount}", "unit_amount": amount,
                      "currency": currency, "recurring": {"interval": interval,
                                                          "interval_count": 1}},
        }]},
    }  # fmt: skip


def event(kind: str, obj: dict[str, Any], created: int, previous: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return {"id": f"evt_{uuid.uuid4().hex}", "type": kind, "created": created, "data": data}


def invoice_paid(sid: str, amount: int, currency: str, created: int) -> dict[str, Any]:
    invoice = {"id": f"in_{uuid.uuid4().hex}", "object": "invoice", "amount_paid": amount,
               "currency": currency, "customer": f"cus_{sid}", "status": "paid",
               "parent": {"subscription_details": {"subscription": sid}}}  # fmt: skip
    return event("invoice.paid", invoice, created)


def created(obj: dict[str, Any], at: int) -> dict[str, Any]:
    return event("customer.subscription.created", obj, at)


def updated(obj: dict[str, Any], at: int, previous: dict[str, Any]) -> dict[str, Any]:
    return event("customer.subscription.updated", obj, at, previous)


def scenario() -> list[dict[str, Any]]:
    yearly = snapshot("sub_yearly", "active", 12000, interval="year", start=ts(10, 1))
    canceled = snapshot("sub_canceled", "active", 1900, tier="team", start=ts(10, 5))
    past_due = snapshot("sub_pastdue", "active", 900, start=ts(10, 15))
    upgraded = snapshot("sub_upgraded", "active", 900, start=ts(11, 10))
    trial = snapshot("sub_trial", "trialing", 900, start=ts(11, 5))
    eur = snapshot("sub_eur", "active", 5000, currency="eur", start=ts(11, 3))
    return [
        created(yearly, ts(10, 1)),
        created(canceled, ts(10, 5)),
        event(
            "customer.subscription.deleted",
            {**canceled, "status": "canceled", "ended_at": ts(11, 25)},
            ts(11, 25),
        ),
        created(past_due, ts(10, 15)),
        updated({**past_due, "status": "past_due"}, ts(10, 20), {"status": "active"}),
        created(upgraded, ts(11, 10)),
        invoice_paid("sub_upgraded", 900, "usd", ts(11, 10)),
        updated(
            snapshot("sub_upgraded", "active", 2900, tier="team", start=ts(11, 10)),
            ts(11, 20),
            {"items": upgraded["items"]},
        ),
        created(trial, ts(11, 5)),
        updated({**trial, "status": "active"}, ts(11, 19), {"status": "trialing"}),
        created(eur, ts(11, 3)),
        invoice_paid("sub_eur", 5000, "eur", ts(11, 3)),
    ]


def elsewhere() -> list[tuple[Tenant, dict[str, Any]]]:
    """Subscriptions of another seller, and of the home seller's test mode, in November."""
    other = snapshot("sub_other", "active", 99900, start=ts(11, 2))
    test = snapshot("sub_testmode", "active", 77700, start=ts(11, 2))
    return [(OTHER, created(other, ts(11, 2))), (HOME_TEST, created(test, ts(11, 2)))]


async def apply(billing: Any, tenant: Tenant, events: list[dict[str, Any]]) -> None:
    for e in events:
        async with billing.pool.acquire() as conn, conn.transaction():
            outcome = await service.apply(
                conn, tenant, e["id"], e["type"], e["data"]["object"], service.Applying.of(e)
            )
            assert outcome.status == "processed", outcome


@asynccontextmanager
async def secret_keys(billing: Any, tenants: list[Tenant]) -> AsyncIterator[dict[Tenant, str]]:
    """A secret key per tenant, published as auth would, once the app's own book holds it."""
    nc = await nats.connect(billing.nats_url)
    context = billing.app.state.context
    try:
        texts = await publish_seller_keys(
            nc.jetstream(), billing.namespace, context.key_book, context.sellers,
            [(tenant, "secret") for tenant in tenants],
        )  # fmt: skip
        yield {tenant: text for (tenant, _), text in texts.items()}
    finally:
        await nc.close()


@pytest.fixture
async def seeded(billing: Any) -> AsyncIterator[tuple[Any, dict[Tenant, str]]]:
    events = scenario()
    # Out of order and twice, as Stripe may deliver: the log's fold decides, not arrival.
    await apply(billing, HOME_LIVE, events[::-1] + events)
    for tenant, e in elsewhere():
        await apply(billing, tenant, [e])
    async with secret_keys(billing, [HOME_LIVE, OTHER]) as keys:
        yield billing, keys


def auth(keys: dict[Tenant, str], tenant: Tenant = HOME_LIVE, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {keys[tenant]}", **extra}


NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


async def test_the_november_summary_matches_the_hand_computed_figures(seeded: Any) -> None:
    billing, keys = seeded
    response = await billing.client.get("/v1/revenue/summary", params=NOVEMBER, headers=auth(keys))
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["from"], report["to"]) == ("2026-11-01", "2026-11-30")
    eur, usd = report["currencies"]
    assert usd["currency"] == "usd" and eur["currency"] == "eur"
    assert (usd["mrr_start"], usd["mrr_end"]) == (2900, 4800)
    assert usd["movements"] == {"new": 1800, "expansion": 2000, "contraction": 0,
                                "churned": 1900, "reactivation": 0, "net": 1900}  # fmt: skip
    assert (usd["customers_start"], usd["customers_end"], usd["customers_churned"]) == (2, 3, 1)
    assert usd["customer_churn_rate"] == 0.5
    assert usd["revenue_churn_rate"] == 0.6552
    assert usd["arpu"] == 1600
    assert usd["subscribers_by_tier"] == {"pro": 2, "team": 1}
    assert (usd["invoices_gross"], usd["orders_gross"], usd["refunds"]) == (900, 0, 0)
    assert usd["fees"] is None and usd["net"] == 900
    assert any("fees" in note for note in usd["notes"])
    # The euro subscription is counted in euros only, never added to dollars.
    assert (eur["mrr_start"], eur["mrr_end"], eur["movements"]["new"]) == (0, 5000, 5000)
    assert (eur["arpu"], eur["customers_end"], eur["gross"]) == (5000, 1, 5000)


async def test_one_currency_and_the_other_seller_sees_only_its_own(seeded: Any) -> None:
    billing, keys = seeded
    params = {**NOVEMBER, "currency": "usd"}
    response = await billing.client.get("/v1/revenue/summary", params=params, headers=auth(keys))
    [usd] = response.json()["currencies"]
    assert usd["mrr_end"] == 4800
    theirs = await billing.client.get(
        "/v1/revenue/summary", params=params, headers=auth(keys, OTHER)
    )
    [other] = theirs.json()["currencies"]
    assert (other["mrr_start"], other["mrr_end"], other["movements"]["new"]) == (0, 99900, 99900)
    assert other["subscribers_by_tier"] == {"pro": 1}


async def test_the_mrr_series_excludes_trials_and_past_due(seeded: Any) -> None:
    billing, keys = seeded
    days = {"from": "2026-11-18", "to": "2026-11-19", "currency": "usd"}
    response = await billing.client.get("/v1/revenue/mrr", params=days, headers=auth(keys))
    assert response.status_code == 200, response.text
    # 18 Nov: yearly 1000 + canceled 1900 + upgraded 900; the trial turns active on the 19th.
    assert [(p["end"], p["mrr"], p["subscribers"]) for p in response.json()] == [
        ("2026-11-18", 3800, 3), ("2026-11-19", 4700, 4),
    ]  # fmt: skip
    months = {"from": "2026-10-01", "to": "2026-11-30", "interval": "month", "currency": "usd"}
    response = await billing.client.get("/v1/revenue/mrr", params=months, headers=auth(keys))
    # End of October: yearly 1000 + canceled 1900 (the past-due one counts nothing).
    assert [(p["start"], p["end"], p["mrr"]) for p in response.json()] == [
        ("2026-10-01", "2026-10-31", 2900), ("2026-11-01", "2026-11-30", 4800),
    ]  # fmt: skip


async def test_csv_exports_have_the_documented_columns(seeded: Any) -> None:
    billing, keys = seeded
    by_path = await billing.client.get(
        "/v1/revenue/summary.csv", params=NOVEMBER, headers=auth(keys)
    )
    by_accept = await billing.client.get(
        "/v1/revenue/summary", params=NOVEMBER, headers=auth(keys, accept="text/csv")
    )
    for response in (by_path, by_accept):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["currency"] for r in rows] == ["eur", "usd"]
        usd = rows[1]
        assert (usd["mrr_start"], usd["mrr_end"], usd["expansion"], usd["fees"]) == (
            "2900", "4800", "2000", ""
        )  # fmt: skip
    series = await billing.client.get(
        "/v1/revenue/mrr.csv", params={**NOVEMBER, "interval": "month"}, headers=auth(keys)
    )
    assert series.text.splitlines()[0] == "start,end,currency,mrr,subscribers"
    assert "2026-11-01,2026-11-30,usd,4800,3" in series.text


async def test_a_refunded_one_time_order_counts_net_of_its_refund(
    billing: Any, stripe_events: Any
) -> None:
    purchase, ids = stripe_events.purchase()
    assert await billing.outcome(purchase) == "processed"
    assert await billing.outcome(stripe_events.refund(ids, 4900)) == "processed"
    today = datetime.now(UTC).date()
    params = {"from": str(today - timedelta(days=1)), "to": str(today)}
    async with secret_keys(billing, [HOME_LIVE]) as keys:
        response = await billing.client.get(
            "/v1/revenue/summary", params=params, headers=auth(keys)
        )
    [usd] = response.json()["currencies"]
    price = stripe_events.price
    assert (usd["orders_gross"], usd["refunds"], usd["net"]) == (price, 4900, price - 4900)
    assert usd["mrr_end"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2020-01-01", "to": "2026-01-01"},  # more than three years
        {"from": "2026-11-02", "to": "2026-11-01"},  # backwards
        {"from": "0"},  # not a date
        {"currency": "USD"},  # not Stripe's lower-case code
        {"interval": "week"},
    ],
    ids=["too-long", "backwards", "number", "upper-case-currency", "week"],
)
async def test_bad_input_is_a_problem(seeded: Any, params: dict[str, str]) -> None:
    billing, keys = seeded
    response = await billing.client.get("/v1/revenue/mrr", params=params, headers=auth(keys))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_key_is_needed(seeded: Any) -> None:
    billing, _ = seeded
    response = await billing.client.get("/v1/revenue/summary")
    assert response.status_code == 401


def test_past_due_then_paid_is_churn_then_reactivation() -> None:
    """A failed renewal takes the MRR to 0 (churn); the paid retry brings it back
    (reactivation, not new); the customer is not lost over the period."""
    sub = snapshot("sub_retry", "active", 900, start=ts(10, 1))
    failed = {"id": "in_1", "object": "invoice", "subscription": "sub_retry"}
    paid = {**failed, "amount_paid": 900, "currency": "usd"}
    log = [
        Logged("evt_1", "customer.subscription.created", ts(10, 1), sub),
        Logged("evt_2", "invoice.payment_failed", ts(11, 5), failed),
        Logged("evt_3", "invoice.paid", ts(11, 8), paid),
    ]
    line = revenue.timeline("sub_retry", "cus_retry", log, {})
    assert [(c.at, c.mrr) for c in line.changes] == [
        (ts(10, 1), 900),
        (ts(11, 5), 0),
        (ts(11, 8), 900),
    ]
    start, end = (
        revenue.instant(date(2026, 11, 1)),
        revenue.instant(date(2026, 12, 1)),
    )
    block = revenue.summarise([line], "usd", start, end)
    assert (block.moves.churned, block.moves.reactivation, block.moves.new) == (900, 900, 0)
    assert (block.mrr_start, block.mrr_end, block.customers_churned) == (900, 900, 0)
    assert block.revenue_churn_rate == 1.0


# ---------------------------------------------------------------- fees and invoice refunds
# Built in the Stripe stand-in through the official library, then delivered to billing's
# webhook as Stripe would: a one-time sale (14900), a subscription's first invoice (2900)
# and a partial refund of that invoice's charge (1000). The stand-in charges Stripe's US
# card price, 2.9% + 30 (payments.py), into each charge's balance transaction, and keeps
# the fee on a refund (its balance transaction's fee is 0):
#
#   gross   14900 + 2900                        = 17800
#   refunds 1000 (of the subscription invoice)  =  1000
#   fees    (432 + 30) + (84 + 30) + 0          =   576   (14900 * 0.029 = 432.1; 2900 * 0.029 = 84.1)
#   net     17800 - 1000 - 576                  = 16224
MONEY = {
    "gross": 17800, "orders_gross": 14900, "invoices_gross": 2900, "refunds": 1000,
    "order_refunds": 0, "invoice_refunds": 1000, "fees": 576, "fees_recorded": 576,
    "payments_without_fee": 0, "net": 16224, "mrr_end": 2900, "notes": [],
}  # fmt: skip
SUB_PRICE, SUB_REFUND = 2900, 1000


async def a_month_of_money(standin: StandInServer, sku: str, price: int) -> list[dict[str, Any]]:
    """The stand-in's events, in the order it sent them, for the three payments above."""
    stripe = standin.client()
    session = await stripe.v1.checkout.sessions.create_async(
        {
            "mode": "payment", "customer_email": "once@example.com",
            "customer_creation": "always", "metadata": {"sku": sku, "quantity": "1"},
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "usd", "unit_amount": price, "product_data": {"name": "Once"}}}],
            "success_url": "https://example.com/done", "cancel_url": "https://example.com/",
        }
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=standin.url) as control:
        done = await control.post(f"/_standin/checkout/sessions/{session.id}/complete", json={})
        assert done.status_code == 200, done.text
    customer = await stripe.v1.customers.create_async({"email": "monthly@example.com"})
    sub = await stripe.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"price": await recurring_price(stripe, SUB_PRICE)}]}
    )
    [invoice] = (await stripe.v1.invoices.list_async({"subscription": sub.id})).data
    [paid] = (await stripe.v1.invoice_payments.list_async({"invoice": invoice.id})).data
    intent = paid["payment"]["payment_intent"]
    await stripe.v1.refunds.create_async({"payment_intent": intent, "amount": SUB_REFUND})
    await standin.delivered()
    return [json.loads(body) for body, _ in standin.platform.deliveries]


MONEY_FIELDS = tuple(MONEY)


async def usd_today(billing: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    params = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    async with secret_keys(billing, [HOME_LIVE]) as keys:
        response = await billing.client.get(
            "/v1/revenue/summary", params={**params, "currency": "usd"}, headers=auth(keys)
        )
    assert response.status_code == 200, response.text
    [usd] = response.json()["currencies"]
    return {k: usd[k] for k in MONEY_FIELDS}


async def fees_settled(billing: Any, timeout: float = 15.0) -> None:
    """Until the fee worker has fetched every payment and no event waits."""
    deadline = asyncio.get_running_loop().time() + timeout
    sql = (
        "SELECT (SELECT count(*) FROM payments WHERE state <> 'known')"
        " + (SELECT count(*) FROM stripe_events WHERE status IN ('received', 'held'))"
    )
    while await billing.value(sql):
        assert asyncio.get_running_loop().time() < deadline, await billing.fetch(
            "SELECT source, state, error FROM payments"
        )
        await asyncio.sleep(0.05)


def arranged(events: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    if order == "as-sent":
        return events
    if order == "reversed-twice":
        return events[::-1] * 2
    doubled = events * 2
    random.Random(int(order.rsplit("-", 1)[1])).shuffle(doubled)
    return doubled


@pytest.fixture
async def standin() -> AsyncIterator[StandInServer]:
    async with running_standin() as server:
        yield server


@asynccontextmanager
async def billing_on(
    standin: StandInServer, database_url: str, infra_settings: Any, billing_starter: Any
) -> AsyncIterator[Any]:
    billing = await billing_starter(
        database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url,
        stripe_sync_retry_seconds=0.1,
    )  # fmt: skip
    try:
        yield billing
    finally:
        await billing.stop()


@pytest.mark.parametrize("order", ["as-sent", "reversed-twice", "shuffled-twice-1",
                                   "shuffled-twice-2"])  # fmt: skip
async def test_fees_and_an_invoice_refund_match_the_hand_computed_figures(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer,
    stripe_events: Any, order: str,
) -> None:  # fmt: skip
    async with billing_on(standin, database_url, infra_settings, billing_starter) as billing:
        events = await a_month_of_money(standin, stripe_events.sku, stripe_events.price)
        for event in arranged(events, order):
            assert (await billing.deliver(event)).status_code == 200
        await fees_settled(billing)
        assert await usd_today(billing) == MONEY
        # Applied once more (an admin's replay of every event): nothing changes.
        for event in events:
            await service.replay(
                billing.pool, HOME_LIVE, event["id"], billing.settings.platform_mode
            )
        assert await usd_today(billing) == MONEY
        fetched = await billing.fetch(
            "SELECT kind, type, fee FROM payment_balance JOIN payments USING (seller_id, mode, source)"
            " ORDER BY kind, type"
        )
        assert [tuple(r) for r in fetched] == [
            ("invoice", "charge", 114), ("invoice", "refund", 0), ("order", "charge", 462),
        ]  # fmt: skip


async def test_while_stripe_is_away_fees_are_unknown_and_nothing_is_lost(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer,
    stripe_events: Any,
) -> None:  # fmt: skip
    async with billing_on(standin, database_url, infra_settings, billing_starter) as billing:
        events = await a_month_of_money(standin, stripe_events.sku, stripe_events.price)
        # Stripe refuses the platform's key from now on: no fee can be fetched.
        working = standin.standin.settings
        standin.standin.settings = dataclasses.replace(working, api_key="sk_test_another")
        for event in arranged(events, "reversed-twice"):
            assert (await billing.deliver(event)).status_code == 200
        errors: list[str] = []
        while len(errors) < 2:  # both payments tried, and refused
            errors = [r["error"] for r in await billing.fetch(
                "SELECT error FROM payments WHERE error IS NOT NULL")]  # fmt: skip
            await asyncio.sleep(0.05)
        assert all(e.startswith("AuthenticationError") for e in errors)
        away = await usd_today(billing)
        # Gross is known; the fees are not (never a made-up 0), and the invoice's refund
        # waits until billing learns which charge paid the invoice.
        assert (away["gross"], away["fees"], away["fees_recorded"]) == (17800, None, 0)
        assert (away["payments_without_fee"], away["invoice_refunds"]) == (2, 0)
        assert away["net"] == 17800 and "no known Stripe fee" in away["notes"][0]
        assert away["notes"][1].startswith("1 charge(s) refunded in the period wait")
        held = await billing.fetch("SELECT type FROM stripe_events WHERE status = 'held'")
        assert {r["type"] for r in held} == {"charge.succeeded", "charge.refunded"}
        standin.standin.settings = working  # Stripe is back: the worker catches up
        await fees_settled(billing)
        assert await usd_today(billing) == MONEY


OTHER_TEST = Tenant(OTHER.seller_id, "test")


async def a_connected_subscription(standin: StandInServer, account: str, email: str) -> None:
    """A subscription of 2900 a month on the connected `account`, its first invoice paid
    with the platform's 10% application fee (a direct charge: the fee is the seller's)."""
    stripe, on = standin.client(), {"stripe_account": account}
    product = await stripe.v1.products.create_async({"name": "Seller's"}, options=on)  # type: ignore[arg-type]
    price = await stripe.v1.prices.create_async(
        {"product": product.id, "currency": "usd", "unit_amount": SUB_PRICE,
         "recurring": {"interval": "month"}},
        options=on,  # type: ignore[arg-type]
    )  # fmt: skip
    customer = await stripe.v1.customers.create_async({"email": email}, options=on)  # type: ignore[arg-type]
    await stripe.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"price": price.id}], "application_fee_percent": 10},
        options=on,  # type: ignore[arg-type]
    )
    await standin.delivered()


async def apply_connected(billing: Any, standin: StandInServer, seen: int) -> int:
    """Apply the connected account's subscription events from the `seen`-th on to
    OTHER_TEST, as the Connect endpoint's routing would (their `account` says where their
    objects live). Its charge events are left out: unrecorded, they could not be held."""
    events = [json.loads(body) for body, _ in standin.connect.deliveries]
    assert all(e["account"] for e in events)
    wanted = [e for e in events[seen:] if e["type"] in service.SUBSCRIPTION_TYPES]
    await apply(billing, OTHER_TEST, wanted)
    return len(events)


async def payment_states(billing: Any, want: int) -> list[tuple[str, str | None]]:
    """The tenant's payments' states, once `want` of them are fetched (or given up)."""
    for _ in range(300):
        rows = await billing.fetch(
            "SELECT state, error FROM payments WHERE seller_id = $1 AND mode = 'test'"
            " ORDER BY updated_at", OTHER.seller_id,
        )  # fmt: skip
        if sum(r["state"] != "pending" for r in rows) >= want:
            return [(r["state"], r["error"]) for r in rows]
        await asyncio.sleep(0.05)
    raise AssertionError(rows)


async def test_a_connected_sellers_fees_are_read_on_its_own_account(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer
) -> None:
    """The fee is fetched on the account the event came from (the invoice, its charge and
    balance transaction exist only there): Stripe's 2.9% + 30 (114) and the platform's
    10% (290). Once the seller revokes the platform, a new payment's fee cannot be read:
    unknown, never 0."""
    async with billing_on(standin, database_url, infra_settings, billing_starter) as billing:
        stripe = standin.client()
        account = (await stripe.v1.accounts.create_async({"type": "standard"})).id
        await a_connected_subscription(standin, account, "first@example.com")
        seen = await apply_connected(billing, standin, 0)
        assert await payment_states(billing, 1) == [("known", None)]
        async with secret_keys(billing, [OTHER_TEST]) as keys:
            today = datetime.now(UTC).date()
            params = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(1))}

            async def usd() -> dict[str, Any]:
                got = await billing.client.get(
                    "/v1/revenue/summary", params=params, headers=auth(keys, OTHER_TEST)
                )
                [block] = got.json()["currencies"]
                return {k: block[k] for k in ("gross", "fees", "fees_recorded",
                                              "payments_without_fee", "net")}  # fmt: skip

            assert await usd() == {"gross": 2900, "fees": 404, "fees_recorded": 404,
                                   "payments_without_fee": 0, "net": 2496}  # fmt: skip
            await a_connected_subscription(standin, account, "second@example.com")
            standin.standin.store.revoked.add(account)  # the seller removed the platform
            await apply_connected(billing, standin, seen)
            states = await payment_states(billing, 2)
            assert [s for s, _ in states] == ["known", "unavailable"]
            assert "refused the account" in str(states[1][1])
            assert await usd() == {"gross": 5800, "fees": None, "fees_recorded": 404,
                                   "payments_without_fee": 1, "net": 5396}  # fmt: skip


async def test_two_fee_workers_at_once_never_take_the_same_payment(
    database_url: str, infra_settings: Any, billing_starter: Any
) -> None:
    """Replicas' workers claim at the same moment: each payment goes to one of them (the
    other skips it while it is locked, and after, while it is leased)."""
    billing = await billing_starter(database_url, infra_settings, run_workers=False)
    try:
        await claim_concurrently(billing)
    finally:
        await billing.stop()


async def claim_concurrently(billing: Any) -> None:
    async with billing.pool.acquire() as conn:
        for n in range(30):
            invoice = {"id": f"in_claimed_{n}", "amount_paid": 900, "currency": "usd"}
            await payments.invoice_paid(conn, OTHER_TEST, invoice, ts(11, 1), None)

    async def claim() -> list[str]:
        async with billing.pool.acquire() as conn, conn.transaction():
            claimed = await payment_queries.claim(conn, 20, 60)
            await asyncio.sleep(0.1)  # both hold their claim at once
            return [p.source for p in claimed]

    first, second = await asyncio.gather(claim(), claim())
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(f"in_claimed_{n}" for n in range(30))


async def test_an_invoice_stripe_has_no_charge_for_has_an_unknown_fee(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer
) -> None:
    """An invoice.paid Stripe lists no charge for (paid out of band, or not Stripe's at
    all): given up on at once, the fee unknown, never 0."""
    async with billing_on(standin, database_url, infra_settings, billing_starter) as billing:
        async with billing.pool.acquire() as conn:
            invoice = {"id": "in_out_of_band", "amount_paid": 900, "currency": "usd"}
            await payments.invoice_paid(conn, HOME_LIVE, invoice, int(time.time()), None)
        for _ in range(200):
            row = await billing.fetch("SELECT state, error FROM payments")
            if row[0]["state"] != "pending":
                break
            await asyncio.sleep(0.05)
        assert (row[0]["state"], row[0]["error"]) == (
            "unavailable", "Stripe lists no paid charge of invoice in_out_of_band"
        )  # fmt: skip


async def test_a_renewal_on_the_stand_ins_clock_is_a_payment_with_its_fee(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer
) -> None:
    """The stand-in's clock renews a subscription: its renewal invoice is paid by a charge
    with a balance transaction too, so each month's invoice has its fee (114 each)."""
    async with billing_on(standin, database_url, infra_settings, billing_starter) as billing:
        stripe = standin.client()
        now = int(time.time())
        clock = await stripe.v1.test_helpers.test_clocks.create_async({"frozen_time": now})
        customer = await stripe.v1.customers.create_async(
            {"email": "renews@example.com", "test_clock": clock.id}
        )
        price = await recurring_price(stripe, SUB_PRICE)
        await stripe.v1.subscriptions.create_async(
            {"customer": customer.id, "items": [{"price": price}]}
        )
        await stripe.v1.test_helpers.test_clocks.advance_async(
            clock.id, {"frozen_time": now + 32 * 86400}
        )
        await standin.delivered()
        for body, _ in standin.platform.deliveries:
            assert (await billing.deliver(json.loads(body))).status_code == 200
        await fees_settled(billing)
        fetched = await billing.fetch(
            "SELECT p.kind, b.type, b.fee FROM payment_balance b"
            " JOIN payments p USING (seller_id, mode, source)"
        )
        assert [tuple(r) for r in fetched] == [("invoice", "charge", 114)] * 2
        today = datetime.now(UTC).date()
        params = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=40))}
        async with secret_keys(billing, [HOME_LIVE]) as keys:
            response = await billing.client.get(
                "/v1/revenue/summary", params=params, headers=auth(keys)
            )
        [usd] = response.json()["currencies"]
        assert (usd["invoices_gross"], usd["fees"], usd["net"]) == (5800, 228, 5572)

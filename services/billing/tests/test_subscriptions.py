"""Subscription events arrive twice and out of order: the state billing ends in, and the
last state it announced, are the same whatever the order. The events are the real ones the
Stripe stand-in sends (through the official library) for a whole lifecycle: checkout with a
trial, the trial's end, an upgrade, a failed renewal and its retries, the cancellation.
They are then applied in order, reversed, and shuffled and doubled (several seeds)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import httpx
import pytest

from tessera.billing.catalog import service as catalog
from tessera.billing.catalog.schemas import ProductIn, TierIn
from tessera.billing.subscriptions import service as subscriptions
from tessera.billing.webhooks import service
from tessera.devstack.stripe_standin.testing import API_KEY, StandInServer
from tessera.shared.sellers import HOME_LIVE, Tenant

pytestmark = pytest.mark.integration

DAY = 86400
STATE = (
    'id, account_id, email, item_id, price_id, product, tier, "interval", status,'
    " current_period_start, current_period_end, cancel_at_period_end, trial_end,"
    " past_due_since, started_at, ended_at, published::text, sequence"
)


async def sell_tiers(billing: Any) -> None:
    """The home seller's product `tool` with tiers `pro` (14 days' trial) and `team`, synced
    to the stand-in."""
    context = billing.app.state.context
    await catalog.create_product(
        billing.pool, context.accounts, HOME_LIVE, ProductIn(code="tool", name="Tool")
    )
    for code, amount, trial in (("pro", 900, 14), ("team", 2900, 0)):
        body = {"code": code, "product": "tool", "name": code, "trial_days": trial,
                "prices": {"month": {"amount": amount, "currency": "usd"}},
                "grants": {"features": [code]}}  # fmt: skip
        await catalog.create_tier(billing.pool, context.accounts, HOME_LIVE, TierIn(**body))
    for _ in range(300):
        if not await billing.value("SELECT count(*) FROM stripe_sync WHERE state <> 'synced'"):
            break
        await asyncio.sleep(0.05)


async def lifecycle(billing: Any, standin: StandInServer) -> tuple[list[dict[str, Any]], list[int]]:
    """Every event the stand-in sent for one subscription's life, in Stripe's order, and
    how many there were at each stage (trialing, active, upgraded and resumed, past due,
    canceled)."""
    stages: list[int] = []

    async def stage() -> None:
        await standin.delivered()
        stages.append(len(standin.platform.deliveries))

    context = billing.app.state.context
    await sell_tiers(billing)
    stripe = standin.client()
    clock = await stripe.v1.test_helpers.test_clocks.create_async({"frozen_time": int(time.time())})
    customer = await stripe.v1.customers.create_async(
        {"email": "shuffled@example.com", "test_clock": clock.id}
    )
    link = await subscriptions.start_checkout(
        billing.pool, context.accounts, billing.settings, HOME_LIVE, "pro", "month",
        "shuffled@example.com",
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=standin.url) as control:
        await control.post(f"/_standin/checkout/sessions/{link.id}/complete", json={})
        await stage()
        [sub] = (await stripe.v1.subscriptions.list_async({"customer": customer.id})).data
        assert sub.trial_end is not None
        await stripe.v1.test_helpers.test_clocks.advance_async(
            clock.id, {"frozen_time": sub.trial_end + 3600}
        )
        await stage()
        team = await billing.value(
            "SELECT stripe_price_id FROM prices WHERE tier = 'team' AND current"
        )
        sub = await stripe.v1.subscriptions.retrieve_async(sub.id)
        await stripe.v1.subscriptions.update_async(
            sub.id, {"items": [{"id": sub["items"].data[0].id, "price": team}]}
        )
        # Cancel at the period's end in the same second as the upgrade (the clock stands
        # still), then three days later take it back.
        await stripe.v1.subscriptions.update_async(sub.id, {"cancel_at_period_end": True})
        await stage()
        await control.post(
            f"/_standin/customers/{customer.id}/payment_method", json={"failing": True}
        )
    trial_end = sub.trial_end
    assert trial_end is not None
    await stripe.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": trial_end + 3 * DAY}
    )
    await stripe.v1.subscriptions.update_async(sub.id, {"cancel_at_period_end": False})
    await stage()
    end = trial_end + 31 * DAY
    await stripe.v1.test_helpers.test_clocks.advance_async(clock.id, {"frozen_time": end + 3600})
    await stage()
    await stripe.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": end + 30 * DAY}
    )
    await stage()
    return [json.loads(body) for body, _ in standin.platform.deliveries], stages


async def apply_all(billing: Any, events: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    """Apply the events (one transaction each, as the applier does) from a clean slate; the
    subscription's row and the subjects billing announced."""
    async with billing.pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM outbox WHERE subject LIKE '%billing.subscription.%';"
            " DELETE FROM subscription_events; DELETE FROM subscriptions"
        )
    for event in events:
        async with billing.pool.acquire() as conn, conn.transaction():
            await service.apply(
                conn, HOME_LIVE, event["id"], event["type"], event["data"]["object"],
                service.Applying.of(event),
            )  # fmt: skip
    rows = await billing.fetch(f"SELECT {STATE} FROM subscriptions")  # noqa: S608 - constant
    subjects = await billing.fetch(
        "SELECT subject FROM outbox WHERE subject LIKE '%subscription%' ORDER BY created_at"
    )
    return [dict(r) for r in rows], [r["subject"].rsplit(".", 2)[-2] for r in subjects]


async def test_shuffled_and_doubled_events_end_in_the_same_state(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer
) -> None:
    billing = await billing_starter(
        database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url,
        run_workers=True, stripe_sync_retry_seconds=0.2,
    )  # fmt: skip
    try:
        events, stages = await lifecycle(billing, standin)
        types = {e["type"] for e in events}
        assert {"customer.subscription.deleted", "invoice.payment_failed",
                "customer.subscription.trial_will_end", "invoice.paid"} <= types  # fmt: skip
        statuses, cancels = [], []
        for stage in stages:
            # What billing knows after the events of each stage, in Stripe's order...
            [expected], announced = await apply_all(billing, events[:stage])
            statuses.append(expected["status"])
            cancels.append(expected["cancel_at_period_end"])
            assert announced[0] == "started"
            last = json.loads(expected.pop("published"))
            # ... and in any other order, each event twice.
            orders = {"reversed": events[:stage][::-1]}
            for seed in (1, 2, 3):
                doubled = events[:stage] * 2
                random.Random(seed).shuffle(doubled)
                orders[f"shuffled-{seed}"] = doubled
            for name, order in orders.items():
                [state], _ = await apply_all(billing, order)
                published = json.loads(state.pop("published"))
                assert {**state, "sequence": 0} == {**expected, "sequence": 0}, (stage, name)
                assert published == last, (stage, name)
        assert statuses == ["trialing", "active", "active", "active", "past_due", "canceled"]
        assert cancels == [False, False, True, False, False, False]
        [final], announced = await apply_all(billing, events)
        assert final["tier"] == "team" and not final["cancel_at_period_end"]
        assert announced.count("ended") == 1 and announced[-1] == "ended"
    finally:
        await billing.stop()


async def test_a_recovery_in_the_second_of_its_failure_ends_active_in_any_order(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer
) -> None:
    """What Stripe sends when a renewal fails and the customer pays at once (the test clock
    stands still, so every event has one `created`): the period's update, then
    `invoice.payment_failed` and the update to past_due, then `invoice.paid` and the update
    back to active. In every order, and doubled, the subscription ends active."""
    billing = await billing_starter(
        database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url,
        run_workers=True, stripe_sync_retry_seconds=0.2,
    )  # fmt: skip
    try:
        await sell_tiers(billing)
        stripe = standin.client()
        clock = await stripe.v1.test_helpers.test_clocks.create_async(
            {"frozen_time": int(time.time())}
        )
        customer = await stripe.v1.customers.create_async(
            {"email": "recovers@example.com", "test_clock": clock.id}
        )
        link = await subscriptions.start_checkout(
            billing.pool, billing.app.state.context.accounts, billing.settings, HOME_LIVE,
            "team", "month", "recovers@example.com",
        )  # fmt: skip
        async with httpx.AsyncClient(base_url=standin.url) as control:
            await control.post(f"/_standin/checkout/sessions/{link.id}/complete", json={})
            [sub] = (await stripe.v1.subscriptions.list_async({"customer": customer.id})).data
            method = f"/_standin/customers/{customer.id}/payment_method"
            await control.post(method, json={"failing": True})
            renewal = sub["items"].data[0].current_period_end
            await stripe.v1.test_helpers.test_clocks.advance_async(
                clock.id, {"frozen_time": renewal}
            )
            await control.post(method, json={"failing": False})
        sub = await stripe.v1.subscriptions.retrieve_async(sub.id)
        await stripe.v1.invoices.pay_async(str(sub.latest_invoice))
        await standin.delivered()
        events = [json.loads(body) for body, _ in standin.platform.deliveries]
        handled = [e for e in events if e["type"] in service.SUBSCRIPTION_TYPES]
        last_second = [e["type"] for e in handled if e["created"] == renewal]
        assert last_second == [
            "customer.subscription.updated", "invoice.payment_failed",
            "customer.subscription.updated", "invoice.paid", "customer.subscription.updated",
        ]  # fmt: skip
        [expected], _ = await apply_all(billing, events)
        assert (expected["status"], expected["past_due_since"]) == ("active", None)
        expected.pop("published")
        orders = {"reversed": events[::-1]}
        for seed in (1, 2, 3, 4):
            doubled = events * 2
            random.Random(seed).shuffle(doubled)
            orders[f"shuffled-{seed}"] = doubled
        for name, order in orders.items():
            [state], _ = await apply_all(billing, order)
            state.pop("published")
            assert {**state, "sequence": 0} == {**expected, "sequence": 0}, name
    finally:
        await billing.stop()


async def test_an_event_naming_another_seller_is_never_applied(
    billing: Any, stripe_events: Any
) -> None:
    other = Tenant(HOME_LIVE.seller_id, "test")
    snapshot = {"id": "sub_1Other", "object": "subscription", "status": "active",
                "customer": "cus_1", "metadata": {"tessera_seller": str(other.seller_id),
                                                  "tessera_mode": other.mode}}  # fmt: skip
    event = {"id": "evt_1OtherSeller", "object": "event", "type": "customer.subscription.updated",
             "created": int(time.time()), "livemode": False, "data": {"object": snapshot}}  # fmt: skip
    assert await billing.outcome(event, secret=stripe_events.secret) == "failed"
    assert await billing.value("SELECT count(*) FROM subscription_events") == 0


def a_snapshot(created: int, status: str, start: int, *, cancel: bool = False) -> Any:
    from tessera.billing.subscriptions.state import Logged

    snapshot = {"id": "sub_1", "object": "subscription", "status": status,
                "cancel_at_period_end": cancel, "customer": "cus_1", "start_date": 100,
                "items": {"data": [{"id": "si_1", "price": {"id": "price_1"},
                                    "current_period_start": start,
                                    "current_period_end": start + 30}]}}  # fmt: skip
    return Logged(f"evt_{created}_{status}_{cancel}", "customer.subscription.updated", created,
                  snapshot)  # fmt: skip


@pytest.mark.parametrize("order", ["in-order", "reversed"])
def test_the_fold_takes_the_newest_snapshot_whatever_the_order(order: str) -> None:
    """Cancel at the period's end, then resume; a renewal; a failure, and a retry that
    failed again: the later of each pair wins, and past_due counts from its first day."""
    from tessera.billing.subscriptions.state import fold

    events = [
        a_snapshot(100, "active", 100),
        a_snapshot(110, "active", 100, cancel=True),
        a_snapshot(120, "active", 100),
        a_snapshot(130, "active", 130),
        a_snapshot(130, "past_due", 130),
        a_snapshot(140, "past_due", 130),
    ]
    state = fold(events if order == "in-order" else events[::-1])
    assert (state.status, state.cancel_at_period_end) == ("past_due", False)
    assert (state.period_start, state.past_due_since) == (130, 130)
    resumed = fold(events[:3] if order == "in-order" else events[:3][::-1])
    assert (resumed.status, resumed.cancel_at_period_end) == ("active", False)
    ended = fold([*events, a_snapshot(90, "canceled", 100)][:: 1 if order == "in-order" else -1])
    assert ended.status == "canceled"  # canceled is final: nothing after it revives it
    final = fold([a_snapshot(150, "canceled", 130), *events][:: 1 if order == "in-order" else -1])
    assert final.status == "canceled"


async def test_a_tenant_with_no_stripe_account_gets_not_connected(billing: Any) -> None:
    """No key configured (the test checkout), as for a seller that has not connected."""
    context = billing.app.state.context
    with pytest.raises(subscriptions.NotConnected):
        await subscriptions.start_checkout(
            billing.pool, context.accounts, billing.settings, HOME_LIVE, "platform", "month", None
        )


def test_changes_within_one_second_are_ordered_by_what_they_changed() -> None:
    """An upgrade and a cancellation at period end in the same second: the cancellation's
    `previous_attributes` are the upgrade's new values, so it came second."""
    from tessera.billing.subscriptions.state import Logged, fold

    base = a_snapshot(200, "active", 100).snapshot
    upgraded = {**base, "items": {"data": [{**base["items"]["data"][0], "price": {"id": "p2"}}]}}
    upgrade = Logged("evt_b_upgrade", "customer.subscription.updated", 200, upgraded,
                     {"items": base["items"]})  # fmt: skip
    cancel = Logged("evt_a_cancel", "customer.subscription.updated", 200,
                    {**upgraded, "cancel_at_period_end": True},
                    {"cancel_at_period_end": False})  # fmt: skip
    for events in ([upgrade, cancel], [cancel, upgrade]):
        state = fold(events)
        assert (state.price_id, state.cancel_at_period_end) == ("p2", True)


@pytest.mark.parametrize("invoice_first", [True, False], ids=["invoice-first", "snapshot-first"])
async def test_the_account_is_the_verified_deliverys_whatever_the_order(
    billing: Any, invoice_first: bool
) -> None:
    """The connected account a subscription lives on comes from the delivery (routing
    matched its `account` to the tenant), not from metadata its seller may edit, and an
    invoice that arrives first (invoices carry no subscription metadata) does not fix it
    to the platform's."""
    now = int(time.time())
    snapshot = {"id": "sub_1OnAcct", "object": "subscription", "status": "active",
                "customer": "cus_1OnAcct", "metadata": {"tessera_account": "acct_1Edited"},
                "items": {"data": []}}  # fmt: skip
    invoice = {"id": "in_1OnAcct", "object": "invoice", "customer": "cus_1OnAcct",
               "subscription": "sub_1OnAcct", "status": "paid"}  # fmt: skip
    events: list[dict[str, Any]] = [
        {"id": "evt_1SubMade", "type": "customer.subscription.created", "created": now,
         "account": "acct_1Seller", "data": {"object": snapshot}},
        {"id": "evt_1InvPaid", "type": "invoice.paid", "created": now,
         "account": "acct_1Seller", "data": {"object": invoice}},
    ]  # fmt: skip
    for event in events[::-1] if invoice_first else events:
        async with billing.pool.acquire() as conn, conn.transaction():
            await service.apply(
                conn, HOME_LIVE, event["id"], event["type"], event["data"]["object"],
                service.Applying.of(event),
            )  # fmt: skip
    account = await billing.value(
        "SELECT stripe_account FROM subscriptions WHERE id = 'sub_1OnAcct'"
    )
    assert account == "acct_1Seller"


async def test_a_subscription_on_an_account_no_longer_connected_is_out_of_reach(
    database_url: str, infra_settings: Any, billing_starter: Any, standin: StandInServer
) -> None:
    billing = await billing_starter(
        database_url, infra_settings, stripe_secret_key=API_KEY, stripe_api_base=standin.url
    )
    try:
        await billing.value(
            "INSERT INTO subscriptions (seller_id, mode, id, stripe_account, status)"
            " VALUES ($1, $2, 'sub_1Elsewhere', 'acct_1Old', 'active')",
            HOME_LIVE.seller_id, HOME_LIVE.mode,
        )  # fmt: skip
        accounts = billing.app.state.context.accounts
        with pytest.raises(subscriptions.NotConnected):
            await subscriptions.cancel(
                billing.pool, accounts, HOME_LIVE, "sub_1Elsewhere", True, None
            )
    finally:
        await billing.stop()

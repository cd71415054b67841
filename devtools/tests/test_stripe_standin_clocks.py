"""Test clocks through the official library: advancing a clock renews its customers'
subscriptions, warns before a trial ends, and walks a failing card through past_due to
the end of the retry schedule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import stripe

from tessera.devstack.stripe_standin.testing import StandInServer, recurring_price, running_standin

DAY = 86400
START = int(datetime(2026, 1, 31, 12, tzinfo=UTC).timestamp())


async def _subscribe(
    client: stripe.StripeClient, clock: str, trial_days: int | None = None
) -> tuple[str, str]:
    price = await recurring_price(client)
    customer = await client.v1.customers.create_async(
        {"email": "c@example.com", "test_clock": clock}
    )
    params: stripe.params.SubscriptionCreateParams = {
        "customer": customer.id,
        "items": [{"price": price}],
    }
    if trial_days:
        params["trial_period_days"] = trial_days
    subscription = await client.v1.subscriptions.create_async(params)
    return customer.id, subscription.id


async def test_a_clock_is_created_advanced_listed_and_deleted(client: stripe.StripeClient) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async(
        {"frozen_time": START, "name": "c1"}
    )
    assert clock.id.startswith("clock_") and clock.object == "test_helpers.test_clock"
    assert (clock.frozen_time, clock.status, clock.name) == (START, "ready", "c1")
    customer_id, subscription_id = await _subscribe(client, clock.id)
    customer = await client.v1.customers.retrieve_async(customer_id)
    assert customer.test_clock == clock.id and customer.created == START
    subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
    assert subscription.start_date == START and subscription.test_clock == clock.id

    advanced = await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": START + DAY}
    )
    assert (advanced.frozen_time, advanced.status) == (START + DAY, "ready")
    with pytest.raises(stripe.InvalidRequestError) as back:
        await client.v1.test_helpers.test_clocks.advance_async(clock.id, {"frozen_time": START})
    assert back.value.param == "frozen_time"
    listed = await client.v1.test_helpers.test_clocks.list_async()
    assert [c.id for c in listed.data] == [clock.id]
    deleted = await client.v1.test_helpers.test_clocks.delete_async(clock.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.retrieve_async(subscription_id)


async def test_advancing_renews_each_month_with_a_paid_invoice(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": START})
    _, subscription_id = await _subscribe(client, clock.id)
    # Jan 31 -> Feb 28 -> Mar 31 -> Apr 30: months clamp to their last day
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": START + 75 * DAY}
    )
    invoices = await client.v1.invoices.list_async({"subscription": subscription_id})
    assert [(i.billing_reason, i.status, i.amount_paid) for i in invoices.data] == [
        ("subscription_cycle", "paid", 1900),
        ("subscription_cycle", "paid", 1900),
        ("subscription_create", "paid", 1900),
    ]
    starts = sorted(
        datetime.fromtimestamp(i.period_start, UTC).date().isoformat() for i in invoices.data
    )
    assert starts == ["2026-01-31", "2026-02-28", "2026-03-31"]
    subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
    assert subscription.status == "active"
    assert subscription["items"]["data"][0]["current_period_end"] == int(
        datetime(2026, 4, 30, 12, tzinfo=UTC).timestamp()
    )
    await server.delivered()
    types = server.platform.types()
    assert types.count("invoice.paid") == 3
    assert types[-1] == "test_helpers.test_clock.ready"


async def test_a_trial_warns_three_days_before_it_ends_then_bills(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": START})
    _, subscription_id = await _subscribe(client, clock.id, trial_days=14)
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": START + 12 * DAY}
    )
    await server.delivered()
    [warning] = [
        e for e in server.platform.events() if e.type == "customer.subscription.trial_will_end"
    ]
    assert warning.created == START + 11 * DAY
    assert (await client.v1.subscriptions.retrieve_async(subscription_id)).status == "trialing"
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": START + 15 * DAY}
    )
    subscription = await client.v1.subscriptions.retrieve_async(
        subscription_id, {"expand": ["latest_invoice"]}
    )
    assert subscription.status == "active"
    assert isinstance(subscription.latest_invoice, stripe.Invoice)
    assert (subscription.latest_invoice.amount_paid, subscription.latest_invoice.period_start) == (
        1900,
        START + 14 * DAY,
    )


async def test_cancel_at_period_end_ends_the_subscription_at_renewal(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": START})
    _, subscription_id = await _subscribe(client, clock.id)
    await client.v1.subscriptions.update_async(subscription_id, {"cancel_at_period_end": True})
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": START + 40 * DAY}
    )
    subscription = await client.v1.subscriptions.retrieve_async(subscription_id)
    assert subscription.status == "canceled"
    assert subscription.ended_at == int(datetime(2026, 2, 28, 12, tzinfo=UTC).timestamp())
    assert len((await client.v1.invoices.list_async({"subscription": subscription_id})).data) == 1
    await server.delivered()
    assert "customer.subscription.deleted" in server.platform.types()


@pytest.mark.parametrize("after_retries", ["cancel", "unpaid"])
async def test_a_failing_card_goes_past_due_then_ends_after_the_retries(after_retries: str) -> None:
    async with running_standin(after_retries=after_retries) as server:
        client = server.client()
        clock = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": START})
        customer_id, subscription_id = await _subscribe(client, clock.id)
        async with httpx.AsyncClient(base_url=server.url) as raw:
            await raw.post(
                f"/_standin/customers/{customer_id}/payment_method", json={"failing": True}
            )
        renewal = int(datetime(2026, 2, 28, 12, tzinfo=UTC).timestamp())
        await client.v1.test_helpers.test_clocks.advance_async(
            clock.id, {"frozen_time": renewal + DAY}
        )
        past_due = await client.v1.subscriptions.retrieve_async(
            subscription_id, {"expand": ["latest_invoice"]}
        )
        assert past_due.status == "past_due"
        assert isinstance(past_due.latest_invoice, stripe.Invoice)
        invoice = past_due.latest_invoice
        assert (invoice.status, invoice.attempt_count, invoice.next_payment_attempt) == (
            "open",
            1,
            renewal + 3 * DAY,
        )
        # retries after 3, 5 and 7 more days (the stand-in's default schedule), then the end
        await client.v1.test_helpers.test_clocks.advance_async(
            clock.id, {"frozen_time": renewal + 16 * DAY}
        )
        ended = await client.v1.subscriptions.retrieve_async(subscription_id)
        assert ended.status == ("canceled" if after_retries == "cancel" else "unpaid")
        final = await client.v1.invoices.retrieve_async(invoice.id)
        assert (final.attempt_count, final.next_payment_attempt) == (4, None)
        await server.delivered()
        failures = [e for e in server.platform.events() if e.type == "invoice.payment_failed"]
        assert [e.created - renewal for e in failures] == [0, 3 * DAY, 8 * DAY, 15 * DAY]


APRIL = int(datetime(2026, 4, 1, tzinfo=UTC).timestamp())  # a 30-day period follows


async def _half_way_change(
    client: stripe.StripeClient, behavior: str, old: int, new: int
) -> tuple[str, str, str]:
    """A monthly subscription from April 1 moved on April 16 (half its period) from a
    price of `old` to one of `new`; the clock, subscription and customer ids."""
    clock = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": APRIL})
    first = await recurring_price(client, old)
    product = str((await client.v1.prices.retrieve_async(first)).product)
    second = await recurring_price(client, new, product=product)
    customer = await client.v1.customers.create_async({"test_clock": clock.id})
    subscription = await client.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"price": first}]}
    )
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": APRIL + 15 * DAY}
    )
    item = subscription["items"]["data"][0]["id"]
    await client.v1.subscriptions.update_async(
        subscription.id,
        {"items": [{"id": item, "price": second}], "proration_behavior": behavior},
    )
    return clock.id, subscription.id, customer.id


async def _invoices(client: stripe.StripeClient, subscription: str) -> list[tuple[str, int, int]]:
    listed = await client.v1.invoices.list_async({"subscription": subscription})
    return [(i.billing_reason or "", i.total, i.amount_due) for i in reversed(listed.data)]


async def test_an_upgrade_invoiced_at_once_charges_the_rest_of_the_period(
    client: stripe.StripeClient,
) -> None:
    clock, subscription, _ = await _half_way_change(client, "always_invoice", 1000, 2000)
    assert await _invoices(client, subscription) == [
        ("subscription_create", 1000, 1000),
        ("subscription_update", 500, 500),  # -500 unused, +1000 remaining
    ]
    update = (await client.v1.invoices.list_async({"subscription": subscription, "limit": 1})).data[
        0
    ]
    assert [line.amount for line in update.lines.data] == [-500, 1000]
    details = [line.parent.subscription_item_details for line in update.lines.data if line.parent]
    assert [d.proration if d else None for d in details] == [True, True]
    await client.v1.test_helpers.test_clocks.advance_async(clock, {"frozen_time": APRIL + 31 * DAY})
    assert (await _invoices(client, subscription))[-1] == ("subscription_cycle", 2000, 2000)


async def test_a_downgrade_credits_the_next_invoice(client: stripe.StripeClient) -> None:
    clock, subscription, _ = await _half_way_change(client, "create_prorations", 2000, 1000)
    assert len(await _invoices(client, subscription)) == 1  # nothing billed yet
    await client.v1.test_helpers.test_clocks.advance_async(clock, {"frozen_time": APRIL + 31 * DAY})
    assert (await _invoices(client, subscription))[-1] == ("subscription_cycle", 500, 500)


async def test_a_downgrade_invoiced_at_once_leaves_a_credit_balance(
    client: stripe.StripeClient,
) -> None:
    clock, subscription, customer = await _half_way_change(client, "always_invoice", 2000, 1000)
    assert (await _invoices(client, subscription))[-1] == ("subscription_update", -500, 0)
    assert (await client.v1.customers.retrieve_async(customer)).balance == -500
    await client.v1.test_helpers.test_clocks.advance_async(clock, {"frozen_time": APRIL + 31 * DAY})
    renewal = (
        await client.v1.invoices.list_async({"subscription": subscription, "limit": 1})
    ).data[0]
    assert (renewal.total, renewal.starting_balance, renewal.amount_due) == (1000, -500, 500)
    assert (await client.v1.customers.retrieve_async(customer)).balance == 0


async def test_an_unpaid_first_invoice_expires_the_subscription_after_23_hours(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    clock = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": START})
    customer = await client.v1.customers.create_async({"test_clock": clock.id})
    async with httpx.AsyncClient(base_url=server.url) as raw:
        await raw.post(f"/_standin/customers/{customer.id}/payment_method", json={"failing": True})
    subscription = await client.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"price": await recurring_price(client)}]}
    )
    assert subscription.status == "incomplete"
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": START + 22 * 3600}
    )
    assert (await client.v1.subscriptions.retrieve_async(subscription.id)).status == "incomplete"
    await client.v1.test_helpers.test_clocks.advance_async(clock.id, {"frozen_time": START + DAY})
    expired = await client.v1.subscriptions.retrieve_async(subscription.id)
    assert (expired.status, expired.ended_at) == ("incomplete_expired", START + 23 * 3600)
    invoice = await client.v1.invoices.retrieve_async(str(expired.latest_invoice))
    assert invoice.status == "void"
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, {"frozen_time": START + 40 * DAY}
    )
    assert len((await client.v1.invoices.list_async({"subscription": subscription.id})).data) == 1
    await server.delivered()
    types = server.platform.types()
    voided = types.index("invoice.voided")
    assert types[voided : voided + 2] == ["invoice.voided", "customer.subscription.deleted"]


async def test_with_clock_per_customer_each_new_customer_is_on_a_clock_of_its_own() -> None:
    """`./dev up`'s stand-in: a customer made without `test_clock` (a checkout's buyer too)
    gets a new clock at the time it was made; one made with a clock keeps that one."""
    async with running_standin(clock_per_customer=True) as server:
        client = server.client()
        first = await client.v1.customers.create_async({"email": "a@example.com"})
        second = await client.v1.customers.create_async({"email": "b@example.com"})
        assert isinstance(first.test_clock, str) and isinstance(second.test_clock, str)
        assert first.test_clock != second.test_clock
        clock = await client.v1.test_helpers.test_clocks.retrieve_async(first.test_clock)
        assert (clock.name, clock.frozen_time) == ("a@example.com", first.created)
        chosen = await client.v1.test_helpers.test_clocks.create_async({"frozen_time": START})
        kept = await client.v1.customers.create_async({"test_clock": chosen.id})
        assert kept.test_clock == chosen.id
        session = await client.v1.checkout.sessions.create_async(
            {
                "mode": "subscription",
                "line_items": [{"price": await recurring_price(client), "quantity": 1}],
                "success_url": "http://127.0.0.1/done",
            }
        )
        async with httpx.AsyncClient(base_url=server.url) as control:
            done = await control.post(
                f"/_standin/checkout/sessions/{session.id}/complete", json={"email": "c@x.com"}
            )
        assert done.status_code == 200, done.text
        buyer = await client.v1.customers.retrieve_async(done.json()["customer"])
        assert buyer.test_clock not in (None, first.test_clock, second.test_clock)


async def test_without_it_a_customer_is_on_no_clock(client: stripe.StripeClient) -> None:
    customer = await client.v1.customers.create_async({"email": "a@example.com"})
    assert customer.test_clock is None


async def test_with_a_state_file_it_remembers_its_objects_across_a_restart(
    tmp_path: Path,
) -> None:
    """`./dev up` keeps a state file: billing's database names Stripe ids across runs."""
    state = str(tmp_path / "stripe-standin.state")
    async with running_standin(state_file=state) as server:
        price = await recurring_price(server.client())
    async with running_standin(state_file=state) as server:
        assert (await server.client().v1.prices.retrieve_async(price)).id == price
    async with running_standin() as server:
        with pytest.raises(stripe.InvalidRequestError):
            await server.client().v1.prices.retrieve_async(price)

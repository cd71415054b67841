"""Subscriptions and their invoices through the official library: create, change price,
cancel at period end, end a trial now, cancel; a declining card and a manual retry."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tessera.devstack.stripe_standin.subscriptions import add_interval
from tessera.devstack.stripe_standin.testing import StandInServer, recurring_price


async def _prices(client: stripe.StripeClient) -> tuple[str, str]:
    """A monthly and a yearly price of one product."""
    monthly = await recurring_price(client)
    product = str((await client.v1.prices.retrieve_async(monthly)).product)
    return monthly, await recurring_price(client, 19000, "year", product)


async def test_a_subscription_is_created_changed_and_canceled(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    monthly, yearly = await _prices(client)
    customer = await client.v1.customers.create_async({"email": "a@example.com"})
    subscription = await client.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"price": monthly}], "metadata": {"seller": "s1"}}
    )
    assert subscription.id.startswith("sub_") and subscription.status == "active"
    [item] = subscription["items"]["data"]
    assert item["id"].startswith("si_") and item["price"]["id"] == monthly
    period = item["current_period_end"] - item["current_period_start"]
    assert 28 * 86400 <= period <= 31 * 86400
    invoice = await client.v1.invoices.retrieve_async(str(subscription.latest_invoice))
    assert (invoice.status, invoice.amount_paid, invoice.billing_reason) == (
        "paid",
        1900,
        "subscription_create",
    )
    assert invoice.parent is not None and invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == subscription.id
    assert invoice.hosted_invoice_url is not None and invoice.number is not None
    async with httpx.AsyncClient() as browser:
        page = await browser.get(invoice.hosted_invoice_url)
    assert page.status_code == 200 and invoice.number in page.text

    changed = await client.v1.subscriptions.update_async(
        subscription.id,
        {"items": [{"id": item["id"], "price": yearly}], "proration_behavior": "create_prorations"},
    )
    assert changed["items"]["data"][0]["price"]["id"] == yearly
    # a new interval starts a new (yearly) period now, billed at once
    period = changed["items"]["data"][0]
    assert period["current_period_start"] >= item["current_period_start"]
    # (add_interval clamps Feb 29 to Feb 28; the clock tests check its months)
    assert period["current_period_end"] == add_interval(period["current_period_start"], "year", 1)
    bill = await client.v1.invoices.retrieve_async(str(changed.latest_invoice))
    assert (bill.billing_reason, bill.amount_paid) == ("subscription_update", 19000)
    item = changed["items"]["data"][0]
    ending = await client.v1.subscriptions.update_async(
        subscription.id, {"cancel_at_period_end": True}
    )
    assert ending.cancel_at_period_end is True and ending.status == "active"
    assert ending.cancel_at == item["current_period_end"]
    kept = await client.v1.subscriptions.update_async(
        subscription.id, {"cancel_at_period_end": False}
    )
    assert (kept.cancel_at_period_end, kept.cancel_at) == (False, None)

    canceled = await client.v1.subscriptions.cancel_async(subscription.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    assert canceled.cancellation_details is not None
    assert canceled.cancellation_details.reason == "cancellation_requested"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.update_async(subscription.id, {"cancel_at_period_end": True})
    assert (await client.v1.subscriptions.list_async({"customer": customer.id})).data == []
    listed = await client.v1.subscriptions.list_async({"customer": customer.id, "status": "all"})
    assert [s.id for s in listed.data] == [subscription.id]

    await server.delivered()
    updates = [e for e in server.platform.events() if e.type == "customer.subscription.updated"]
    assert (
        updates[1].data.previous_attributes.to_dict()["items"]["data"][0]["price"]["id"] == monthly
    )
    assert server.platform.types()[-1] == "customer.subscription.deleted"


async def test_trial_end_now_bills_at_once(client: stripe.StripeClient) -> None:
    monthly, _ = await _prices(client)
    customer = await client.v1.customers.create_async({"email": "t@example.com"})
    trialing = await client.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"price": monthly}], "trial_period_days": 7}
    )
    assert trialing.status == "trialing"
    active = await client.v1.subscriptions.update_async(trialing.id, {"trial_end": "now"})
    assert active.status == "active"
    invoices = await client.v1.invoices.list_async({"subscription": trialing.id})
    assert [(i.billing_reason, i.amount_paid) for i in invoices.data] == [
        ("subscription_cycle", 1900),
        ("subscription_create", 0),
    ]


async def test_a_declining_card_leaves_the_first_invoice_open_until_paid(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    monthly, _ = await _prices(client)
    customer = await client.v1.customers.create_async({"email": "d@example.com"})
    async with httpx.AsyncClient(base_url=server.url) as raw:
        marked = await raw.post(
            f"/_standin/customers/{customer.id}/payment_method", json={"failing": True}
        )
        assert marked.status_code == 200
        subscription = await client.v1.subscriptions.create_async(
            {"customer": customer.id, "items": [{"price": monthly}]}
        )
        assert subscription.status == "incomplete"
        invoice_id = str(subscription.latest_invoice)
        with pytest.raises(stripe.CardError):
            await client.v1.invoices.pay_async(invoice_id)
        await raw.post(
            f"/_standin/customers/{customer.id}/payment_method", data={"failing": "false"}
        )
    paid = await client.v1.invoices.pay_async(invoice_id)
    assert (paid.status, paid.attempt_count) == ("paid", 3)
    assert (await client.v1.subscriptions.retrieve_async(subscription.id)).status == "active"
    await server.delivered()
    assert server.platform.types().count("invoice.payment_failed") == 2


async def test_subscription_input_is_checked(client: stripe.StripeClient) -> None:
    monthly, _ = await _prices(client)
    product = await client.v1.products.create_async({"name": "Once"})
    once = await client.v1.prices.create_async(
        {"product": product.id, "currency": "usd", "unit_amount": 100}
    )
    customer = await client.v1.customers.create_async({})
    with pytest.raises(stripe.InvalidRequestError) as one_time:
        await client.v1.subscriptions.create_async(
            {"customer": customer.id, "items": [{"price": once.id}]}
        )
    assert one_time.value.param == "items[0][price]"
    with pytest.raises(stripe.InvalidRequestError) as nobody:
        await client.v1.subscriptions.create_async(
            {"customer": "cus_nobody", "items": [{"price": monthly}]}
        )
    assert (nobody.value.code, nobody.value.param) == ("resource_missing", "customer")
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.subscriptions.retrieve_async("sub_nothing")
    assert missing.value.http_status == 404


async def test_the_portal_cancels_takes_it_back_and_switches_price(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    monthly, yearly = await _prices(client)
    customer = await client.v1.customers.create_async({"email": "p@example.com"})
    subscription = await client.v1.subscriptions.create_async(
        {"customer": customer.id, "items": [{"price": monthly}]}
    )
    session = await client.v1.billing_portal.sessions.create_async(
        {"customer": customer.id, "return_url": "https://portal.example/account"}
    )
    assert session.id.startswith("bps_") and session.object == "billing_portal.session"
    assert session.url.startswith(server.url)
    async with httpx.AsyncClient() as browser:
        page = await browser.get(session.url)
        assert subscription.id in page.text and "Switch to 190.00 a year" in page.text
        form = {"subscription": subscription.id}
        assert (await browser.post(f"{session.url}/cancel", data=form)).status_code == 303
        ending = await client.v1.subscriptions.retrieve_async(subscription.id)
        assert (ending.cancel_at_period_end, ending.status) == (True, "active")
        assert ending.cancellation_details is not None
        assert ending.cancellation_details.reason == "cancellation_requested"
        await browser.post(f"{session.url}/renew", data=form)
        assert (await client.v1.subscriptions.retrieve_async(subscription.id)).cancel_at is None
        switched = await browser.post(f"{session.url}/switch", data={**form, "price": yearly})
        assert switched.status_code == 303
        refused = await browser.post(f"{session.url}/switch", data={**form, "price": "price_x"})
        assert refused.status_code == 400
    now = await client.v1.subscriptions.retrieve_async(subscription.id)
    assert now["items"]["data"][0]["price"]["id"] == yearly
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.billing_portal.sessions.create_async({"customer": "cus_nobody"})

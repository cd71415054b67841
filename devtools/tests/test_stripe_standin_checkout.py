"""Customers and Checkout Sessions through the official library, completed through the
stand-in's control endpoint and its hosted page, with the events Stripe sends."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tessera.devstack.stripe_standin.testing import StandInServer, recurring_price


async def test_customers_are_created_updated_listed_and_deleted(
    client: stripe.StripeClient,
) -> None:
    customer = await client.v1.customers.create_async(
        {"email": "pat@example.com", "name": "Pat", "metadata": {"seller": "s1"}}
    )
    assert customer.id.startswith("cus_") and customer.object == "customer"
    assert (customer.email, customer.name, customer.test_clock) == ("pat@example.com", "Pat", None)
    updated = await client.v1.customers.update_async(customer.id, {"name": "Pat Doe"})
    assert updated.name == "Pat Doe"
    other = await client.v1.customers.create_async({"email": "sam@example.com"})
    found = await client.v1.customers.list_async({"email": "sam@example.com"})
    assert [c.id for c in found.data] == [other.id]
    deleted = await client.v1.customers.delete_async(other.id)
    assert deleted.deleted is True
    assert (await client.v1.customers.retrieve_async(other.id)).to_dict()["deleted"] is True
    assert [c.id for c in (await client.v1.customers.list_async()).data] == [customer.id]


async def test_a_payment_session_completes_with_a_payment_and_events(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 14900,
                        "product_data": {"name": "ChartGPT lifetime"},
                    },
                    "quantity": 2,
                }
            ],
            "customer_creation": "always",
            "customer_email": "pat@example.com",
            "client_reference_id": "order-1",
            "metadata": {"sku": "chartgpt-lifetime", "quantity": "2"},
            "payment_intent_data": {"metadata": {"sku": "chartgpt-lifetime"}},
            "success_url": "https://portal.example/ok?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://site.example/",
        }
    )
    assert session.id.startswith("cs_test_")
    assert (session.status, session.payment_status, session.amount_total) == (
        "open",
        "unpaid",
        29800,
    )
    assert session.url is not None and session.url.startswith(server.url)
    with_items = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["line_items"]}
    )
    assert with_items.line_items is not None
    [line] = with_items.line_items.data
    assert (line.quantity, line.amount_total, line.description) == (2, 29800, "ChartGPT lifetime")

    async with httpx.AsyncClient(base_url=server.url) as raw:
        page = await raw.get(f"/_standin/checkout/{session.id}")
        assert page.status_code == 200 and "298.00 USD" in page.text
        done = await raw.post(f"/_standin/checkout/sessions/{session.id}/complete", json={})
        assert done.status_code == 200 and done.json()["status"] == "complete"
        again = await raw.post(f"/_standin/checkout/sessions/{session.id}/complete", json={})
        assert again.status_code == 400

    paid = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["payment_intent", "customer"]}
    )
    assert (paid.status, paid.payment_status) == ("complete", "paid")
    assert isinstance(paid.customer, stripe.Customer) and paid.customer.email == "pat@example.com"
    assert isinstance(paid.payment_intent, stripe.PaymentIntent)
    assert paid.payment_intent.status == "succeeded"
    assert paid.payment_intent.metadata.to_dict() == {"sku": "chartgpt-lifetime"}
    assert paid.customer_details is not None and paid.customer_details.email == "pat@example.com"

    await server.delivered()
    events = server.platform.events()
    assert [e.type for e in events if not e.type.startswith(("product.", "price."))] == [
        "customer.created",
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = events[-1].data.object.to_dict()
    assert completed["metadata"] == {"sku": "chartgpt-lifetime", "quantity": "2"}
    assert completed["client_reference_id"] == "order-1"
    charge = next(e for e in events if e.type == "charge.succeeded").data.object.to_dict()
    assert charge["payment_intent"] == completed["payment_intent"]
    assert (charge["amount"], charge["billing_details"]["email"]) == (29800, "pat@example.com")
    async with httpx.AsyncClient() as browser:
        receipt = await browser.get(charge["receipt_url"])
    assert receipt.status_code == 200 and "298.00 USD" in receipt.text


async def test_the_hosted_page_pays_and_returns_to_success_url(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    product = await client.v1.products.create_async({"name": "Tool"})
    price = await client.v1.prices.create_async(
        {"product": product.id, "currency": "eur", "unit_amount": 500}
    )
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://portal.example/ok?session_id={CHECKOUT_SESSION_ID}",
        }
    )
    async with httpx.AsyncClient(base_url=server.url) as raw:
        declined = await raw.post(
            f"/_standin/checkout/{session.id}/pay",
            data={"email": "x@example.com", "declined": "true"},
        )
        assert declined.status_code == 402
        paid = await raw.post(
            f"/_standin/checkout/{session.id}/pay", data={"email": "x@example.com"}
        )
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://portal.example/ok?session_id={session.id}"
    done = await client.v1.checkout.sessions.retrieve_async(session.id)
    # if_required (the default) makes no customer for a one-time payment, as Stripe
    assert (done.status, done.customer) == ("complete", None)
    await server.delivered()
    assert "payment_intent.payment_failed" in server.platform.types()


async def test_a_subscription_session_with_a_trial_starts_a_subscription(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    monthly = await recurring_price(client)
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "subscription",
            "line_items": [{"price": monthly, "quantity": 1}],
            "customer_email": "sub@example.com",
            "subscription_data": {"trial_period_days": 14, "metadata": {"tier": "pro"}},
            "metadata": {"seller": "s1"},
            "success_url": "https://portal.example/ok",
        }
    )
    async with httpx.AsyncClient(base_url=server.url) as raw:
        done = await raw.post(f"/_standin/checkout/sessions/{session.id}/complete", data={})
    assert done.status_code == 200
    completed = await client.v1.checkout.sessions.retrieve_async(
        session.id, {"expand": ["subscription", "invoice"]}
    )
    assert (completed.status, completed.payment_status) == ("complete", "no_payment_required")
    subscription = completed.subscription
    assert isinstance(subscription, stripe.Subscription)
    assert subscription.status == "trialing"
    assert subscription.metadata.to_dict() == {"tier": "pro"}
    assert subscription.trial_end is not None and subscription.trial_start is not None
    assert subscription.trial_end - subscription.trial_start == 14 * 86400
    [item] = subscription["items"]["data"]
    assert item["price"]["id"] == monthly
    assert item["current_period_end"] == subscription.trial_end
    invoice = completed.invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.status, invoice.amount_due, invoice.billing_reason) == (
        "paid",
        0,
        "subscription_create",
    )
    await server.delivered()
    types = [t for t in server.platform.types() if not t.startswith(("product.", "price."))]
    assert types == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]


async def test_checkout_refuses_what_stripe_refuses(client: stripe.StripeClient) -> None:
    monthly = await recurring_price(client)
    once = await client.v1.prices.create_async(
        {"product_data": {"name": "Once"}, "currency": "usd", "unit_amount": 100}
    )
    cases = [
        (
            {"mode": "payment", "line_items": [{"price": monthly, "quantity": 1}]},
            "line_items[0][price]",
        ),
        ({"mode": "subscription", "line_items": [{"price": once.id, "quantity": 1}]}, "line_items"),
        ({"mode": "payment", "line_items": [{"price": once.id}]}, "line_items[0][quantity]"),
        (
            {"mode": "payment", "line_items": [{"price": "price_nope", "quantity": 1}]},
            "line_items[0][price]",
        ),
        ({"mode": "payment"}, "line_items"),
        (
            {
                "mode": "subscription",
                "line_items": [{"price": monthly, "quantity": 1}],
                "subscription_data": {"trial_days": 3},
            },
            "subscription_data[trial_days]",
        ),
        (
            {
                "mode": "subscription",
                "line_items": [{"price": monthly, "quantity": 1}],
                "subscription_data": {"trial_end": 1},
            },
            "subscription_data[trial_end]",
        ),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.checkout.sessions.create_async(params)  # type: ignore[arg-type]
        assert refused.value.param == param
    session = await client.v1.checkout.sessions.create_async(
        {"mode": "payment", "line_items": [{"price": once.id, "quantity": 1}]}
    )
    expired = await client.v1.checkout.sessions.expire_async(session.id)
    assert expired.status == "expired"


async def test_a_customer_marked_failing_cannot_complete_a_session(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    customer = await client.v1.customers.create_async({"email": "f@example.com"})
    session = await client.v1.checkout.sessions.create_async(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": await recurring_price(client), "quantity": 1}],
        }
    )
    async with httpx.AsyncClient(base_url=server.url) as raw:
        await raw.post(f"/_standin/customers/{customer.id}/payment_method", json={"failing": True})
        refused = await raw.post(f"/_standin/checkout/sessions/{session.id}/complete", json={})
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "card_declined"
    still = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert (still.status, still.subscription) == ("open", None)
    assert (await client.v1.subscriptions.list_async({"status": "all"})).data == []

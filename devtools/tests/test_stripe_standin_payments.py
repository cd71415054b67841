"""Payments through the official library: charges with their fees in balance transactions,
application fees on a connected account, invoice payments, and refunds."""

from __future__ import annotations

import httpx
import pytest
import stripe

from tessera.devstack.stripe_standin.testing import StandInServer, recurring_price


async def _paid_session(server: StandInServer, client: stripe.StripeClient, **options: str) -> str:
    """A completed payment-mode session for 100.00 USD; its PaymentIntent's id."""
    params: stripe.params.checkout.SessionCreateParams = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 10000,
                    "product_data": {"name": "X"},
                },
                "quantity": 1,
            }
        ],
    }
    if "fee" in options:
        params["payment_intent_data"] = {"application_fee_amount": int(options["fee"])}
    request: stripe.RequestOptions = {}
    if "account" in options:
        request["stripe_account"] = options["account"]
    session = await client.v1.checkout.sessions.create_async(params, options=request)
    async with httpx.AsyncClient(base_url=server.url) as raw:
        done = await raw.post(f"/_standin/checkout/sessions/{session.id}/complete", json={})
    return str(done.json()["payment_intent"])


async def test_a_charge_has_stripes_fee_and_refunds_take_it_back_in_parts(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    intent_id = await _paid_session(server, client)
    intent = await client.v1.payment_intents.retrieve_async(
        intent_id, {"expand": ["latest_charge.balance_transaction"]}
    )
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    txn = charge.balance_transaction
    assert isinstance(txn, stripe.BalanceTransaction)
    assert (txn.type, txn.amount, txn.fee, txn.net) == ("charge", 10000, 320, 9680)
    assert [f.type for f in txn.fee_details] == ["stripe_fee"]

    part = await client.v1.refunds.create_async({"payment_intent": intent_id, "amount": 2500})
    assert (part.object, part.amount, part.status, part.charge) == (
        "refund",
        2500,
        "succeeded",
        charge.id,
    )
    rest = await client.v1.refunds.create_async({"charge": charge.id})
    assert rest.amount == 7500
    refunded = await client.v1.charges.retrieve_async(charge.id)
    assert (refunded.amount_refunded, refunded.refunded) == (10000, True)
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.refunds.create_async({"charge": charge.id})
    assert again.value.code == "charge_already_refunded"
    refunds = await client.v1.balance_transactions.list_async({"type": "refund"})
    assert sorted(t.amount for t in refunds.data) == [-7500, -2500]
    await server.delivered()
    assert server.platform.types().count("charge.refunded") == 2


async def test_too_large_a_refund_is_refused(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    intent_id = await _paid_session(server, client)
    with pytest.raises(stripe.InvalidRequestError) as large:
        await client.v1.refunds.create_async({"payment_intent": intent_id, "amount": 10001})
    assert (large.value.code, large.value.param) == ("amount_too_large", "amount")
    assert (await client.v1.refunds.list_async()).data == []


async def test_application_fees_apply_on_a_connected_account_only(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as on_platform:
        await _paid_session(server, client, fee="500")
    assert on_platform.value.param == "payment_intent_data[application_fee_amount]"
    account = await client.v1.accounts.create_async({"type": "express"})
    seller: stripe.RequestOptions = {"stripe_account": account.id}
    intent_id = await _paid_session(server, client, fee="500", account=account.id)
    intent = await client.v1.payment_intents.retrieve_async(intent_id, options=seller)
    assert intent.application_fee_amount == 500
    [txn] = (
        await client.v1.balance_transactions.list_async({"type": "charge"}, options=seller)
    ).data
    assert (txn.fee, txn.net) == (820, 9180)

    price = await recurring_price(client, 2000)
    seller_price = await client.v1.prices.create_async(
        {
            "product_data": {"name": "Tier"},
            "currency": "usd",
            "unit_amount": 2000,
            "recurring": {"interval": "month"},
        },
        options=seller,
    )
    customer = await client.v1.customers.create_async({}, options=seller)
    subscription = await client.v1.subscriptions.create_async(
        {
            "customer": customer.id,
            "items": [{"price": seller_price.id}],
            "application_fee_percent": 10,
        },
        options=seller,
    )
    invoice_id = str(subscription.latest_invoice)
    [payment] = (
        await client.v1.invoice_payments.list_async({"invoice": invoice_id}, options=seller)
    ).data
    assert payment.status == "paid" and payment.amount_paid == 2000
    assert payment.payment.payment_intent is not None
    paid_by = await client.v1.payment_intents.retrieve_async(
        str(payment.payment.payment_intent), options=seller
    )
    assert (paid_by.amount, paid_by.application_fee_amount) == (2000, 200)
    platform_customer = await client.v1.customers.create_async({})
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.subscriptions.create_async(
            {
                "customer": platform_customer.id,
                "items": [{"price": price}],
                "application_fee_percent": 10,
            }
        )


@pytest.mark.parametrize("outcome", ["won", "lost"])
async def test_a_dispute_is_opened_answered_and_decided(
    server: StandInServer, client: stripe.StripeClient, outcome: str
) -> None:
    intent_id = await _paid_session(server, client)
    charge_id = str((await client.v1.payment_intents.retrieve_async(intent_id)).latest_charge)
    async with httpx.AsyncClient(base_url=server.url) as raw:
        opened = await raw.post(
            f"/_standin/charges/{charge_id}/dispute", json={"reason": "fraudulent"}
        )
        assert opened.status_code == 200
        dispute_id = opened.json()["id"]
        staged = await client.v1.disputes.update_async(
            dispute_id, {"evidence": {"uncategorized_text": "Delivered."}, "submit": False}
        )
        assert (staged.status, staged.evidence_details.has_evidence) == ("needs_response", True)
        submitted = await client.v1.disputes.update_async(dispute_id, {"submit": True})
        assert submitted.status == "under_review"
        decided = await raw.post(
            f"/_standin/disputes/{dispute_id}/close", json={"outcome": outcome}
        )
        assert decided.status_code == 200
        again = await raw.post(f"/_standin/disputes/{dispute_id}/close", json={"outcome": outcome})
        assert again.status_code == 400
    dispute = await client.v1.disputes.retrieve_async(dispute_id)
    assert (dispute.status, dispute.charge, dispute.amount) == (outcome, charge_id, 10000)
    assert (await client.v1.charges.retrieve_async(charge_id)).disputed is True
    moved = sum(t.amount for t in dispute.balance_transactions)
    assert moved == (0 if outcome == "won" else -10000)
    assert [t.fee for t in dispute.balance_transactions] == [1500, 0][
        : 2 if outcome == "won" else 1
    ]
    await server.delivered()
    types = [t for t in server.platform.types() if t.startswith("charge.dispute.")]
    assert types == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.updated",
        *(["charge.dispute.funds_reinstated"] if outcome == "won" else []),
        "charge.dispute.closed",
    ]


async def test_accepting_a_dispute_loses_it(
    server: StandInServer, client: stripe.StripeClient
) -> None:
    intent_id = await _paid_session(server, client)
    charge_id = str((await client.v1.payment_intents.retrieve_async(intent_id)).latest_charge)
    async with httpx.AsyncClient(base_url=server.url) as raw:
        dispute_id = (await raw.post(f"/_standin/charges/{charge_id}/dispute", json={})).json()[
            "id"
        ]
    closed = await client.v1.disputes.close_async(dispute_id)
    assert (closed.status, closed.reason) == ("lost", "fraudulent")
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.disputes.close_async(dispute_id)

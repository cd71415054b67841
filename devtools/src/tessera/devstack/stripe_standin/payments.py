"""Money that moved: PaymentIntents, Charges and their balance transactions (with Stripe's
card fee and any application fee), invoice payments, and refunds (`/v1/refunds`)."""

from __future__ import annotations

from collections.abc import Callable

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.store import snapshot
from tessera.devstack.stripe_standin.wire import Obj, StripeApiError, invalid, new_id, page

DAY = 86400


def stripe_fee(amount: int) -> int:
    """Stripe's US card price: 2.9% + 30 cents."""
    return round(amount * 0.029) + 30


def balance_entry(call: Call, source: Obj, amount: int, kind: str, fees: list[Obj], at: int) -> str:
    fee = sum(f["amount"] for f in fees)
    txn: Obj = {
        "id": new_id("txn_3"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": at + 2 * DAY,
        "balance_type": "payments",
        "created": at,
        "currency": source["currency"],
        "description": source.get("description"),
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fees,
        "net": amount - fee,
        "reporting_category": kind,
        "source": source["id"],
        "status": "available",
        "type": kind,
    }
    call.store.add(call.account, txn)
    return str(txn["id"])


def pay(
    call: Call,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    email: str | None,
    metadata: dict[str, str],
    at: int,
    application_fee_amount: int | None = None,
    description: str | None = None,
) -> Obj:
    """A succeeded PaymentIntent with its Charge and balance transaction, and their events
    (`payment_intent.created`, `charge.succeeded`, `payment_intent.succeeded`)."""
    intent_id, charge_id = new_id("pi_3"), new_id("ch_3")
    base: Obj = {
        "amount": amount,
        "application_fee_amount": application_fee_amount,
        "currency": currency,
        "customer": customer,
        "created": at,
        "description": description,
        "livemode": False,
        "metadata": dict(metadata),
        "receipt_email": email,
    }
    intent: Obj = {
        **base,
        "id": intent_id,
        "object": "payment_intent",
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": "automatic_async",
        "client_secret": f"{intent_id}_secret_{new_id('', 25)}",
        "last_payment_error": None,
        "latest_charge": None,
        "payment_method": new_id("pm_1"),
        "payment_method_types": ["card"],
        "status": "requires_payment_method",
    }
    call.store.add(call.account, intent)
    call.store.emit(call.account, "payment_intent.created", intent, created=at)
    charge: Obj = {
        **base,
        "id": charge_id,
        "object": "charge",
        "amount_captured": amount,
        "amount_refunded": 0,
        "balance_transaction": None,
        "billing_details": {"address": None, "email": email, "name": None, "phone": None},
        "captured": True,
        "disputed": False,
        "failure_code": None,
        "failure_message": None,
        "outcome": {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": intent_id,
        "payment_method": intent["payment_method"],
        "payment_method_details": {
            "card": {
                "brand": "visa",
                "country": "US",
                "exp_month": 12,
                "exp_year": 2034,
                "funding": "credit",
                "last4": "4242",
            },
            "type": "card",
        },
        "receipt_url": f"{call.settings.public_url}/_standin/receipts/{charge_id}",
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/charges/{charge_id}/refunds",
        },
        "status": "succeeded",
    }
    fees = [fee(stripe_fee(amount), currency, "stripe_fee", "Stripe processing fees")]
    if application_fee_amount:
        fees.append(fee(application_fee_amount, currency, "application_fee", "Application fee"))
    charge["balance_transaction"] = balance_entry(call, charge, amount, "charge", fees, at)
    call.store.add(call.account, charge)
    call.store.emit(call.account, "charge.succeeded", charge, created=at)
    intent.update(status="succeeded", amount_received=amount, latest_charge=charge_id)
    call.store.emit(call.account, "payment_intent.succeeded", intent, created=at)
    return intent


def fee(amount: int, currency: str, kind: str, description: str) -> Obj:
    return {
        "amount": amount,
        "application": None,
        "currency": currency,
        "description": description,
        "type": kind,
    }


def record_invoice_payment(call: Call, invoice: Obj, intent: Obj, at: int) -> None:
    """`/v1/invoice_payments`: which PaymentIntent paid which invoice."""
    payment: Obj = {
        "id": new_id("inpay_1"),
        "object": "invoice_payment",
        "amount_paid": intent["amount"],
        "amount_requested": invoice["amount_due"],
        "created": at,
        "currency": invoice["currency"],
        "invoice": invoice["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
        "status": "paid",
        "status_transitions": {"canceled_at": None, "paid_at": at},
    }
    call.store.add(call.account, payment)


def list_invoice_payments(call: Call) -> Obj:
    invoice = call.params.text("invoice")
    return page(
        call.store.all(call.account, "invoice_payment"),
        call.params,
        "/v1/invoice_payments",
        filtered=lambda p: invoice is None or p["invoice"] == invoice,
    )


def create_refund(call: Call) -> Obj:
    """A refund of all or part of a charge (`charge` or `payment_intent`): `refund.created`
    and `charge.refunded`, and a negative balance transaction."""
    params = call.params
    charge_id = params.text("charge")
    intent_id = params.text("payment_intent")
    if (charge_id is None) == (intent_id is None):
        raise invalid(
            "charge", "You must pass either `charge` or `payment_intent`.", "parameter_missing"
        )
    if intent_id is not None:
        intent = call.store.get(call.account, "payment_intent", intent_id, "payment_intent")
        charge_id = intent["latest_charge"]
        if charge_id is None:
            raise StripeApiError(
                400,
                "This PaymentIntent has no successful charge to refund.",
                param="payment_intent",
            )
    assert charge_id is not None
    charge = call.store.get(call.account, "charge", charge_id, "charge")
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining == 0:
        raise StripeApiError(
            400, f"Charge {charge_id} has already been refunded.", code="charge_already_refunded"
        )
    amount = params.integer("amount", minimum=1) or remaining
    if amount > remaining:
        raise invalid(
            "amount",
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            "amount_too_large",
        )
    at = call.now(charge["customer"])
    refund: Obj = {
        "id": new_id("re_3"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": at,
        "currency": charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": params.metadata(),
        "payment_intent": charge["payment_intent"],
        "reason": params.choice("reason", ("duplicate", "fraudulent", "requested_by_customer")),
        "status": "succeeded",
    }
    refund["balance_transaction"] = balance_entry(call, refund, -amount, "refund", [], at)
    call.store.add(call.account, refund)
    call.store.emit(call.account, "refund.created", refund, created=at)
    before = snapshot(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    charge["refunds"]["data"].insert(0, refund)
    call.store.emit(
        call.account,
        "charge.refunded",
        charge,
        previous={"amount_refunded": before["amount_refunded"], "refunded": before["refunded"]},
        created=at,
    )
    return refund


def retriever(kind: str) -> Callable[[Call], Obj]:
    def retrieve(call: Call) -> Obj:
        return call.store.get(call.account, kind, call.path["id"])

    return retrieve


def lister(kind: str, url: str, filters: tuple[str, ...]) -> Callable[[Call], Obj]:
    def listed(call: Call) -> Obj:
        wanted = {key: call.params.text(key) for key in filters}
        return page(
            call.store.all(call.account, kind),
            call.params,
            url,
            filtered=lambda o: all(v is None or o.get(k) == v for k, v in wanted.items()),
        )

    return listed


ENDPOINTS = [
    Endpoint("POST", "/v1/refunds", create_refund, ("charge", "payment_intent", "amount", "reason", "metadata")),
    Endpoint("GET", "/v1/refunds", lister("refund", "/v1/refunds", ("charge", "payment_intent")), ("charge", "payment_intent", "created")),
    Endpoint("GET", "/v1/refunds/{id}", retriever("refund")),
    Endpoint("GET", "/v1/charges", lister("charge", "/v1/charges", ("customer", "payment_intent")), ("customer", "payment_intent", "created")),
    Endpoint("GET", "/v1/charges/{id}", retriever("charge")),
    Endpoint("GET", "/v1/payment_intents", lister("payment_intent", "/v1/payment_intents", ("customer",)), ("customer", "created")),
    Endpoint("GET", "/v1/payment_intents/{id}", retriever("payment_intent")),
    Endpoint("GET", "/v1/balance_transactions", lister("balance_transaction", "/v1/balance_transactions", ("source", "type")), ("source", "type", "created", "currency", "payout")),
    Endpoint("GET", "/v1/balance_transactions/{id}", retriever("balance_transaction")),
    Endpoint("GET", "/v1/invoice_payments", list_invoice_payments, ("invoice", "payment", "status", "created")),
]  # fmt: skip

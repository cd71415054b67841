"""Invoices: what a subscription bills each period, and their payment attempts (paid, or
payment_failed with Stripe's retry schedule). `/v1/invoices` reads them; `pay` retries."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse, Response

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.payments import pay, record_invoice_payment
from tessera.devstack.stripe_standin.store import changed, snapshot
from tessera.devstack.stripe_standin.wire import Obj, StripeApiError, new_id, page

DAY = 86400
# A subscription invoice's PaymentIntent says why it was made, as Stripe's do.
DESCRIPTIONS = {
    "subscription_create": "Subscription creation",
    "subscription_cycle": "Subscription cycle",
    "subscription_update": "Subscription update",
}


def invoice_line(
    subscription: Obj,
    item: Obj,
    amount: int,
    description: str,
    period: tuple[int, int],
    *,
    proration: bool = False,
) -> Obj:
    """A line of a subscription invoice for one item (its `invoice` is set when billed)."""
    price = item["price"]
    return {
        "id": new_id("il_1"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
                "subscription_item": item["id"],
            },
        },
        "period": {"start": period[0], "end": period[1]},
        "pricing": {
            "type": "price_details",
            "price_details": {"price": price["id"], "product": price["product"]},
            "unit_amount_decimal": price["unit_amount_decimal"],
        },
        "quantity": item["quantity"],
        "subtotal": amount,
        "taxes": [],
    }


def open_invoice(
    call: Call,
    subscription: Obj,
    reason: str,
    start: int,
    end: int,
    at: int,
    *,
    items: bool = True,
) -> Obj:
    """A finalized invoice for one period of the subscription's items (nothing during a
    trial, as Stripe makes at each renewal), with the prorations waiting for it; with
    `items=False`, the prorations alone (`proration_behavior=always_invoice`). A credit
    balance of the customer pays what it can."""
    customer = call.store.get(call.account, "customer", subscription["customer"])
    trialing = subscription["status"] == "trialing" and (subscription["trial_end"] or 0) > at
    invoice_id = new_id("in_1")
    lines = call.store.prorations.pop(subscription["id"], [])
    for item in subscription["items"]["data"] if items else []:
        amount = 0 if trialing else item["price"]["unit_amount"] * item["quantity"]
        name = f"{item['quantity']} x {item['price']['product']}" + (" (trial)" if trialing else "")
        lines.append(invoice_line(subscription, item, amount, name, (start, end)))
    for line in lines:
        line["invoice"] = invoice_id
    total = sum(line["amount"] for line in lines)
    # A credit balance (negative) pays first; what is left of a negative total becomes one.
    balance = customer["balance"]
    due = max(total + balance, 0)
    customer["balance"] = min(total + balance, 0)
    number = customer["next_invoice_sequence"]
    customer["next_invoice_sequence"] = number + 1
    invoice: Obj = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Tessera stand-in",
        "amount_due": due,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": due,
        "amount_shipping": 0,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_reason": reason,
        "collection_method": "charge_automatically",
        "created": at,
        "currency": subscription["currency"],
        "customer": customer["id"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": at,
        "ending_balance": customer["balance"],
        "hosted_invoice_url": f"{call.settings.public_url}/_standin/invoices/{invoice_id}",
        "invoice_pdf": f"{call.settings.public_url}/_standin/invoices/{invoice_id}/pdf",
        "issuer": {"type": "self"},
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": at,
        "number": f"{customer['invoice_prefix']}-{number:04d}",
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
        },
        "period_end": end,
        "period_start": start,
        "starting_balance": balance,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": total,
        "test_clock": customer["test_clock"],
        "total": total,
        "webhooks_delivered_at": at,
    }
    call.store.add(call.account, invoice)
    call.store.emit(call.account, "invoice.created", invoice, created=at)
    before = snapshot(invoice)
    invoice["status"] = "open"
    invoice["status_transitions"]["finalized_at"] = at
    call.store.emit(
        call.account, "invoice.finalized", invoice, previous=changed(before, invoice), created=at
    )
    return invoice


def _application_fee(call: Call, invoice: Obj) -> int | None:
    """The subscription's `application_fee_percent` of what the invoice charges."""
    subscription = call.store.find(call.account, subscription_of(invoice) or "")
    percent = subscription["application_fee_percent"] if subscription else None
    return round(invoice["amount_due"] * percent / 100) if percent else None


def attempt_payment(call: Call, invoice: Obj, at: int) -> bool:
    """Charge the customer for an open invoice: paid unless the customer's payment method
    declines; a decline schedules the next attempt (None after the last)."""
    before = snapshot(invoice)
    declined = invoice["amount_due"] > 0 and invoice["customer"] in call.store.failing_customers
    if not declined:
        if invoice["amount_due"] > 0:
            intent = pay(
                call,
                amount=invoice["amount_due"],
                currency=invoice["currency"],
                customer=invoice["customer"],
                email=invoice["customer_email"],
                metadata={},
                at=at,
                application_fee_amount=_application_fee(call, invoice),
                description=DESCRIPTIONS.get(invoice["billing_reason"]),
            )
            record_invoice_payment(call, invoice, intent, at)
        invoice.update(
            status="paid",
            attempted=True,
            attempt_count=invoice["attempt_count"] + (1 if invoice["amount_due"] else 0),
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            next_payment_attempt=None,
        )
        invoice["status_transitions"]["paid_at"] = at
        previous = changed(before, invoice)
        call.store.emit(call.account, "invoice.paid", invoice, previous=previous, created=at)
        call.store.emit(
            call.account, "invoice.payment_succeeded", invoice, previous=previous, created=at
        )
        return True
    count = invoice["attempt_count"] + 1
    retries = call.settings.payment_retry_days
    invoice.update(
        attempted=True,
        attempt_count=count,
        next_payment_attempt=at + retries[count - 1] * DAY if count <= len(retries) else None,
    )
    call.store.emit(
        call.account,
        "invoice.payment_failed",
        invoice,
        previous=changed(before, invoice),
        created=at,
    )
    return False


def retrieve_invoice(call: Call) -> Obj:
    return call.store.get(call.account, "invoice", call.path["id"])


def list_invoices(call: Call) -> Obj:
    params = call.params
    customer = params.text("customer")
    subscription = params.text("subscription")
    status = params.choice("status", ("draft", "open", "paid", "uncollectible", "void"))
    return page(
        call.store.all(call.account, "invoice"),
        params,
        "/v1/invoices",
        filtered=lambda i: (
            (customer is None or i["customer"] == customer)
            and (subscription is None or subscription_of(i) == subscription)
            and (status is None or i["status"] == status)
        ),
    )


def subscription_of(invoice: Obj) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription: str | None = details.get("subscription")
    return subscription


def pay_invoice(call: Call) -> Obj:
    """`POST /v1/invoices/{id}/pay`: try the open invoice's payment now."""
    from tessera.devstack.stripe_standin.subscriptions import settle

    invoice = retrieve_invoice(call)
    if invoice["status"] != "open":
        raise StripeApiError(400, "Invoice is already paid", code="invoice_not_open")
    at = call.now(invoice["customer"])
    paid = attempt_payment(call, invoice, at)
    settle(call, invoice, paid, at)
    if not paid:
        raise StripeApiError(
            402,
            "Your card was declined.",
            type="card_error",
            code="card_declined",
            keep=True,
        )
    return invoice


def invoice_page(call: Call) -> Response:
    """The page an invoice's `hosted_invoice_url` (and `invoice_pdf`) opens."""
    _, invoice = call.store.locate("invoice", call.path["id"])
    lines = "".join(
        f"<li>{html.escape(line['description'])}: {line['amount'] / 100:.2f}</li>"
        for line in invoice["lines"]["data"]
    )
    return HTMLResponse(
        f"<!doctype html><title>Invoice {html.escape(invoice['number'])}</title>"
        f"<h1>Invoice {html.escape(invoice['number'])} ({html.escape(invoice['status'])})</h1>"
        f"<ul>{lines}</ul><p>Total {invoice['total'] / 100:.2f} "
        f"{invoice['currency'].upper()}, paid {invoice['amount_paid'] / 100:.2f}</p>"
    )


ENDPOINTS = [
    Endpoint(
        "GET", "/v1/invoices", list_invoices, ("customer", "subscription", "status", "created")
    ),
    Endpoint("GET", "/v1/invoices/{id}", retrieve_invoice),
    Endpoint("POST", "/v1/invoices/{id}/pay", pay_invoice, ("payment_method", "off_session")),
    Endpoint("GET", "/_standin/invoices/{id}", invoice_page, api=False),
    Endpoint("GET", "/_standin/invoices/{id}/pdf", invoice_page, api=False),
]

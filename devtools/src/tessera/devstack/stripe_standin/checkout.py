"""Checkout Sessions (`/v1/checkout/sessions`, modes `payment` and `subscription`), the
hosted page a session's `url` opens, and the control endpoint that completes a session as
a paying customer would: customer, payment (or subscription and first invoice), events."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse, RedirectResponse, Response

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.catalog import new_price, new_product
from tessera.devstack.stripe_standin.customers import new_customer
from tessera.devstack.stripe_standin.payments import pay
from tessera.devstack.stripe_standin.store import PLATFORM, snapshot
from tessera.devstack.stripe_standin.subscriptions import fee_percent, new_subscription
from tessera.devstack.stripe_standin.wire import (
    Obj,
    Params,
    StripeApiError,
    check_known,
    invalid,
    new_id,
    page,
)

DAY = 86400
SUBSCRIPTION_DATA = (
    "trial_period_days", "trial_end", "metadata", "application_fee_percent", "description",
    "billing_cycle_anchor", "default_tax_rates", "on_behalf_of", "transfer_data",
    "trial_settings", "proration_behavior", "invoice_settings", "billing_mode",
)  # fmt: skip
PAYMENT_INTENT_DATA = (
    "metadata", "application_fee_amount", "capture_method", "description", "receipt_email",
    "setup_future_usage", "statement_descriptor", "statement_descriptor_suffix",
    "transfer_data", "transfer_group", "on_behalf_of", "shipping",
)  # fmt: skip
CREATE = (
    "mode", "line_items", "customer", "customer_email", "customer_creation", "metadata",
    "client_reference_id", "success_url", "cancel_url", "subscription_data",
    "payment_intent_data", "allow_promotion_codes", "expires_at", "payment_method_types",
    "locale", "ui_mode", "billing_address_collection", "automatic_tax", "return_url",
    "consent_collection", "custom_text", "discounts", "phone_number_collection",
    "submit_type", "invoice_creation", "tax_id_collection", "currency",
)  # fmt: skip


def _line_price(call: Call, item: Params) -> Obj:
    price_id = item.text("price")
    data = item.sub("price_data")
    if (price_id is None) == (data is None):
        raise invalid(item.name("price"), "You must specify either `price` or `price_data`.")
    if price_id is not None:
        price = call.store.get(call.account, "price", price_id, item.name("price"))
        if not price["active"]:
            raise invalid(item.name("price"), f"The price `{price_id}` is not active.")
        return price
    assert data is not None
    product_id = data.text("product")
    product_data = data.sub("product_data")
    if product_data is not None:
        product_id = new_product(call, product_data)["id"]
    if product_id is None:
        raise invalid(
            data.name("product"),
            f"Missing required param: {data.name('product')}.",
            "parameter_missing",
        )
    call.store.get(call.account, "product", product_id, data.name("product"))
    # An inline price exists only for this session (Stripe makes it inactive).
    return new_price(call, data, product_id, active=False)


def _line_items(call: Call, params: Params, mode: str) -> list[Obj]:
    entries = params.items("line_items")
    if not entries:
        raise invalid("line_items", "Missing required param: line_items.", "parameter_missing")
    lines = []
    for entry in entries:
        price = _line_price(call, entry)
        quantity = entry.integer("quantity", required=True, minimum=1)
        assert quantity is not None
        if mode == "payment" and price["recurring"]:
            raise invalid(
                entry.name("price"),
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
            )
        product = call.store.objects.get(price["product"]) or {}
        amount = price["unit_amount"] * quantity
        lines.append(
            {
                "id": new_id("li_1"),
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price["currency"],
                "description": product.get("name"),
                "price": snapshot(price),
                "quantity": quantity,
            }
        )
    if mode == "subscription" and not any(line["price"]["recurring"] for line in lines):
        raise invalid(
            "line_items",
            "You must provide at least one recurring price in `subscription` mode when using prices.",
        )
    if len({line["currency"] for line in lines}) != 1:
        raise invalid("line_items", "All line items must use the same currency.")
    return lines


def create_session(call: Call) -> Obj:
    params = call.params
    mode = params.choice("mode", ("payment", "subscription"), required=True)
    assert mode is not None
    customer_id = params.text("customer")
    if customer_id is not None:
        call.store.get(call.account, "customer", customer_id, "customer")
        if params.has("customer_email"):
            raise invalid(
                "customer_email",
                "You may only specify one of these parameters: customer, customer_email.",
            )
    creation = params.choice("customer_creation", ("always", "if_required"))
    if creation is not None and mode != "payment":
        raise invalid(
            "customer_creation", "`customer_creation` can only be used in `payment` mode."
        )
    subscription_data = params.sub("subscription_data")
    if subscription_data is not None and mode != "subscription":
        raise invalid(
            "subscription_data", "`subscription_data` can only be used in `subscription` mode."
        )
    payment_data = params.sub("payment_intent_data")
    if payment_data is not None and mode != "payment":
        raise invalid(
            "payment_intent_data", "`payment_intent_data` can only be used in `payment` mode."
        )
    if subscription_data is not None:
        check_known(subscription_data, SUBSCRIPTION_DATA)
        fee_percent(call, subscription_data)
        subscription_data.integer("trial_period_days", minimum=1)
        trial_end = subscription_data.integer("trial_end")
        if trial_end is not None and trial_end <= call.now(customer_id):
            raise invalid(
                subscription_data.name("trial_end"), "The trial end must be in the future."
            )
        subscription_data.metadata()
    if payment_data is not None:
        check_known(payment_data, PAYMENT_INTENT_DATA)
        payment_data.metadata()
    if (
        payment_data is not None
        and payment_data.integer("application_fee_amount") is not None
        and call.account == PLATFORM
    ):
        raise invalid(
            "payment_intent_data[application_fee_amount]",
            "Can only apply an application_fee_amount when the PaymentIntent is created on behalf of another account (using an OAuth key, the Stripe-Account header, or the destination parameter).",
        )
    lines = _line_items(call, params, mode)
    at = call.now(customer_id)
    total = sum(line["amount_total"] for line in lines)
    session_id = new_id("cs_test_a1", 56)
    session: Obj = {
        "id": session_id,
        "object": "checkout.session",
        "allow_promotion_codes": params.boolean("allow_promotion_codes"),
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": params.text("billing_address_collection"),
        "cancel_url": params.text("cancel_url"),
        "client_reference_id": params.text("client_reference_id"),
        "client_secret": None,
        "created": at,
        "currency": lines[0]["currency"],
        "customer": customer_id,
        "customer_creation": creation or ("if_required" if mode == "payment" else None),
        "customer_details": None,
        "customer_email": params.text("customer_email"),
        "expires_at": params.integer("expires_at") or at + DAY,
        "invoice": None,
        "livemode": False,
        "locale": params.text("locale"),
        "metadata": params.metadata(),
        "mode": mode,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_types": params.strings("payment_method_types") or ["card"],
        "payment_status": "unpaid",
        "status": "open",
        "submit_type": params.text("submit_type"),
        "subscription": None,
        "success_url": params.text("success_url"),
        "ui_mode": params.text("ui_mode") or "hosted",
        "url": f"{call.settings.public_url}/_standin/checkout/{session_id}",
    }
    call.store.add(call.account, session)
    call.store.checkout[session_id] = {
        "line_items": lines,
        "subscription_data": subscription_data.data if subscription_data else {},
        "payment_intent_data": payment_data.data if payment_data else {},
    }
    return _with_line_items(call, session)


def _with_line_items(call: Call, session: Obj) -> Obj:
    if "line_items" not in call.params.strings("expand"):
        return session
    return {**session, "line_items": _lines_list(call, session)}


def _lines_list(call: Call, session: Obj) -> Obj:
    return {
        "object": "list",
        "data": call.store.checkout[session["id"]]["line_items"],
        "has_more": False,
        "url": f"/v1/checkout/sessions/{session['id']}/line_items",
    }


def retrieve_session(call: Call) -> Obj:
    return _with_line_items(call, call.store.get(call.account, "checkout.session", call.path["id"]))


def session_line_items(call: Call) -> Obj:
    session = call.store.get(call.account, "checkout.session", call.path["id"])
    return page(
        call.store.checkout[session["id"]]["line_items"],
        call.params,
        _lines_list(call, session)["url"],
    )


def list_sessions(call: Call) -> Obj:
    params = call.params
    filters = {
        key: params.text(key) for key in ("customer", "payment_intent", "subscription", "status")
    }
    return page(
        call.store.all(call.account, "checkout.session"),
        params,
        "/v1/checkout/sessions",
        filtered=lambda s: all(v is None or s[k] == v for k, v in filters.items()),
    )


def expire_session(call: Call) -> Obj:
    session = call.store.get(call.account, "checkout.session", call.path["id"])
    if session["status"] != "open":
        raise StripeApiError(
            400,
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "{session["status"]}".',
        )
    session["status"] = "expired"
    call.store.emit(call.account, "checkout.session.expired", session)
    return session


def _payment(call: Call, session: Obj, customer: Obj | None, email: str, at: int) -> None:
    """The PaymentIntent and its Charge, both succeeded, for a payment-mode session."""
    data = Params(call.store.checkout[session["id"]]["payment_intent_data"], "payment_intent_data")
    intent = pay(
        call,
        amount=session["amount_total"],
        currency=session["currency"],
        customer=customer["id"] if customer else None,
        email=email,
        metadata=data.metadata(),
        at=at,
        application_fee_amount=data.integer("application_fee_amount"),
    )
    session["payment_intent"] = intent["id"]


def _decline(call: Call, session: Obj, email: str, at: int) -> None:
    intent_id = new_id("pi_3")
    error = {
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
        "type": "card_error",
    }
    intent: Obj = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": session["amount_total"],
        "created": at,
        "currency": session["currency"],
        "customer": session["customer"],
        "last_payment_error": error,
        "livemode": False,
        "metadata": {},
        "receipt_email": email,
        "status": "requires_payment_method",
    }
    call.store.add(call.account, intent)
    call.store.emit(call.account, "payment_intent.payment_failed", intent, created=at)
    raise StripeApiError(
        402, "Your card was declined.", type="card_error", code="card_declined", keep=True
    )


def complete(call: Call, session: Obj, email: str | None, declined: bool) -> Obj:
    """What Stripe does when the customer pays on the hosted page."""
    if session["status"] != "open":
        raise StripeApiError(
            400, f"This Checkout Session is {session['status']}.", code="checkout_session_not_open"
        )
    customer = call.store.find(call.account, session["customer"] or "")
    email = (
        email
        or session["customer_email"]
        or (customer or {}).get("email")
        or "customer@example.com"
    )
    at = call.now(session["customer"])
    # A customer whose payment method was marked failing pays with it here too.
    if declined or (customer is not None and customer["id"] in call.store.failing_customers):
        _decline(call, session, email, at)
    extra = call.store.checkout[session["id"]]
    wants_customer = session["mode"] == "subscription" or session["customer_creation"] == "always"
    if customer is None and wants_customer:
        customer = new_customer(call, Params({"email": email}))
        session["customer"] = customer["id"]
    session["customer_details"] = {
        "address": None,
        "email": email,
        "name": None,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }
    if session["mode"] == "payment":
        _payment(call, session, customer, email, at)
        session["payment_status"] = "paid"
    else:
        assert customer is not None
        data = Params(extra["subscription_data"], "subscription_data")
        days = data.integer("trial_period_days")
        trial_end = at + days * DAY if days else data.integer("trial_end")
        lines = [line for line in extra["line_items"] if line["price"]["recurring"]]
        subscription = new_subscription(
            call,
            customer["id"],
            [(line["price"], line["quantity"]) for line in lines],
            trial_end=trial_end,
            metadata=data.metadata(),
            application_fee_percent=fee_percent(call, data),
        )
        session["subscription"] = subscription["id"]
        session["invoice"] = subscription["latest_invoice"]
        invoice = call.store.objects[subscription["latest_invoice"]]
        session["payment_status"] = "paid" if invoice["amount_due"] else "no_payment_required"
    session["status"] = "complete"
    call.store.emit(call.account, "checkout.session.completed", session, created=at)
    return session


def _located(call: Call) -> tuple[Call, Obj]:
    account, session = call.store.locate("checkout.session", call.path["id"])
    return call.at(account), session


def complete_control(call: Call) -> Obj:
    """Control: `POST /_standin/checkout/sessions/{id}/complete` (`email`, `declined`)."""
    located, session = _located(call)
    return complete(
        located, session, call.params.text("email"), bool(call.params.boolean("declined"))
    )


def hosted_page(call: Call) -> Response:
    _, session = _located(call)
    lines = call.store.checkout[session["id"]]["line_items"]
    rows = "".join(
        f"<li>{html.escape(str(line['description']))} x {line['quantity']}: "
        f"{line['amount_total'] / 100:.2f} {line['currency'].upper()}</li>"
        for line in lines
    )
    email = html.escape(session["customer_email"] or "")
    body = (
        "<!doctype html><title>Stripe stand-in checkout</title>"
        f"<h1>Checkout ({html.escape(session['mode'])})</h1><ul>{rows}</ul>"
        f"<p>Total {session['amount_total'] / 100:.2f} {session['currency'].upper()} "
        f"— status {html.escape(session['status'])}</p>"
        f'<form method="post" action="/_standin/checkout/{session["id"]}/pay">'
        f'<label>Email <input name="email" type="email" value="{email}"></label>'
        '<button name="declined" value="false">Pay</button>'
        '<button name="declined" value="true">Pay with a declined card</button></form>'
    )
    return HTMLResponse(body)


def pay_page(call: Call) -> Response:
    located, session = _located(call)
    try:
        complete(
            located,
            session,
            call.params.text("email") or None,
            bool(call.params.boolean("declined")),
        )
    except StripeApiError as error:
        return HTMLResponse(f"<p>{html.escape(error.message)}</p>", status_code=error.status)
    target = (session["success_url"] or call.settings.public_url).replace(
        "{CHECKOUT_SESSION_ID}", session["id"]
    )
    return RedirectResponse(target, status_code=303)


def receipt_page(call: Call) -> Response:
    """The page a charge's `receipt_url` opens."""
    _, charge = call.store.locate("charge", call.path["id"])
    return HTMLResponse(
        f"<!doctype html><title>Receipt</title><h1>Receipt for {html.escape(charge['id'])}</h1>"
        f"<p>{charge['amount'] / 100:.2f} {charge['currency'].upper()} paid by "
        f"{html.escape(charge['receipt_email'] or 'a customer')}</p>"
    )


ENDPOINTS = [
    Endpoint("POST", "/v1/checkout/sessions", create_session, CREATE),
    Endpoint(
        "GET",
        "/v1/checkout/sessions",
        list_sessions,
        ("customer", "payment_intent", "subscription", "status", "created"),
    ),
    Endpoint("GET", "/v1/checkout/sessions/{id}", retrieve_session),
    Endpoint("GET", "/v1/checkout/sessions/{id}/line_items", session_line_items),
    Endpoint("POST", "/v1/checkout/sessions/{id}/expire", expire_session),
    Endpoint("POST", "/_standin/checkout/sessions/{id}/complete", complete_control, api=False),
    Endpoint("GET", "/_standin/checkout/{id}", hosted_page, api=False),
    Endpoint("POST", "/_standin/checkout/{id}/pay", pay_page, api=False),
    Endpoint("GET", "/_standin/receipts/{id}", receipt_page, api=False),
]

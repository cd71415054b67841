"""Customers: `/v1/customers`; and the control endpoint that makes a customer's payment
method decline (`POST /_standin/customers/{id}/payment_method`)."""

from __future__ import annotations

import time

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.store import snapshot
from tessera.devstack.stripe_standin.wire import Obj, Params, StripeApiError, new_id, page

FIELDS = ("email", "name", "description", "phone", "metadata", "payment_method", "invoice_settings")


def _apply(params: Params, customer: Obj) -> None:
    for key in ("email", "name", "description", "phone"):
        if params.has(key):
            customer[key] = params.text(key) or None
    customer["metadata"] = params.metadata(customer["metadata"])
    settings = params.sub("invoice_settings")
    if settings is not None and settings.has("default_payment_method"):
        method = settings.text("default_payment_method") or None
        customer["invoice_settings"]["default_payment_method"] = method


def new_clock(call: Call, frozen_time: int, name: str | None) -> Obj:
    """A test clock (`/v1/test_helpers/test_clocks`), ready, at `frozen_time`."""
    now = int(time.time())
    clock: Obj = {
        "id": new_id("clock_1"),
        "object": "test_helpers.test_clock",
        "created": now,
        "deletes_after": now + 30 * 86400,
        "frozen_time": frozen_time,
        "livemode": False,
        "name": name,
        "status": "ready",
        "status_details": {},
    }
    return call.store.add(call.account, clock)


def new_customer(call: Call, params: Params, *, test_clock: str | None = None) -> Obj:
    now = call.store.now(call.account)
    if test_clock is None and call.settings.clock_per_customer:
        test_clock = new_clock(call, now, params.text("email"))["id"]
    if test_clock is not None:
        now = int(
            call.store.get(call.account, "test_helpers.test_clock", test_clock, "test_clock")[
                "frozen_time"
            ]
        )
    customer: Obj = {
        "id": new_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": new_id("", 8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": test_clock,
    }
    _apply(params, customer)
    call.store.add(call.account, customer)
    call.store.emit(call.account, "customer.created", customer, created=now)
    return customer


def create_customer(call: Call) -> Obj:
    return new_customer(call, call.params, test_clock=call.params.text("test_clock"))


def retrieve_customer(call: Call) -> Obj:
    customer = call.store.find(call.account, call.path["id"])
    if customer is not None and customer["object"] == "customer":
        return customer
    deleted = call.store.deleted.get(call.path["id"])
    if deleted is not None and call.store.account_of.get(call.path["id"]) == call.account:
        return {"id": deleted["id"], "object": "customer", "deleted": True}
    return call.store.get(call.account, "customer", call.path["id"])


def update_customer(call: Call) -> Obj:
    customer = call.store.get(call.account, "customer", call.path["id"])
    before = snapshot(customer)
    _apply(call.params, customer)
    call.store.emit_update(
        call.account, "customer.updated", customer, before, call.now(customer["id"])
    )
    return customer


def delete_customer(call: Call) -> Obj:
    customer = call.store.get(call.account, "customer", call.path["id"])
    call.store.remove(customer["id"])
    call.store.emit(call.account, "customer.deleted", customer)
    return {"id": customer["id"], "object": "customer", "deleted": True}


def list_customers(call: Call) -> Obj:
    email = call.params.text("email")
    clock = call.params.text("test_clock")
    return page(
        call.store.all(call.account, "customer"),
        call.params,
        "/v1/customers",
        filtered=lambda c: (
            (email is None or c["email"] == email) and (clock is None or c["test_clock"] == clock)
        ),
    )


def payment_method(call: Call) -> Obj:
    """Control: `failing=true` makes this customer's payments decline (renewals then fail,
    as Stripe's 4000000000000341 card does once attached); `failing=false` fixes it."""
    customer_id = call.path["id"]
    account = call.store.account_of.get(customer_id)
    found = call.store.objects.get(customer_id)
    if account is None or found is None or found["object"] != "customer":
        raise StripeApiError(404, f"No such customer: '{customer_id}'", code="resource_missing")
    failing = call.params.boolean("failing")
    if failing is None:
        raise StripeApiError(
            400, "Missing required param: failing.", code="parameter_missing", param="failing"
        )
    if failing:
        call.store.failing_customers.add(customer_id)
    else:
        call.store.failing_customers.discard(customer_id)
    return {"customer": customer_id, "failing": failing}


ENDPOINTS = [
    Endpoint("POST", "/v1/customers", create_customer, (*FIELDS, "test_clock")),
    Endpoint("GET", "/v1/customers", list_customers, ("email", "test_clock", "created")),
    Endpoint("GET", "/v1/customers/{id}", retrieve_customer),
    Endpoint("POST", "/v1/customers/{id}", update_customer, FIELDS),
    Endpoint("DELETE", "/v1/customers/{id}", delete_customer),
    Endpoint("POST", "/_standin/customers/{id}/payment_method", payment_method, api=False),
]

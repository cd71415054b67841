"""The billing portal: `POST /v1/billing_portal/sessions` returns a URL to a page where the
customer cancels a subscription at period end (or takes that back) and switches to another
price of the same product, prorated (`create_prorations`, the portal's usual setting)."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse, RedirectResponse, Response

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.subscriptions import update_subscription
from tessera.devstack.stripe_standin.wire import Obj, Params, invalid, new_id


def create_session(call: Call) -> Obj:
    params = call.params
    customer = call.store.get(call.account, "customer", params.required("customer"), "customer")
    session_id = new_id("bps_1")
    session: Obj = {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": "bpc_standin",
        "created": call.now(customer["id"]),
        "customer": customer["id"],
        "flow": None,
        "livemode": False,
        "locale": params.text("locale"),
        "on_behalf_of": params.text("on_behalf_of"),
        "return_url": params.text("return_url"),
        "url": f"{call.settings.public_url}/_standin/billing_portal/{session_id}",
    }
    return call.store.add(call.account, session)


def _alternatives(call: Call, account: str, subscription: Obj) -> list[Obj]:
    """The other active recurring prices of the subscription's product."""
    item = subscription["items"]["data"][0]
    return [
        price
        for price in call.store.all(account, "price")
        if price["product"] == item["price"]["product"]
        and price["active"]
        and price["recurring"]
        and price["id"] != item["price"]["id"]
    ]


def _form(session: Obj, action: str, subscription: Obj, label: str, price: str = "") -> str:
    hidden = f'<input type="hidden" name="price" value="{html.escape(price)}">' if price else ""
    return (
        f'<form method="post" action="/_standin/billing_portal/{session["id"]}/{action}">'
        f'<input type="hidden" name="subscription" value="{html.escape(subscription["id"])}">'
        f"{hidden}<button>{html.escape(label)}</button></form>"
    )


def _row(call: Call, account: str, session: Obj, subscription: Obj) -> str:
    item = subscription["items"]["data"][0]
    price = item["price"]
    summary = (
        f"{subscription['id']}: {subscription['status']}, {price['unit_amount'] / 100:.2f} "
        f"{price['currency'].upper()} a {price['recurring']['interval']}"
    )
    forms = []
    if subscription["status"] != "canceled":
        if subscription["cancel_at_period_end"]:
            forms.append(_form(session, "renew", subscription, "Don't cancel"))
        else:
            forms.append(_form(session, "cancel", subscription, "Cancel at period end"))
        for other in _alternatives(call, account, subscription):
            label = f"Switch to {other['unit_amount'] / 100:.2f} a {other['recurring']['interval']}"
            forms.append(_form(session, "switch", subscription, label, other["id"]))
    return f"<li>{html.escape(summary)}{''.join(forms)}</li>"


def page(call: Call) -> Response:
    account, session = call.store.locate("billing_portal.session", call.path["id"])
    rows = "".join(
        _row(call, account, session, s)
        for s in call.store.all(account, "subscription")
        if s["customer"] == session["customer"]
    )
    back = html.escape(session["return_url"] or "/")
    return HTMLResponse(
        f'<!doctype html><title>Billing portal</title><ul>{rows}</ul><a href="{back}">Return</a>'
    )


def _change(call: Call, changes: Obj) -> Response:
    """Apply the customer's choice as the API's subscription update would."""
    account, session = call.store.locate("billing_portal.session", call.path["id"])
    subscription = call.store.get(account, "subscription", call.params.required("subscription"))
    if subscription["customer"] != session["customer"]:
        raise invalid("subscription", "This subscription is not the customer's.")
    update = Call(
        call.store, call.settings, account, Params(changes), {"id": subscription["id"]}, call.url
    )
    update_subscription(update)
    return RedirectResponse(f"/_standin/billing_portal/{session['id']}", status_code=303)


def cancel(call: Call) -> Response:
    return _change(
        call,
        {
            "cancel_at_period_end": "true",
            "cancellation_details": {"comment": "Canceled in the billing portal"},
        },
    )


def renew(call: Call) -> Response:
    return _change(call, {"cancel_at_period_end": "false"})


def switch(call: Call) -> Response:
    _, session = call.store.locate("billing_portal.session", call.path["id"])
    subscription_id = call.params.required("subscription")
    price = call.params.required("price")
    account = call.store.account_of[session["id"]]
    subscription = call.store.get(account, "subscription", subscription_id)
    if price not in {p["id"] for p in _alternatives(call, account, subscription)}:
        raise invalid("price", "The portal offers no switch to this price.")
    item = subscription["items"]["data"][0]["id"]
    return _change(
        call,
        {"items": [{"id": item, "price": price}], "proration_behavior": "create_prorations"},
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/billing_portal/sessions",
        create_session,
        ("customer", "return_url", "configuration", "flow_data", "locale", "on_behalf_of"),
    ),
    Endpoint("GET", "/_standin/billing_portal/{id}", page, api=False),
    Endpoint("POST", "/_standin/billing_portal/{id}/cancel", cancel, api=False),
    Endpoint("POST", "/_standin/billing_portal/{id}/renew", renew, api=False),
    Endpoint("POST", "/_standin/billing_portal/{id}/switch", switch, api=False),
]

"""Subscriptions: `/v1/subscriptions` and what moves them: the first invoice, renewals at
each period's end (trial or paid), failed payments and their retries, cancellation."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

from tessera.devstack.stripe_standin.api import Call, Endpoint
from tessera.devstack.stripe_standin.invoices import (
    DAY,
    attempt_payment,
    invoice_line,
    open_invoice,
    subscription_of,
)
from tessera.devstack.stripe_standin.store import PLATFORM, snapshot
from tessera.devstack.stripe_standin.wire import (
    Obj,
    Params,
    StripeApiError,
    invalid,
    new_id,
    page,
)

STATUSES = (
    "active", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired",
    "trialing", "paused",
)  # fmt: skip
LIVE = ("trialing", "active", "past_due")
TRIAL_WARNING = 3 * DAY  # customer.subscription.trial_will_end comes 3 days before
INCOMPLETE_FOR = 23 * 3600  # then an unpaid first invoice makes it incomplete_expired


def add_interval(start: int, interval: str, count: int) -> int:
    """`start` plus `count` intervals, months clamped to the month's last day (Jan 31 + 1
    month = Feb 28), as Stripe bills."""
    moment = datetime.fromtimestamp(start, UTC)
    if interval in ("day", "week"):
        days = count * (7 if interval == "week" else 1)
        return int((moment + timedelta(days=days)).timestamp())
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def period_end(subscription: Obj, start: int) -> int:
    """The first billing date after `start`: whole intervals from the billing cycle anchor
    (so a Jan 31 anchor bills Feb 28, then Mar 31)."""
    recurring = subscription["items"]["data"][0]["price"]["recurring"]
    anchor = subscription["billing_cycle_anchor"]
    count = 1
    while (
        end := add_interval(anchor, recurring["interval"], count * recurring["interval_count"])
    ) <= start:
        count += 1
    return end


def _item(
    subscription_id: str, price: Obj, quantity: int, at: int, metadata: dict[str, str]
) -> Obj:
    return {
        "id": new_id("si_", 14),
        "object": "subscription_item",
        "created": at,
        "current_period_end": at,
        "current_period_start": at,
        "discounts": [],
        "metadata": metadata,
        "price": snapshot(price),
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def _set_period(subscription: Obj, start: int, end: int) -> None:
    for item in subscription["items"]["data"]:
        item["current_period_start"] = start
        item["current_period_end"] = end


def current_period_end(subscription: Obj) -> int:
    end: int = subscription["items"]["data"][0]["current_period_end"]
    return end


def recurring_price(call: Call, price_id: str, param: str) -> Obj:
    price = call.store.get(call.account, "price", price_id, param)
    if price["recurring"] is None:
        raise invalid(
            param,
            f"The price specified ({price_id}) is set to `type=one_time` but this field "
            "only accepts prices with `type=recurring`.",
        )
    if not price["active"]:
        raise invalid(param, f"The price specified ({price_id}) is inactive.")
    return price


def new_subscription(
    call: Call,
    customer_id: str,
    items: list[tuple[Obj, int]],
    *,
    trial_end: int | None,
    metadata: dict[str, str],
    application_fee_percent: float | None = None,
) -> Obj:
    """A subscription that starts now (the customer's clock): a trial period first if
    asked, else its first paid period; its first invoice is paid or failed at once."""
    customer = call.store.get(call.account, "customer", customer_id, "customer")
    at = call.now(customer_id)
    currencies = {price["currency"] for price, _ in items}
    if len(currencies) != 1:
        raise invalid("items", "All prices on a subscription must have the same currency.")
    subscription_id = new_id("sub_1")
    subscription: Obj = {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": application_fee_percent,
        "automatic_tax": {"enabled": False, "disabled_reason": None, "liability": None},
        "billing_cycle_anchor": at,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic"},
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": at,
        "currency": currencies.pop(),
        "customer": customer["id"],
        "days_until_due": None,
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": [_item(subscription_id, p, q, at, {}) for p, q in items],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": at,
        "status": "trialing" if trial_end else "incomplete",
        "test_clock": customer["test_clock"],
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": at if trial_end else None,
    }
    end = trial_end or period_end(subscription, at)
    if trial_end is not None:
        subscription["billing_cycle_anchor"] = trial_end
    _set_period(subscription, at, end)
    call.store.add(call.account, subscription)
    call.store.emit(call.account, "customer.subscription.created", subscription, created=at)
    invoice = open_invoice(call, subscription, "subscription_create", at, end, at)
    subscription["latest_invoice"] = invoice["id"]
    settle(call, invoice, attempt_payment(call, invoice, at), at)
    return subscription


def settle(call: Call, invoice: Obj, paid: bool, at: int) -> None:
    """The subscription's status after a payment attempt on its invoice: active once paid;
    incomplete if its first invoice failed; past_due while retries remain, then canceled
    or unpaid (the stand-in's `after_retries`)."""
    subscription_id = subscription_of(invoice)
    if subscription_id is None:
        return
    subscription = call.store.get(call.account, "subscription", subscription_id)
    if subscription["status"] == "canceled":
        return
    before = snapshot(subscription)
    trialing = subscription["status"] == "trialing" and (subscription["trial_end"] or 0) > at
    if paid:
        subscription["status"] = "trialing" if trialing else "active"
    elif invoice["billing_reason"] == "subscription_create":
        subscription["status"] = "incomplete"
    elif invoice["next_payment_attempt"] is not None:
        subscription["status"] = "past_due"
    elif call.settings.after_retries == "unpaid":
        subscription["status"] = "unpaid"
    else:
        cancel(call, subscription, at, "payment_failed")
        return
    notify_updated(call, subscription, before, at)


def notify_updated(call: Call, subscription: Obj, before: Obj, at: int) -> None:
    call.store.emit_update(call.account, "customer.subscription.updated", subscription, before, at)


def cancel(call: Call, subscription: Obj, at: int, reason: str) -> None:
    subscription.update(status="canceled", canceled_at=at, ended_at=at)
    subscription["cancellation_details"]["reason"] = reason
    call.store.emit(call.account, "customer.subscription.deleted", subscription, created=at)


def expire(call: Call, subscription: Obj, at: int) -> None:
    """The first invoice went unpaid for 23 hours: it is voided and the subscription ends
    as `incomplete_expired`, a terminal status."""
    invoice = call.store.find(call.account, subscription["latest_invoice"] or "")
    if invoice is not None and invoice["status"] == "open":
        before = snapshot(invoice)
        invoice.update(status="void", next_payment_attempt=None, amount_remaining=0)
        invoice["status_transitions"]["voided_at"] = at
        call.store.emit_update(call.account, "invoice.voided", invoice, before, at)
    subscription.update(status="incomplete_expired", ended_at=at)
    call.store.emit(call.account, "customer.subscription.deleted", subscription, created=at)


def renew(call: Call, subscription: Obj, at: int) -> None:
    """The period (or trial) ends at `at`: cancel as asked, or bill the next period."""
    before = snapshot(subscription)
    cancel_at = subscription["cancel_at"]
    if subscription["cancel_at_period_end"] or (cancel_at is not None and cancel_at <= at):
        cancel(call, subscription, at, "cancellation_requested")
        return
    if subscription["status"] == "trialing":
        subscription["status"] = "active"
    bill_new_period(call, subscription, at, "subscription_cycle", before)


def bill_new_period(
    call: Call, subscription: Obj, at: int, reason: str, before: Obj | None = None
) -> None:
    """Start the period that begins at `at` and charge its invoice."""
    before = before or snapshot(subscription)
    end = period_end(subscription, at)
    _set_period(subscription, at, end)
    notify_updated(call, subscription, before, at)
    invoice = open_invoice(call, subscription, reason, at, end, at)
    subscription["latest_invoice"] = invoice["id"]
    settle(call, invoice, attempt_payment(call, invoice, at), at)


def next_moment(call: Call, subscription: Obj) -> tuple[int, str] | None:
    """When this subscription next changes by itself, and how: `warn` (trial_will_end),
    `retry` (a failed invoice's next attempt), `renew` (its period ends) or `expire` (an
    `incomplete` one whose first invoice was not paid within 23 hours)."""
    if subscription["status"] == "incomplete":
        return subscription["created"] + INCOMPLETE_FOR, "expire"
    if subscription["status"] not in LIVE:
        return None
    moments: list[tuple[int, str]] = [(current_period_end(subscription), "renew")]
    trial_end = subscription["trial_end"]
    if (
        subscription["status"] == "trialing"
        and trial_end is not None
        and subscription["id"] not in call.store.trial_warned
        and trial_end - TRIAL_WARNING > subscription["trial_start"]
    ):
        moments.append((trial_end - TRIAL_WARNING, "warn"))
    if subscription["cancel_at"] is not None:
        moments.append((subscription["cancel_at"], "renew"))
    latest = call.store.find(call.account, subscription["latest_invoice"] or "")
    if latest is not None and latest["status"] == "open" and latest["next_payment_attempt"]:
        moments.append((latest["next_payment_attempt"], "retry"))
    return min(moments)


def step(call: Call, subscription: Obj, action: str, at: int) -> None:
    if action == "warn":
        call.store.trial_warned.add(subscription["id"])
        call.store.emit(
            call.account, "customer.subscription.trial_will_end", subscription, created=at
        )
    elif action == "expire":
        expire(call, subscription, at)
    elif action == "retry":
        invoice = call.store.get(call.account, "invoice", subscription["latest_invoice"])
        settle(call, invoice, attempt_payment(call, invoice, at), at)
    else:
        renew(call, subscription, at)


def _items(call: Call, params: Params) -> list[tuple[Obj, int]]:
    items = params.items("items")
    if not items:
        raise invalid("items", "Missing required param: items.", "parameter_missing")
    return [
        (
            recurring_price(call, item.required("price"), item.name("price")),
            item.integer("quantity", minimum=1) or 1,
        )
        for item in items
    ]


def _trial_end(call: Call, params: Params, customer_id: str) -> int | None:
    at = call.now(customer_id)
    days = params.integer("trial_period_days")
    if days:
        return at + days * DAY
    value = params.text("trial_end")
    if value is None or value == "now":
        return None
    end = params.integer("trial_end")
    if end is None or end <= at:
        raise invalid(
            "trial_end", "Invalid timestamp: must be an integer Unix timestamp in the future."
        )
    return end


def fee_percent(call: Call, params: Params) -> float | None:
    """`application_fee_percent`: 0 to 100, only on a connected account (a direct charge)."""
    value = params.text("application_fee_percent")
    if value is None:
        return None
    try:
        percent = float(value)
    except ValueError:
        percent = -1.0
    if not 0 <= percent <= 100:
        raise invalid(
            params.name("application_fee_percent"),
            "Invalid application_fee_percent: must be between 0 and 100.",
            "parameter_invalid_float",
        )
    if call.account == PLATFORM:
        raise invalid(
            params.name("application_fee_percent"),
            "Can only apply an application_fee_percent when the request is made on behalf of another account (using an OAuth key, the Stripe-Account header, or the destination parameter).",
        )
    return percent


def create_subscription(call: Call) -> Obj:
    params = call.params
    customer_id = params.required("customer")
    subscription = new_subscription(
        call,
        customer_id,
        _items(call, params),
        trial_end=_trial_end(call, params, customer_id),
        metadata=params.metadata(),
        application_fee_percent=fee_percent(call, params),
    )
    if params.boolean("cancel_at_period_end"):
        subscription["cancel_at_period_end"] = True
        subscription["cancel_at"] = current_period_end(subscription)
    return subscription


def retrieve_subscription(call: Call) -> Obj:
    return call.store.get(call.account, "subscription", call.path["id"])


def list_subscriptions(call: Call) -> Obj:
    params = call.params
    customer = params.text("customer")
    price = params.text("price")
    status = params.choice("status", (*STATUSES, "all", "ended"))
    clock = params.text("test_clock")

    def wanted(subscription: Obj) -> bool:
        state = subscription["status"]
        if status is None and state in ("canceled", "incomplete_expired"):
            return False  # Stripe lists the canceled only when asked
        if (
            status not in (None, "all")
            and state != status
            and not (status == "ended" and state in ("canceled", "incomplete_expired"))
        ):
            return False
        prices = {item["price"]["id"] for item in subscription["items"]["data"]}
        return (
            (customer is None or subscription["customer"] == customer)
            and (price is None or price in prices)
            and (clock is None or subscription["test_clock"] == clock)
        )

    return page(
        call.store.all(call.account, "subscription"), params, "/v1/subscriptions", filtered=wanted
    )


def _update_items(call: Call, subscription: Obj, params: Params) -> None:
    """`items[n][id]` with `price`/`quantity` changes that item, `deleted=true` removes it;
    an item without `id` is added. (Prorations are accepted but not billed.)"""
    current = {item["id"]: item for item in subscription["items"]["data"]}
    at = call.now(subscription["customer"])
    for change in params.items("items"):
        item_id = change.text("id")
        if item_id is None:
            price = recurring_price(call, change.required("price"), change.name("price"))
            item = _item(
                subscription["id"],
                price,
                change.integer("quantity", minimum=1) or 1,
                at,
                change.metadata(),
            )
            any_item = subscription["items"]["data"][0]
            item["current_period_start"] = any_item["current_period_start"]
            item["current_period_end"] = any_item["current_period_end"]
            subscription["items"]["data"].append(item)
            continue
        if item_id not in current:
            raise invalid(
                change.name("id"), f"No such subscription item: '{item_id}'", "resource_missing"
            )
        item = current[item_id]
        if change.boolean("deleted"):
            subscription["items"]["data"].remove(item)
            continue
        if change.has("price"):
            item["price"] = snapshot(
                recurring_price(call, change.required("price"), change.name("price"))
            )
        quantity = change.integer("quantity", minimum=1)
        if quantity is not None:
            item["quantity"] = quantity
        item["metadata"] = change.metadata(item["metadata"])
    if not subscription["items"]["data"]:
        raise invalid("items", "A subscription must have at least one item.")


def update_subscription(call: Call) -> Obj:
    subscription = retrieve_subscription(call)
    params = call.params
    if subscription["status"] in ("canceled", "incomplete_expired"):
        raise StripeApiError(
            400,
            "A canceled subscription can only update its cancellation_details and metadata.",
        )
    before = snapshot(subscription)
    at = call.now(subscription["customer"])
    interval = _interval(subscription)
    _update_items(call, subscription, params)
    behavior = (
        params.choice("proration_behavior", ("create_prorations", "none", "always_invoice"))
        or "create_prorations"
    )
    end_at_period = params.boolean("cancel_at_period_end")
    if end_at_period is not None:
        subscription["cancel_at_period_end"] = end_at_period
        subscription["cancel_at"] = current_period_end(subscription) if end_at_period else None
        subscription["canceled_at"] = at if end_at_period else None
        reason = "cancellation_requested" if end_at_period else None
        subscription["cancellation_details"]["reason"] = reason
    if params.has("cancel_at"):
        cancel_at = params.integer("cancel_at") if params.text("cancel_at") else None
        subscription["cancel_at"] = cancel_at
    subscription["metadata"] = params.metadata(subscription["metadata"])
    details = params.sub("cancellation_details")
    if details is not None:
        for key in ("comment", "feedback"):
            if details.has(key):
                subscription["cancellation_details"][key] = details.text(key) or None
    trial_end = params.text("trial_end")
    ends_trial_now = trial_end == "now" and subscription["status"] == "trialing"
    if trial_end is not None and trial_end != "now":
        new_end = _trial_end(call, params, subscription["customer"])
        subscription["trial_end"] = new_end
        subscription["billing_cycle_anchor"] = new_end or at
        _set_period(
            subscription, subscription["items"]["data"][0]["current_period_start"], new_end or at
        )
    if ends_trial_now:
        # The trial ends now and the billing cycle restarts from now, as Stripe does.
        subscription.update(trial_end=at, billing_cycle_anchor=at)
        notify_updated(call, subscription, before, at)
        renew(call, subscription, at)
    elif _interval(subscription) != interval and subscription["status"] != "trialing":
        # A new billing interval starts a new period now, billed at once (Stripe resets the
        # billing cycle anchor when the interval changes).
        subscription["billing_cycle_anchor"] = at
        notify_updated(call, subscription, before, at)
        bill_new_period(call, subscription, at, "subscription_update")
    elif subscription["status"] in ("active", "past_due") and behavior != "none":
        notify_updated(call, subscription, before, at)
        prorate(call, before, subscription, at, invoice_now=behavior == "always_invoice")
    else:
        notify_updated(call, subscription, before, at)
    return subscription


def prorate(call: Call, before: Obj, subscription: Obj, at: int, *, invoice_now: bool) -> None:
    """Stripe's prorations for a change within the period: credit for the unused time of
    what the items were, charge for the rest of the period of what they are now. They wait
    for the next invoice, or are invoiced at once (`always_invoice`)."""
    start = subscription["items"]["data"][0]["current_period_start"]
    end = current_period_end(subscription)
    if not start <= at < end:
        return
    fraction = (end - at) / (end - start)
    old = {item["id"]: item for item in before["items"]["data"]}
    new = {item["id"]: item for item in subscription["items"]["data"]}
    day = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
    lines = []
    for item, sign, word, other in [
        *((item, -1, "Unused", new) for item in old.values()),
        *((item, 1, "Remaining", old) for item in new.values()),
    ]:
        counterpart = other.get(item["id"])
        if counterpart is not None and _billed(counterpart) == _billed(item):
            continue
        amount = sign * round(item["price"]["unit_amount"] * item["quantity"] * fraction)
        name = f"{word} time on {item['quantity']} x {item['price']['product']} after {day}"
        lines.append(invoice_line(subscription, item, amount, name, (at, end), proration=True))
    if not lines:
        return
    call.store.prorations.setdefault(subscription["id"], []).extend(lines)
    if invoice_now:
        invoice = open_invoice(call, subscription, "subscription_update", at, end, at, items=False)
        subscription["latest_invoice"] = invoice["id"]
        settle(call, invoice, attempt_payment(call, invoice, at), at)


def _billed(item: Obj) -> tuple[str, int]:
    return item["price"]["id"], item["quantity"]


def _interval(subscription: Obj) -> tuple[str, int]:
    recurring = subscription["items"]["data"][0]["price"]["recurring"]
    return recurring["interval"], recurring["interval_count"]


def cancel_subscription(call: Call) -> Obj:
    subscription = retrieve_subscription(call)
    if subscription["status"] in ("canceled", "incomplete_expired"):
        raise StripeApiError(
            400,
            f"A canceled subscription ({subscription['id']}) cannot be canceled again.",
            code="resource_missing",
        )
    details = call.params.sub("cancellation_details")
    if details is not None:
        subscription["cancellation_details"]["comment"] = details.text("comment")
        subscription["cancellation_details"]["feedback"] = details.text("feedback")
    cancel(call, subscription, call.now(subscription["customer"]), "cancellation_requested")
    return subscription


UPDATABLE = (
    "items", "proration_behavior", "cancel_at_period_end", "cancel_at", "trial_end",
    "metadata", "cancellation_details", "payment_behavior", "default_payment_method",
    "proration_date", "billing_cycle_anchor", "description",
)  # fmt: skip
CREATE = (
    "customer", "items", "trial_period_days", "trial_end", "metadata", "cancel_at_period_end",
    "payment_behavior", "proration_behavior", "default_payment_method", "collection_method",
    "description", "currency", "off_session", "application_fee_percent",
)  # fmt: skip

ENDPOINTS = [
    Endpoint("POST", "/v1/subscriptions", create_subscription, CREATE),
    Endpoint(
        "GET",
        "/v1/subscriptions",
        list_subscriptions,
        ("customer", "price", "status", "test_clock", "created", "current_period_end"),
    ),
    Endpoint("GET", "/v1/subscriptions/{id}", retrieve_subscription),
    Endpoint("POST", "/v1/subscriptions/{id}", update_subscription, UPDATABLE),
    Endpoint(
        "DELETE",
        "/v1/subscriptions/{id}",
        cancel_subscription,
        ("cancellation_details", "invoice_now", "prorate"),
    ),
]

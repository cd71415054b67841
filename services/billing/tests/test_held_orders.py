"""A signed checkout must match the catalog before it provisions: amount, currency, quantity
and payment status. A mismatch is held for review (recorded, listed with its reason, never
provisioned) until an admin approves it (provisioned once, through the normal path) or
rejects it (recorded and audited). Signatures from the future are refused."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tessera.billing.checkout import stripe_shapes as shapes

pytestmark = pytest.mark.integration

SKU = "chartgpt-lifetime"
PRICE = 14900


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def a_session(
    *,
    amount_total: int = PRICE,
    currency: str = "usd",
    quantity: Any = 1,
    payment_status: str = "paid",
    email: str = "buyer@example.com",
    event_type: str = "checkout.session.completed",
    session_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    session = shapes.checkout_session(
        session_id=session_id or shapes.stripe_id("cs"), email=email, sku=SKU, quantity=1,
        amount_total=amount_total, currency=currency, customer=shapes.stripe_id("cus"),
        payment_intent=shapes.stripe_id("pi"), payment_status=payment_status,
    )  # fmt: skip
    session["metadata"]["quantity"] = str(quantity)
    session.update(extra)
    return shapes.event(event_type, session)


async def order_of(billing: Any, event: dict[str, Any]) -> Any:
    rows = await billing.fetch(
        "SELECT * FROM orders WHERE checkout_session_id = $1", event["data"]["object"]["id"]
    )
    assert len(rows) == 1
    return rows[0]


async def paid_events_for(billing: Any, order_id: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await billing.published("billing.order.paid.v1")
    return [e for e in found if e["order_id"] == str(order_id)]


async def barrier(billing: Any, eventually: Any) -> None:
    """A matching purchase, delivered after the others, whose order.paid has come out: any
    event the earlier ones were going to publish would be out by then too."""
    fine = a_session(email="barrier@example.com")
    assert await billing.outcome(fine) == "processed"
    order = await order_of(billing, fine)

    async def published() -> list[dict[str, Any]]:
        return await paid_events_for(billing, order["id"])

    assert len(await eventually(published, timeout=15)) == 1


async def test_the_reviews_cases_are_held_with_no_license_and_no_order_paid(
    billing: Any, eventually: Any
) -> None:
    tampered = a_session(amount_total=1, currency="xxx", quantity=50)
    free = a_session(amount_total=0, payment_status="no_payment_required")
    for event in (tampered, free):
        assert await billing.outcome(event) == "processed"
    held = await order_of(billing, tampered)
    assert held["status"] == "held" and held["paid_at"] is None
    assert held["provisioned_at"] is None and held["account_id"] is None
    assert "currency 'xxx' is not the catalog's 'usd'" in held["hold_reason"]
    assert "quantity 50 is outside 1 to 10" in held["hold_reason"]
    assert held["quantity"] == 50 and held["amount_total"] == 1
    zero = await order_of(billing, free)
    assert zero["status"] == "held"
    assert "no_payment_required" in zero["hold_reason"]
    detail = await billing.value("SELECT detail FROM stripe_events WHERE id = $1", free["id"])
    assert detail.startswith("held for review: ")

    await barrier(billing, eventually)
    for order in (held, zero):
        assert await paid_events_for(billing, order["id"]) == []
    completed = await billing.published("billing.purchase.completed.v1")
    held_ids = {str(held["id"]), str(zero["id"])}
    assert not [e for e in completed if e["order_id"] in held_ids]
    assert (
        await billing.value("SELECT count(*) FROM accounts WHERE email = 'buyer@example.com'") == 0
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"amount_total": PRICE - 1}, f"amount_total {PRICE - 1} is not {PRICE}"),
        ({"amount_total": PRICE * 2, "quantity": 1}, f"amount_total {PRICE * 2} is not {PRICE}"),
        ({"quantity": 0, "amount_total": 0}, "quantity 0 is outside 1 to 10"),
        ({"quantity": "lots"}, "quantity 'lots' is not a whole number"),
        ({"currency": "eur"}, "currency 'eur' is not the catalog's 'usd'"),
        ({"payment_status": "unpaid", "event_type": "checkout.session.async_payment_succeeded"},
         "payment_status 'unpaid' is not 'paid'"),
        (
            {"amount_total": PRICE - 5000,
             "total_details": {"amount_discount": 5000, "amount_shipping": 0, "amount_tax": 0}},
            "a discount of 5000 was taken, but chartgpt-lifetime allows none",
        ),
    ],
)  # fmt: skip
async def test_each_mismatch_is_held_with_its_reason(
    billing: Any, changes: dict[str, Any], reason: str
) -> None:
    event = a_session(**changes)
    assert await billing.outcome(event) == "processed"
    order = await order_of(billing, event)
    assert order["status"] == "held"
    assert reason in order["hold_reason"]
    assert order["hold_event_id"] == event["id"]


async def test_a_discount_is_honoured_where_the_catalog_allows_promotion_codes(
    billing: Any,
) -> None:
    async with billing.pool.acquire() as conn:
        await conn.execute("UPDATE catalog SET allow_promotion_codes = true WHERE sku = $1", SKU)
    details = {"amount_discount": 4900, "amount_shipping": 0, "amount_tax": 0}
    discounted = a_session(amount_total=PRICE - 4900, total_details=details)
    assert await billing.outcome(discounted) == "processed"
    assert (await order_of(billing, discounted))["status"] == "paid"
    # the discount is taken off once: a total that is less again is still held
    cheaper = a_session(amount_total=PRICE - 9800, total_details=details)
    await billing.outcome(cheaper)
    assert (await order_of(billing, cheaper))["status"] == "held"


async def test_a_matching_purchase_is_paid_and_a_free_price_may_need_no_payment(
    billing: Any,
) -> None:
    fine = a_session(quantity=3, amount_total=PRICE * 3)
    assert await billing.outcome(fine) == "processed"
    assert (await order_of(billing, fine))["status"] == "paid"
    async with billing.pool.acquire() as conn:
        await conn.execute("UPDATE catalog SET unit_amount = 0 WHERE sku = $1", SKU)
    free = a_session(amount_total=0, payment_status="no_payment_required")
    await billing.outcome(free)
    assert (await order_of(billing, free))["status"] == "paid"


async def test_an_async_payment_mismatch_is_held_at_once_and_a_failed_one_is_not_approvable(
    billing: Any,
) -> None:
    session_id = shapes.stripe_id("cs")
    pending = a_session(amount_total=1, payment_status="unpaid", session_id=session_id)
    await billing.outcome(pending)
    assert (await order_of(billing, pending))["status"] == "held"
    failed = a_session(
        amount_total=1, payment_status="unpaid", session_id=session_id,
        event_type="checkout.session.async_payment_failed",
    )  # fmt: skip
    await billing.outcome(failed)
    order = await order_of(billing, failed)
    assert order["status"] == "payment_failed"
    approve = await billing.client.post(
        f"/v1/admin/held-orders/{order['id']}/approve",
        json={"reason": "looks fine"},
        headers=bearer(billing.token(role="admin")),
    )
    assert approve.status_code == 409


async def test_duplicate_deliveries_of_a_held_event_stay_one_held_record(billing: Any) -> None:
    event = a_session(amount_total=1)
    assert await billing.outcome(event) == "processed"
    again = await billing.deliver(event)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # a second event of the same session (another id) holds the same order, not a new one
    same_session = dict(event, id=shapes.stripe_id("evt"))
    assert await billing.outcome(same_session) == "processed"
    rows = await billing.fetch(
        "SELECT status FROM orders WHERE checkout_session_id = $1", event["data"]["object"]["id"]
    )
    assert [r["status"] for r in rows] == ["held"]
    assert await billing.value("SELECT attempts FROM stripe_events WHERE id = $1", event["id"]) == 2
    replayed = await billing.client.post(
        f"/v1/admin/webhook-events/{event['id']}/replay",
        headers=bearer(billing.token(role="admin")),
    )
    assert replayed.status_code == 200
    assert [r["status"] for r in await billing.fetch("SELECT status FROM orders")] == ["held"]


async def test_the_admin_sees_held_orders_with_their_reason(billing: Any) -> None:
    event = a_session(amount_total=1, currency="xxx", quantity=50, email="odd@example.com")
    await billing.outcome(event)
    admin = bearer(billing.token(role="admin"))
    listed = await billing.client.get("/v1/admin/held-orders", headers=admin)
    assert listed.status_code == 200
    [held] = listed.json()
    assert held["email"] == "odd@example.com" and held["status"] == "held"
    assert "quantity 50" in held["hold_reason"] and held["hold_event_id"] == event["id"]
    one = await billing.client.get(f"/v1/admin/held-orders/{held['id']}", headers=admin)
    assert one.status_code == 200 and one.json()["hold_reason"] == held["hold_reason"]
    customer = await billing.client.get("/v1/admin/held-orders", headers=bearer(billing.token()))
    assert customer.status_code == 404
    bad = await billing.client.get("/v1/admin/held-orders/not-a-uuid", headers=admin)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    unknown = await billing.client.get(
        "/v1/admin/held-orders/00000000-0000-0000-0000-000000000000", headers=admin
    )
    assert unknown.status_code == 404
    no_reason = await billing.client.post(
        f"/v1/admin/held-orders/{held['id']}/reject", json={"reason": "  "}, headers=admin
    )
    assert no_reason.status_code == 422
    assert (await order_of(billing, event))["status"] == "held"


async def test_approve_provisions_once_even_when_clicked_twice_at_once(
    billing: Any, eventually: Any
) -> None:
    event = a_session(amount_total=PRICE - 100, email="approved@example.com")
    await billing.outcome(event)
    order = await order_of(billing, event)
    admin = bearer(billing.token(role="admin"))
    url = f"/v1/admin/held-orders/{order['id']}/approve"
    first, second = await asyncio.gather(
        billing.client.post(url, json={"reason": "agreed a $1 discount"}, headers=admin),
        billing.client.post(url, json={"reason": "agreed a $1 discount"}, headers=admin),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    ok = first if first.status_code == 200 else second
    assert ok.json()["status"] == "paid" and ok.json()["review_reason"] == "agreed a $1 discount"
    conflict = second if ok is first else first
    assert conflict.json()["type"].endswith("order-not-held")
    later = await billing.client.post(url, json={"reason": "again"}, headers=admin)
    assert later.status_code == 409

    async def provisioned() -> list[dict[str, Any]]:
        return await paid_events_for(billing, order["id"])

    [paid] = await eventually(provisioned, timeout=15)
    assert paid["email"] == "approved@example.com" and paid["amount_total"] == PRICE - 100
    await barrier(billing, eventually)
    assert len(await paid_events_for(billing, order["id"])) == 1
    stored = await order_of(billing, event)
    assert stored["status"] == "paid" and stored["provisioned_at"] is not None
    # Paid once approved: one payment whose Stripe fees revenue waits for (docs/billing.md).
    payments = await billing.fetch(
        "SELECT kind, amount FROM payments WHERE source = $1", stored["payment_intent_id"]
    )
    assert [tuple(r) for r in payments] == [("order", PRICE - 100)]
    trail = await billing.fetch(
        "SELECT action, detail->>'reason' AS reason FROM audit_log WHERE subject = $1",
        str(order["id"]),
    )
    assert [(r["action"], r["reason"]) for r in trail] == [
        ("order.approve", "agreed a $1 discount")
    ]


async def test_reject_is_recorded_and_audited_and_never_provisions(
    billing: Any, eventually: Any
) -> None:
    event = a_session(amount_total=1, currency="xxx", quantity=50)
    await billing.outcome(event)
    order = await order_of(billing, event)
    admin = bearer(billing.token(role="admin"))
    rejected = await billing.client.post(
        f"/v1/admin/held-orders/{order['id']}/reject",
        json={"reason": "tampered session"},
        headers=admin,
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reviewed_by"].startswith("admin:")
    approve = await billing.client.post(
        f"/v1/admin/held-orders/{order['id']}/approve", json={"reason": "oops"}, headers=admin
    )
    assert approve.status_code == 409
    listed = await billing.client.get(
        "/v1/admin/held-orders", params={"status": "rejected"}, headers=admin
    )
    assert [o["id"] for o in listed.json()] == [str(order["id"])]
    assert (await billing.client.get("/v1/admin/held-orders", headers=admin)).json() == []
    [entry] = await billing.fetch(
        "SELECT action, detail FROM audit_log WHERE subject = $1", str(order["id"])
    )
    assert entry["action"] == "order.reject" and "tampered session" in entry["detail"]
    await barrier(billing, eventually)
    assert await paid_events_for(billing, order["id"]) == []


async def test_a_signature_from_the_future_is_refused(billing: Any) -> None:
    event = a_session()
    tolerance = billing.settings.stripe_webhook_tolerance
    ahead = await billing.deliver(event, timestamp=int(time.time()) + tolerance + 60)
    assert ahead.status_code == 400
    assert ahead.json()["type"].endswith("signature-future")
    assert await billing.value("SELECT count(*) FROM stripe_events") == 0
    # a small clock skew within the tolerance is still fine
    skewed = await billing.deliver(event, timestamp=int(time.time()) + 30)
    assert skewed.status_code == 200


async def test_an_order_without_a_quantity_cannot_be_approved_only_rejected(
    billing: Any,
) -> None:
    event = a_session(quantity="none", amount_total=0)
    await billing.outcome(event)
    order = await order_of(billing, event)
    assert order["status"] == "held" and order["quantity"] == 0
    admin = bearer(billing.token(role="admin"))
    url = f"/v1/admin/held-orders/{order['id']}"
    approve = await billing.client.post(f"{url}/approve", json={"reason": "ok"}, headers=admin)
    assert approve.status_code == 409
    assert approve.json()["type"].endswith("order-not-provisionable")
    assert (await order_of(billing, event))["status"] == "held"
    reject = await billing.client.post(
        f"{url}/reject", json={"reason": "no quantity"}, headers=admin
    )
    assert reject.status_code == 200


async def test_a_refund_ends_a_held_order_but_leaves_a_rejected_one_rejected(
    billing: Any, stripe_events: Any
) -> None:
    refunded_event = a_session(amount_total=1)
    rejected_event = a_session(amount_total=2)
    for event in (refunded_event, rejected_event):
        await billing.outcome(event)
    admin = bearer(billing.token(role="admin"))
    rejected = await order_of(billing, rejected_event)
    response = await billing.client.post(
        f"/v1/admin/held-orders/{rejected['id']}/reject", json={"reason": "fraud"}, headers=admin
    )
    assert response.status_code == 200
    for event, amount in ((refunded_event, 1), (rejected_event, 2)):
        session = event["data"]["object"]
        ids = {
            "charge": shapes.stripe_id("ch"),
            "customer": session["customer"],
            "payment_intent": session["payment_intent"],
        }
        assert await billing.outcome(stripe_events.refund(ids, amount, amount)) == "processed"
    assert (await order_of(billing, refunded_event))["status"] == "refunded"
    assert (await order_of(billing, rejected_event))["status"] == "rejected"
    approve = await billing.client.post(
        f"/v1/admin/held-orders/{(await order_of(billing, refunded_event))['id']}/approve",
        json={"reason": "too late"},
        headers=admin,
    )
    assert approve.status_code == 409


# --- a paid session billing cannot match at all is held too, never lost -----------------


def charge_refunded(session_event: dict[str, Any], refunded: int) -> dict[str, Any]:
    session = session_event["data"]["object"]
    charge = shapes.charge(
        charge_id=shapes.stripe_id("ch"), amount=session["amount_total"], currency="usd",
        customer=session["customer"], payment_intent=session["payment_intent"],
        amount_refunded=refunded,
    )  # fmt: skip
    return shapes.event("charge.refunded", charge)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"metadata": {"sku": "no-such-thing", "quantity": "1"}}, "no-such-thing"),
        ({"metadata": {"quantity": "1"}}, "no metadata.sku"),
        ({"customer_details": {"email": None}}, "no customer email"),
        ({"mode": "subscription"}, "checkout mode 'subscription' is not sold here"),
    ],
)
async def test_a_paid_session_that_matches_nothing_is_held_with_its_reason(
    billing: Any, eventually: Any, changes: dict[str, Any], reason: str
) -> None:
    event = a_session(**changes)
    assert await billing.outcome(event) == "processed"
    order = await order_of(billing, event)
    assert order["status"] == "held" and reason in order["hold_reason"]
    assert order["account_id"] is None and order["paid_at"] is None
    admin = bearer(billing.token(role="admin"))
    listed = await billing.client.get("/v1/admin/held-orders", headers=admin)
    assert [o["id"] for o in listed.json()] == [str(order["id"])]
    await barrier(billing, eventually)
    assert await paid_events_for(billing, order["id"]) == []


async def test_an_unpaid_session_that_matches_nothing_is_still_failed(billing: Any) -> None:
    event = a_session(payment_status="unpaid", metadata={"sku": "no-such-thing"})
    assert await billing.outcome(event) == "failed"
    assert await billing.value("SELECT count(*) FROM orders") == 0


async def test_an_unknown_sku_held_is_approved_once_the_catalog_sells_it(
    billing: Any, eventually: Any
) -> None:
    event = a_session(metadata={"sku": "chartgpt-team", "quantity": "2"}, amount_total=2 * PRICE)
    assert await billing.outcome(event) == "processed"
    order = await order_of(billing, event)
    admin = bearer(billing.token(role="admin"))
    path = f"/v1/admin/held-orders/{order['id']}/approve"
    refused = await billing.client.post(path, json={"reason": "ok"}, headers=admin)
    assert refused.status_code == 409 and "not for sale" in refused.text
    async with billing.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO catalog (sku, name, unit_amount, currency, product, policy, seller_id,"
            " mode) VALUES ('chartgpt-team', 'Team', 14900, 'usd', 'chartgpt',"
            " 'chartgpt-lifetime', '00000000-0000-4000-8000-000000000001', 'live')"
        )
    approved = await billing.client.post(path, json={"reason": "team plan"}, headers=admin)
    assert approved.status_code == 200, approved.text

    async def paid() -> list[dict[str, Any]]:
        return await paid_events_for(billing, order["id"])

    [event_paid] = await eventually(paid, timeout=15)
    assert event_paid["policy"] == "chartgpt-lifetime" and event_paid["seats"] == 2


@pytest.mark.parametrize("quantity", ["lots", "0", "-5"])
async def test_a_full_refund_of_a_held_order_without_a_quantity_is_recorded(
    billing: Any, quantity: str
) -> None:
    event = a_session(quantity=quantity)
    assert await billing.outcome(event) == "processed"
    held = await order_of(billing, event)
    assert held["status"] == "held" and held["quantity"] < 1
    refund = charge_refunded(event, PRICE)
    assert await billing.outcome(refund) == "processed"
    order = await order_of(billing, event)
    assert order["status"] == "refunded" and order["amount_refunded"] == PRICE
    listed = await billing.client.get(
        "/v1/admin/held-orders",
        params={"status": "refunded"},
        headers=bearer(billing.token(role="admin")),
    )
    assert [o["id"] for o in listed.json()] == [str(order["id"])]

"""Refunds, disputes and async payments, in order, out of order, and late."""

from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def published(billing: Any, subject: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await billing.published(subject)
    return result


async def has(billing: Any, subject: str, n: int) -> bool:
    return len(await published(billing, subject)) == n


async def test_a_full_refund_publishes_a_full_refund_after_the_paid_order(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    purchase, ids = stripe_events.purchase()
    await billing.deliver(purchase)
    await eventually(lambda: has(billing, "billing.order.paid.v1", 1))
    refund = stripe_events.refund(ids, stripe_events.price)
    response = await billing.deliver(refund, settle=False)
    assert response.json() == {
        "received": True,
        "status": "received",
        "detail": "recorded; it is applied in the background",
    }
    assert await billing.settled(refund["id"]) == "processed"
    assert await billing.value("SELECT detail FROM stripe_events WHERE id = $1", refund["id"]) == (
        "full refund"
    )
    [refunded] = await eventually(lambda: _list(billing, "billing.order.refunded.v1"))
    [paid] = await published(billing, "billing.order.paid.v1")
    assert refunded["full"] is True
    assert refunded["order_id"] == paid["order_id"]
    assert refunded["account_id"] == paid["account_id"]
    assert refunded["amount_refunded"] == stripe_events.price
    assert await billing.value("SELECT status FROM orders") == "refunded"


async def _list(billing: Any, subject: str) -> list[dict[str, Any]]:
    return await published(billing, subject)


async def test_partial_refunds_do_not_revoke_and_a_late_older_one_changes_nothing(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    purchase, ids = stripe_events.purchase()
    await billing.deliver(purchase)
    assert await billing.detail(stripe_events.refund(ids, 5000)) == "partial refund"
    assert await billing.detail(stripe_events.refund(ids, 9000)) == "partial refund"
    assert await billing.detail(stripe_events.refund(ids, 5000)) == "refund already recorded"
    refunds = await eventually(lambda: _n(billing, "billing.order.refunded.v1", 2))
    assert [r["full"] for r in refunds] == [False, False]
    assert [r["amount_refunded"] for r in refunds] == [5000, 9000]
    assert (
        await billing.value("SELECT (status, amount_refunded)::text FROM orders") == "(paid,9000)"
    )
    assert await billing.detail(stripe_events.refund(ids, stripe_events.price)) == "full refund"
    refunds = await eventually(lambda: _n(billing, "billing.order.refunded.v1", 3))
    assert refunds[-1]["full"] is True


async def _n(billing: Any, subject: str, n: int) -> list[dict[str, Any]]:
    found = await published(billing, subject)
    return found if len(found) == n else []


async def test_a_refund_that_arrives_before_its_purchase_is_held_then_applied(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    purchase, ids = stripe_events.purchase()
    assert await billing.outcome(stripe_events.refund(ids, stripe_events.price)) == "held"
    assert await billing.value("SELECT count(*) FROM orders") == 0
    await billing.deliver(purchase)
    rows = await billing.fetch("SELECT type, status FROM stripe_events ORDER BY received_at")
    assert [(r["type"], r["status"]) for r in rows] == [
        ("charge.refunded", "processed"),
        ("checkout.session.completed", "processed"),
    ]
    [refunded] = await eventually(lambda: _n(billing, "billing.order.refunded.v1", 1))
    [paid] = await published(billing, "billing.order.paid.v1")
    assert refunded["full"] is True and refunded["order_id"] == paid["order_id"]
    # the paid order is published before the refund that takes it back
    subjects = [
        r["subject"]
        for r in await billing.fetch("SELECT subject FROM outbox ORDER BY created_at, id")
    ]
    assert subjects.index("billing.order.paid.v1") < subjects.index("billing.order.refunded.v1")


async def test_an_async_payment_is_paid_only_when_it_succeeds(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    pending, ids = stripe_events.purchase(payment_status="unpaid")
    assert (await billing.detail(pending)) == "order awaiting_payment"
    assert await billing.value("SELECT count(*) FROM outbox") == 0
    succeeded, _ = stripe_events.purchase(
        ids=ids, event_type="checkout.session.async_payment_succeeded"
    )
    assert (await billing.detail(succeeded)) == "order paid"
    await eventually(lambda: has(billing, "billing.order.paid.v1", 1))
    late_completed, _ = stripe_events.purchase(ids=ids, payment_status="unpaid")
    await billing.deliver(late_completed)
    assert await billing.value("SELECT status FROM orders") == "paid"


async def test_a_failed_async_payment_grants_nothing(billing: Any, stripe_events: Any) -> None:
    pending, ids = stripe_events.purchase(payment_status="unpaid")
    await billing.deliver(pending)
    failed, _ = stripe_events.purchase(
        ids=ids, payment_status="unpaid", event_type="checkout.session.async_payment_failed"
    )
    assert (await billing.detail(failed)) == "payment failed"
    assert await billing.value("SELECT status FROM orders") == "payment_failed"
    assert await billing.value("SELECT count(*) FROM outbox") == 0
    late_success, _ = stripe_events.purchase(
        ids=ids, event_type="checkout.session.async_payment_succeeded"
    )
    await billing.deliver(late_success)
    assert await billing.value("SELECT status FROM orders") == "payment_failed"


async def test_a_won_dispute_suspends_then_reinstates(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    purchase, ids = stripe_events.purchase()
    await billing.deliver(purchase)
    assert (await billing.detail(stripe_events.dispute(ids, "needs_response"))) == "dispute opened"
    assert (await billing.detail(stripe_events.dispute(ids, "won"))) == "dispute won"
    [disputed] = await eventually(lambda: _n(billing, "billing.order.disputed.v1", 1))
    [closed] = await eventually(lambda: _n(billing, "billing.order.dispute_closed.v1", 1))
    assert disputed["dispute_id"] == closed["dispute_id"]
    assert closed["outcome"] == "won"
    assert await billing.value("SELECT dispute_status FROM orders") == "won"


async def test_a_lost_dispute_is_published_as_lost(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    purchase, ids = stripe_events.purchase()
    await billing.deliver(purchase)
    await billing.deliver(stripe_events.dispute(ids, "needs_response"))
    await billing.deliver(stripe_events.dispute(ids, "lost"))
    [closed] = await eventually(lambda: _n(billing, "billing.order.dispute_closed.v1", 1))
    assert closed["outcome"] == "lost"


async def test_a_dispute_closed_before_it_opened_is_closed_once_and_never_reopened(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    purchase, ids = stripe_events.purchase()
    await billing.deliver(purchase)
    assert (await billing.detail(stripe_events.dispute(ids, "lost"))) == "dispute lost"
    assert (
        await billing.detail(stripe_events.dispute(ids, "needs_response"))
        == "dispute already known"
    )
    assert await billing.detail(stripe_events.dispute(ids, "won")) == "dispute already closed"
    await eventually(lambda: _n(billing, "billing.order.dispute_closed.v1", 1))
    assert await published(billing, "billing.order.disputed.v1") == []


async def test_events_shuffled_and_doubled_end_in_the_same_state(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    import random

    purchase, ids = stripe_events.purchase()
    events = [
        purchase,
        stripe_events.refund(ids, 4000),
        stripe_events.dispute(ids, "needs_response"),
        stripe_events.dispute(ids, "won"),
    ]
    deliveries = events * 2
    random.Random(7).shuffle(deliveries)
    for event in deliveries:
        assert (await billing.deliver(event)).status_code == 200
    assert await billing.value("SELECT count(*) FROM stripe_events WHERE status = 'processed'") == 4
    await eventually(lambda: _n(billing, "billing.order.paid.v1", 1))
    await eventually(lambda: _n(billing, "billing.order.refunded.v1", 1))
    await eventually(lambda: _n(billing, "billing.order.dispute_closed.v1", 1))
    order = (await billing.fetch("SELECT status, amount_refunded, dispute_status FROM orders"))[0]
    assert dict(order) == {"status": "paid", "amount_refunded": 4000, "dispute_status": "won"}

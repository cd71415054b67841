"""The applier: what the ingress recorded is applied once, across restarts and replicas."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tessera.billing.stripe_events import queries
from tessera.billing.webhooks import service
from tessera.shared.sellers import HOME_LIVE

pytestmark = pytest.mark.integration


async def test_events_recorded_by_an_ingress_only_replica_are_applied_after_a_restart(
    database_url: str, infra_settings: Any, billing_starter: Any, stripe_events: Any
) -> None:
    ingress = await billing_starter(database_url, infra_settings, run_workers=False)
    purchase, ids = stripe_events.purchase("restart@example.com")
    refund = stripe_events.refund(ids, stripe_events.price)
    try:
        for event in (refund, purchase):  # the refund first: it must wait for its purchase
            response = await ingress.deliver(event, settle=False)
            assert response.json()["status"] == "received"
        statuses = await ingress.fetch("SELECT status FROM stripe_events")
        assert [r["status"] for r in statuses] == ["received", "received"]
        assert await ingress.value("SELECT count(*) FROM orders") == 0
    finally:
        await ingress.stop()

    worker = await billing_starter(database_url, infra_settings)
    try:
        assert await worker.settled(purchase["id"]) == "processed"
        assert await worker.settled(refund["id"]) == "processed"
        assert await worker.value("SELECT status FROM orders") == "refunded"
        assert (
            await worker.value(
                "SELECT count(*) FROM outbox WHERE subject = 'billing.purchase.completed.v1'"
            )
            == 1
        )
    finally:
        await worker.stop()


async def test_two_replicas_apply_each_event_once_and_refunds_never_miss_their_purchase(
    database_url: str, infra_settings: Any, billing_starter: Any, stripe_events: Any
) -> None:
    first = await billing_starter(database_url, infra_settings)
    second = await billing_starter(database_url, infra_settings)
    try:
        deliveries = []
        for n in range(15):
            purchase, ids = stripe_events.purchase(f"pair{n}@example.com")
            refund = stripe_events.refund(ids, stripe_events.price)
            # Each pair arrives at both replicas at once, refund and purchase racing.
            deliveries += [
                first.deliver(refund, settle=False),
                second.deliver(purchase, settle=False),
                second.deliver(refund, settle=False),
                first.deliver(purchase, settle=False),
            ]
        responses = await asyncio.gather(*deliveries)
        assert all(r.status_code == 200 for r in responses)
        assert sorted(r.json()["status"] for r in responses).count("received") == 30

        async def all_applied() -> bool:
            waiting = await first.value(
                "SELECT count(*) FROM stripe_events WHERE status IN ('received', 'held')"
            )
            return bool(waiting == 0)

        deadline = asyncio.get_running_loop().time() + 20
        while not await all_applied():
            assert asyncio.get_running_loop().time() < deadline, "events left unapplied"
            await asyncio.sleep(0.05)
        assert await first.value("SELECT count(*) FROM orders") == 15
        assert await first.value("SELECT count(*) FROM orders WHERE status = 'refunded'") == 15
        assert (
            await first.value(
                "SELECT count(*) FROM outbox WHERE subject = 'billing.purchase.completed.v1'"
            )
            == 15
        )
        # Repeats are added to `attempts` just after they are answered.
        deadline = asyncio.get_running_loop().time() + 10
        while await first.value("SELECT sum(attempts) FROM stripe_events") != 60:
            assert asyncio.get_running_loop().time() < deadline, "repeats left uncounted"
            await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()


async def test_an_event_billing_cannot_read_is_recorded_failed_and_does_not_block_the_next(
    billing: Any, stripe_events: Any
) -> None:
    broken, _ = stripe_events.purchase("broken@example.com")
    broken["data"]["object"]["metadata"] = ["not", "a", "mapping"]
    fine, _ = stripe_events.purchase("fine@example.com")
    assert await billing.outcome(broken) == "failed"
    assert await billing.outcome(fine) == "processed"
    assert await billing.value("SELECT count(*) FROM orders") == 1


async def test_a_refund_applied_while_its_purchase_commits_elsewhere_waits_for_it(
    billing: Any, stripe_events: Any
) -> None:
    """Two replicas' appliers, each in its own transaction: without serialising a payment's
    events, the refund would see no order yet and the purchase no held refund."""
    purchase, ids = stripe_events.purchase("race@example.com")
    refund = stripe_events.refund(ids, stripe_events.price)
    held = [
        queries.Delivery(
            e["id"], e["type"], False, datetime.now(UTC), json.dumps(e), "held", None, {}, HOME_LIVE
        )
        for e in (purchase, refund)
    ]
    async with billing.pool.acquire() as conn:
        await queries.record_deliveries(conn, held)

    async def apply_refund() -> str:
        async with billing.pool.acquire() as conn, conn.transaction():
            outcome = await service.apply(
                conn, HOME_LIVE, refund["id"], refund["type"], refund["data"]["object"]
            )
            await service.save_outcome(conn, HOME_LIVE, refund["id"], outcome)
            return outcome.status

    async with billing.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        bought = await service.apply(
            conn, HOME_LIVE, purchase["id"], purchase["type"], purchase["data"]["object"]
        )
        refunding = asyncio.create_task(apply_refund())
        await asyncio.sleep(0.3)  # the refund is now inside its own transaction
        await service.save_outcome(conn, HOME_LIVE, purchase["id"], bought)
        await transaction.commit()
    assert await refunding == "processed"
    assert await billing.value("SELECT status FROM orders") == "refunded"

"""Billing's order events through real JetStream: paid issues, refunds revoke, disputes
suspend and then reinstate or revoke — once each, whatever the order and the repeats."""

from __future__ import annotations

import json
from typing import Any

import nats
import pytest
from licensing_factories import (  # type: ignore[import-not-found]
    Harness,
    a_dispute,
    a_dispute_closed,
    a_refund,
    an_order_paid,
)

from tessera.licensing.orders import service as orders
from tessera.shared.events.topology import LICENSING
from tessera.shared.sellers import HOME_LIVE

pytestmark = pytest.mark.integration


async def settled(harness: Harness, count: int) -> None:
    """Wait until the order consumer has applied `count` events."""

    async def done() -> bool:
        n = await harness.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'licensing.orders'")
        return bool(n >= count)

    await harness.until(done)


async def events_of(harness: Harness, subject: str) -> list[dict[str, Any]]:
    rows = await harness.fetch(
        "SELECT payload::text AS p FROM outbox WHERE subject = $1 ORDER BY created_at", subject
    )
    return [json.loads(r["p"]) for r in rows]


async def test_a_redelivered_or_repeated_order_issues_its_licenses_once(
    start_licensing: Any,
) -> None:
    paid = an_order_paid(seats=3, quantity=3)
    async with start_licensing() as h:
        await h.publish(paid)
        await h.publish(paid, msg_id="again-past-the-dedupe-window")
        await settled(h, 1)
        keys = await h.issued(paid.order_id, 3)
    # A restart, then billing publishing the same order as a new event.
    async with start_licensing() as h:
        await h.publish(paid, msg_id="after-restart")
        await h.publish(an_order_paid(order_id=paid.order_id, account_id=paid.account_id, seats=3))
        await settled(h, 2)
        assert await h.license_keys(paid.order_id) == keys
        assert len(await events_of(h, "licensing.license.issued.v1")) == 3


async def test_a_full_refund_revokes_and_a_partial_one_does_not(harness: Harness) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    await harness.issued(paid.order_id)
    await harness.publish(a_refund(paid, full=False))
    await settled(harness, 2)
    assert await harness.statuses(paid.order_id) == ["active"]
    await harness.publish(a_refund(paid, full=True))
    await settled(harness, 3)
    assert await harness.statuses(paid.order_id) == ["revoked"]
    revoked = await events_of(harness, "licensing.license.revoked.v1")
    assert [e["reason"] for e in revoked] == ["refunded"]
    assert revoked[0]["order_id"] == str(paid.order_id)


async def test_a_dispute_suspends_and_a_won_dispute_reinstates(harness: Harness) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    keys = await harness.issued(paid.order_id)
    await harness.publish(a_dispute(paid))
    await settled(harness, 2)
    assert await harness.statuses(paid.order_id) == ["suspended"]
    r = await harness.http.post(
        "/v1/licenses/validate", json={"key": keys[0], "fingerprint": "f" * 16}
    )
    assert r.json()["code"] == "SUSPENDED"
    await harness.publish(a_dispute_closed(paid, "won"))
    await settled(harness, 3)
    assert await harness.statuses(paid.order_id) == ["active"]
    assert len(await events_of(harness, "licensing.license.suspended.v1")) == 1
    assert len(await events_of(harness, "licensing.license.reinstated.v1")) == 1


async def test_a_lost_dispute_revokes(harness: Harness) -> None:
    paid = an_order_paid()
    await harness.publish(paid)
    await harness.issued(paid.order_id)
    await harness.publish(a_dispute(paid))
    await harness.publish(a_dispute_closed(paid, "lost"))
    await settled(harness, 3)
    assert await harness.statuses(paid.order_id) == ["revoked"]
    # A late duplicate of the dispute's opening changes nothing.
    await harness.publish(a_dispute(paid), msg_id="late-duplicate")
    await settled(harness, 4)
    assert await harness.statuses(paid.order_id) == ["revoked"]


@pytest.mark.parametrize(
    ("first", "expected"),
    [("refund", "revoked"), ("dispute", "suspended"), ("dispute-won", "active")],
)
async def test_events_that_arrive_before_the_order_still_apply(
    harness: Harness, first: str, expected: str
) -> None:
    paid = an_order_paid()
    if first == "refund":
        await harness.publish(a_refund(paid))
    elif first == "dispute":
        await harness.publish(a_dispute(paid))
    else:
        await harness.publish(a_dispute_closed(paid, "won"))
        await harness.publish(a_dispute(paid))
    await settled(harness, 2 if first == "dispute-won" else 1)
    await harness.publish(paid)
    await harness.issued(paid.order_id)
    assert await harness.statuses(paid.order_id) == [expected]


async def test_an_order_for_an_unknown_policy_is_held_and_issued_once_the_policy_exists(
    harness: Harness,
) -> None:
    paid = an_order_paid(product="chartgpt", policy="chartgpt-pro")
    await harness.publish(paid)
    await settled(harness, 1)
    held = await harness.fetch(
        "SELECT held_reason, held_event FROM orders WHERE order_id = $1", paid.order_id
    )
    assert held[0]["held_reason"] == "unknown product/policy chartgpt/chartgpt-pro"
    assert await harness.fetchval("SELECT count(*) FROM licenses") == 0

    admin = harness.app.state.context.pool
    async with admin.acquire() as conn:
        await conn.execute(
            "INSERT INTO policies (code, product_code, max_machines, lease_seconds, grace_seconds,"
            " seller_id, mode) VALUES ('chartgpt-pro', 'chartgpt', 5, 86400, 3600,"
            " '00000000-0000-4000-8000-000000000001', 'live')"
        )
    state = harness.app.state.context
    assert await orders.retry_held(admin, HOME_LIVE, state.sealer) == {paid.order_id: 1}
    assert (
        await harness.fetchval("SELECT held_reason FROM orders WHERE order_id = $1", paid.order_id)
        is None
    )
    assert await orders.retry_held(admin, HOME_LIVE, state.sealer) == {}


async def test_issued_licenses_reach_the_licensing_stream(
    harness: Harness, licensing_stream: str
) -> None:
    paid = an_order_paid(seats=2, quantity=2)
    await harness.publish(paid)
    await harness.issued(paid.order_id, 2)
    nc = await nats.connect(harness.app.state.context.infra.nats_url.unicode_string())
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            harness.ns.subject("licensing.license.issued.v1"), stream=licensing_stream
        )

        async def two() -> list[Any]:
            try:
                return list(await sub.fetch(2, timeout=1))
            except nats.errors.TimeoutError:
                return []

        messages = await harness.until(two)
    finally:
        await nc.close()
    orders_seen = {json.loads(m.data)["order_id"] for m in messages}
    assert orders_seen == {str(paid.order_id)}
    assert LICENSING.name in licensing_stream

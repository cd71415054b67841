"""The Stripe ingress: signatures, body bounds, exactly-once recording, the allowlist."""

import asyncio
import json
import time
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def problem_type(response: Any) -> str:
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["type"]).removeprefix("urn:tessera:problem:")


async def test_an_unsigned_delivery_is_refused(billing: Any, stripe_events: Any) -> None:
    event, _ = stripe_events.purchase()
    response = await billing.client.post("/webhooks/stripe", content=json.dumps(event))
    assert response.status_code == 400
    assert problem_type(response) == "signature-missing"


async def test_a_wrong_signature_is_refused_and_records_nothing(
    billing: Any, stripe_events: Any
) -> None:
    event, _ = stripe_events.purchase()
    response = await billing.deliver(event, secret="whsec_somebody_else")
    assert response.status_code == 400
    assert problem_type(response) == "signature-mismatch"
    assert await billing.value("SELECT count(*) FROM stripe_events") == 0


async def test_a_malformed_signature_header_is_refused(billing: Any, stripe_events: Any) -> None:
    event, _ = stripe_events.purchase()
    response = await billing.client.post(
        "/webhooks/stripe", content=json.dumps(event), headers={"stripe-signature": "v1=abc"}
    )
    assert response.status_code == 400
    assert problem_type(response) == "signature-malformed"


async def test_a_stale_timestamp_is_refused_as_a_possible_replay(
    billing: Any, stripe_events: Any
) -> None:
    event, _ = stripe_events.purchase()
    response = await billing.deliver(event, timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert problem_type(response) == "signature-stale"
    fresh = await billing.deliver(event, timestamp=int(time.time()) - 200)
    assert fresh.status_code == 200


async def test_both_secrets_verify_during_a_rotation(billing: Any, stripe_events: Any) -> None:
    old, _ = stripe_events.purchase("old@example.com")
    assert (await billing.deliver(old, secret=stripe_events.old_secret)).status_code == 200
    new, _ = stripe_events.purchase("new@example.com")
    assert (await billing.deliver(new, secret=stripe_events.secret)).status_code == 200


async def test_one_matching_signature_among_several_is_enough(
    billing: Any, stripe_events: Any
) -> None:
    import stripe

    event, _ = stripe_events.purchase()
    body = json.dumps(event)
    ts = int(time.time())
    good = stripe.WebhookSignature.generate_signature_header(body, stripe_events.secret, ts)
    header = f"t={ts},v1={'0' * 64},{good.split(',', 1)[1]}"
    response = await billing.client.post(
        "/webhooks/stripe", content=body, headers={"stripe-signature": header}
    )
    assert response.status_code == 200


async def test_an_oversized_body_is_refused_before_it_is_read(billing: Any) -> None:
    limit = billing.settings.webhook_max_bytes

    async def stream() -> Any:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = await billing.client.post(
        "/webhooks/stripe", content=stream(), headers={"stripe-signature": "t=1,v1=x"}
    )
    assert response.status_code == 413
    declared = await billing.client.post("/webhooks/stripe", content=b"x" * (limit + 1))
    assert declared.status_code == 413


async def test_a_signed_body_that_is_not_an_event_is_a_400(billing: Any) -> None:
    for body in (
        {"hello": "world"},
        [1, 2, 3],
        {"id": "evt_1", "type": "x", "created": 1, "data": "nope"},
    ):
        response = await billing.deliver(body)
        assert response.status_code == 400
        assert problem_type(response) == "payload-malformed"
    assert await billing.value("SELECT count(*) FROM stripe_events") == 0


async def test_an_event_type_outside_the_allowlist_is_acknowledged_and_ignored(
    billing: Any,
) -> None:
    from tessera.billing.checkout import stripe_shapes as shapes

    event = shapes.event("customer.created", {"id": "cus_x", "object": "customer"})
    response = await billing.deliver(event)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    row = await billing.fetch("SELECT status, type FROM stripe_events WHERE id = $1", event["id"])
    assert (row[0]["status"], row[0]["type"]) == ("ignored", "customer.created")
    assert await billing.value("SELECT count(*) FROM outbox") == 0


async def test_a_paid_checkout_becomes_an_account_and_a_paid_order_on_nats(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    event, ids = stripe_events.purchase("Buyer@Example.COM", quantity=2)
    assert await billing.outcome(event) == "processed"

    async def paid() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await billing.published("billing.order.paid.v1")
        return found

    [order_paid] = await eventually(paid)
    [created] = await billing.published("billing.account.created.v1")
    assert order_paid["email"] == created["email"] == "buyer@example.com"
    assert order_paid["account_id"] == created["account_id"]
    assert order_paid["seats"] == 2 and order_paid["quantity"] == 2
    assert order_paid["amount_total"] == 2 * stripe_events.price
    assert (order_paid["product"], order_paid["policy"]) == ("chartgpt", "chartgpt-lifetime")
    assert order_paid["stripe"]["checkout_session_id"] == ids["session"]
    assert order_paid["stripe"]["payment_intent_id"] == ids["payment_intent"]
    again, _ = stripe_events.purchase("buyer@example.com")
    await billing.deliver(again)
    await eventually(lambda: _count(paid, 2))
    assert len(await billing.published("billing.account.created.v1")) == 1


async def _attempts(billing: Any, n: int) -> bool:
    """Repeats are added to `attempts` just after they are answered."""
    return bool(await billing.value("SELECT attempts FROM stripe_events") == n)


async def _count(get: Any, n: int) -> bool:
    return len(await get()) == n


async def test_the_same_event_delivered_twice_has_one_effect(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    event, _ = stripe_events.purchase()
    first = await billing.deliver(event)
    second = await billing.deliver(event)
    assert first.json()["status"] == "received"
    assert second.json()["status"] == "duplicate"
    assert await billing.settled(event["id"]) == "processed"
    await eventually(lambda: _attempts(billing, 2))
    assert await billing.value("SELECT count(*) FROM orders") == 1
    await eventually(lambda: _count(lambda: billing.published("billing.order.paid.v1"), 1))
    assert len(await billing.published("billing.purchase.completed.v1")) == 1


async def test_twenty_concurrent_deliveries_of_one_event_have_one_effect(
    billing: Any, stripe_events: Any, eventually: Any
) -> None:
    event, _ = stripe_events.purchase()
    responses = await asyncio.gather(*(billing.deliver(event) for _ in range(20)))
    statuses = sorted(r.json()["status"] for r in responses)
    assert all(r.status_code == 200 for r in responses)
    assert statuses.count("received") == 1
    assert statuses.count("duplicate") == 19
    await eventually(lambda: _attempts(billing, 20))
    assert await billing.settled(event["id"]) == "processed"
    assert await billing.value("SELECT count(*) FROM orders") == 1
    assert (
        await billing.value(
            "SELECT count(*) FROM outbox WHERE subject = 'billing.purchase.completed.v1'"
        )
        == 1
    )
    await eventually(lambda: _count(lambda: billing.published("billing.order.paid.v1"), 1))
    await asyncio.sleep(0.5)
    assert len(await billing.published("billing.order.paid.v1")) == 1


async def test_an_unpaid_unknown_sku_is_recorded_as_failed_without_retries(
    billing: Any, stripe_events: Any
) -> None:
    # Not paid: nothing to hold (a paid one is held for review: test_held_orders.py).
    event, _ = stripe_events.purchase(sku="no-such-thing", payment_status="unpaid")
    assert await billing.outcome(event) == "failed"
    row = (await billing.fetch("SELECT status, detail FROM stripe_events"))[0]
    assert row["status"] == "failed" and "no-such-thing" in row["detail"]
    assert await billing.value("SELECT count(*) FROM orders") == 0


@pytest.mark.parametrize(
    ("platform_key", "applied_mode"),
    [(None, False), ("sk_test_" + "k" * 24, False), ("sk_live_" + "k" * 24, True)],
    ids=["no-key", "test-key", "live-key"],
)
async def test_a_platform_event_of_the_other_mode_than_the_key_is_recorded_not_applied(
    database_url: str,
    infra_settings: Any,
    billing_starter: Any,
    stripe_events: Any,
    platform_key: str | None,
    applied_mode: bool,
) -> None:
    """The platform key's mode decides (no key: the test checkout's, test), not the tenant's:
    the home seller's live tenant runs on a test key in development."""
    keyed = {"stripe_secret_key": platform_key, "stripe_api_base": "http://127.0.0.1:9"}
    billing = await billing_starter(database_url, infra_settings, **(keyed if platform_key else {}))
    try:
        wrong, _ = stripe_events.purchase()
        wrong = {**wrong, "livemode": not applied_mode}
        answer = await billing.deliver(wrong)
        assert answer.json()["status"] == "ignored"
        key_mode = "live" if applied_mode else "test"
        assert f"on a platform with a {key_mode}-mode key" in answer.json()["detail"]
        [row] = await billing.fetch(
            "SELECT status, mode, livemode FROM stripe_events WHERE id = $1", wrong["id"]
        )
        assert tuple(row) == ("ignored", "test" if applied_mode else "live", not applied_mode)
        # The operator's replay (of the home seller's live tenant, where it is moved to be
        # found) refuses it too.
        await billing.value("UPDATE stripe_events SET mode = 'live' WHERE id = $1", wrong["id"])
        replay = await billing.client.post(
            f"/v1/admin/webhook-events/{wrong['id']}/replay",
            headers={"authorization": f"Bearer {billing.token(role='admin')}"},
        )
        assert problem_type(replay) == "not-replayable", replay.text
        assert await billing.value("SELECT count(*) FROM orders") == 0

        right, _ = stripe_events.purchase()
        right = {**right, "livemode": applied_mode}
        assert await billing.outcome(right) == "processed"
        assert await billing.value("SELECT count(*) FROM orders") == 1
    finally:
        await billing.stop()

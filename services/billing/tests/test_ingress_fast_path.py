"""The ingress's fast path answers what the full stack answers and leaves everything else to
it; the recorder writes deliveries that arrive together in one statement, keeps one bad
delivery from failing the others, and counts repeats within a batch."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from tessera.billing.checkout import stripe_shapes as shapes
from tessera.billing.stripe_events.queries import Delivery
from tessera.billing.stripe_events.recorder import DeliveryRecorder
from tessera.billing.webhooks.fast_path import WebhookFastPath
from tessera.shared.db.pool import asyncpg_dsn
from tessera.shared.sellers import HOME_LIVE

VARYING = {"date", "x-request-id", "content-length"}


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    yield body  # no Content-Length: the fast path leaves such a request to the full stack


async def post(billing: Any, event: dict[str, Any], *, stream: bool, **headers: str) -> Any:
    body, signature = shapes.signed(
        event, billing.settings.stripe_webhook_secrets[0].get_secret_value()
    )
    return await billing.client.post(
        "/webhooks/stripe",
        content=chunked(body) if stream else body,
        headers={"stripe-signature": signature, "content-type": "application/json", **headers},
    )


async def test_the_fast_path_and_the_full_stack_give_the_same_answer(
    billing: Any, stripe_events: Any
) -> None:
    first, _ = stripe_events.purchase("fast@example.com")
    second, _ = stripe_events.purchase("full@example.com")
    fast = await post(billing, first, stream=False, **{"x-request-id": "caller-id-123"})
    assert isinstance(billing.app.front, WebhookFastPath)
    full = await post(billing, second, stream=True)
    assert fast.status_code == full.status_code == 200
    assert (
        fast.json()
        == full.json()
        == {
            "received": True,
            "status": "received",
            "detail": "recorded; it is applied in the background",
        }
    )
    # The acknowledgement is built in one place (webhooks/schemas.py): the same bytes.
    assert fast.content == full.content
    assert fast.headers["x-request-id"] == "caller-id-123"
    same = {k: v for k, v in fast.headers.items() if k not in VARYING}
    assert same == {k: v for k, v in full.headers.items() if k not in VARYING}
    repeat = await post(billing, first, stream=False)
    assert repeat.json()["status"] == "duplicate"
    for event in (first, second):
        assert await billing.settled(event["id"]) == "processed"


async def test_a_refused_delivery_is_rendered_by_the_full_stack(
    billing: Any, stripe_events: Any
) -> None:
    event, _ = stripe_events.purchase()
    body, _ = shapes.signed(event, "whsec_not_ours")
    response = await billing.client.post(
        "/webhooks/stripe",
        content=body,
        headers={
            "stripe-signature": shapes.signed(event, "whsec_not_ours")[1],
            "content-type": "application/json",
        },
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("signature-mismatch")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert await billing.value("SELECT count(*) FROM stripe_events") == 0


async def test_each_delivery_counts_once_against_the_rate_limit(
    database_url: str, infra_settings: Any, billing_starter: Any, stripe_events: Any
) -> None:
    """Refused deliveries go through both paths; a double count would refuse the third."""
    billing = await billing_starter(
        database_url, infra_settings, webhook_rate_limit="3/minute", run_workers=False
    )
    try:
        for n in range(2):
            event, _ = stripe_events.purchase(f"bad{n}@example.com")
            body, signature = shapes.signed(event, "whsec_not_ours")
            refused = await billing.client.post(
                "/webhooks/stripe",
                content=body,
                headers={"stripe-signature": signature, "content-type": "application/json"},
            )
            assert refused.status_code == 400
        third, _ = stripe_events.purchase("third@example.com")
        assert (await billing.deliver(third, settle=False)).status_code == 200
        fourth, _ = stripe_events.purchase("fourth@example.com")
        limited = await billing.deliver(fourth, settle=False)
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["retry-after"]) > 0
        assert await billing.value("SELECT count(*) FROM stripe_events") == 1
    finally:
        await billing.stop()


async def test_a_callers_trace_context_is_continued_into_the_recorded_event(
    billing: Any, stripe_events: Any
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    event, _ = stripe_events.purchase()
    response = await post(
        billing, event, stream=False, traceparent=f"00-{trace_id}-00f067aa0ba902b7-01"
    )
    assert response.status_code == 200
    stored = await billing.value("SELECT trace_headers FROM stripe_events")
    assert trace_id in json.loads(stored)["traceparent"]


def delivery(event_id: str, payload: str | None = None) -> Delivery:
    return Delivery(
        event_id=event_id,
        event_type="checkout.session.completed",
        livemode=False,
        created=datetime.now(UTC),
        payload=payload or json.dumps({"id": event_id, "data": {"object": {}}}),
        status="ignored",  # so that no applier picks these up
        detail="recorder test",
        trace_headers={},
        tenant=HOME_LIVE,
    )


@pytest.fixture
async def pool(billing: Any) -> asyncpg.Pool:
    result: asyncpg.Pool = billing.pool
    return result


async def test_deliveries_arriving_together_are_written_in_few_transactions(
    pool: asyncpg.Pool, billing: Any
) -> None:
    recorder = DeliveryRecorder()
    firsts = await asyncio.gather(
        *(recorder.record(pool, delivery(f"evt_together_{n}")) for n in range(60))
    )
    assert firsts == [True] * 60
    assert await billing.value("SELECT count(*) FROM stripe_events") == 60
    # xmin is the inserting transaction: one per batch, and 60 callers made very few.
    transactions = await billing.value("SELECT count(DISTINCT xmin::text) FROM stripe_events")
    assert 1 <= transactions <= 3


async def test_repeats_within_one_batch_have_one_first_and_are_all_counted(
    pool: asyncpg.Pool, billing: Any, eventually: Any
) -> None:
    recorder = DeliveryRecorder()
    ids = ["evt_repeated"] * 5 + [f"evt_other_{n}" for n in range(5)]
    firsts = await asyncio.gather(*(recorder.record(pool, delivery(i)) for i in ids))
    assert firsts[:5].count(True) == 1
    assert firsts[5:] == [True] * 5
    assert await attempts(billing, "evt_repeated") == 5  # folded into the one row it inserted
    again = await asyncio.gather(
        *(recorder.record(pool, delivery("evt_repeated")) for _ in range(3))
    )
    assert again == [False] * 3

    async def counted() -> bool:
        return await attempts(billing, "evt_repeated") == 8

    await eventually(counted)


async def attempts(billing: Any, event_id: str) -> int:
    return int(await billing.value("SELECT attempts FROM stripe_events WHERE id = $1", event_id))


async def test_one_unstorable_delivery_does_not_fail_its_batch(
    pool: asyncpg.Pool, billing: Any
) -> None:
    recorder = DeliveryRecorder()
    poisoned = delivery("evt_poisoned", '{"id": "evt_poisoned", "text": "\\u0000"}')
    results = await asyncio.gather(
        *(recorder.record(pool, delivery(f"evt_fine_{n}")) for n in range(5)),
        recorder.record(pool, poisoned),
        *(recorder.record(pool, delivery(f"evt_fine_{n}")) for n in range(5, 10)),
        return_exceptions=True,
    )
    assert isinstance(results[5], asyncpg.DataError)
    assert [r for i, r in enumerate(results) if i != 5] == [True] * 10
    assert await billing.value("SELECT count(*) FROM stripe_events") == 10
    assert await billing.value("SELECT count(*) FROM stripe_events WHERE id = 'evt_poisoned'") == 0


async def test_a_batch_the_database_cannot_take_fails_at_once_not_one_by_one(
    billing: Any,
) -> None:
    """A timeout is not one delivery's fault: its callers hear of it after one attempt
    (and the full stack answers them), not after one more attempt per delivery."""
    dsn = asyncpg_dsn(billing.database_url)
    impatient = await asyncpg.create_pool(dsn, min_size=1, max_size=2, command_timeout=0.5)
    holder = await asyncpg.connect(dsn)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE stripe_events IN ACCESS EXCLUSIVE MODE")
            recorder = DeliveryRecorder()
            started = time.monotonic()
            results = await asyncio.gather(
                *(recorder.record(impatient, delivery(f"evt_stuck_{n}")) for n in range(10)),
                return_exceptions=True,
            )
            elapsed = time.monotonic() - started
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert elapsed < 2.0, elapsed  # one timed-out statement, not eleven
        assert await billing.value("SELECT count(*) FROM stripe_events") == 0
    finally:
        await holder.close()
        await impatient.close()

"""Delivery to real receivers that verify signatures with the `standardwebhooks` library:
at least once through an outage, duplicates recognisable by their webhook-id, a hanging
receiver holding up no other endpoint, secrets rotated mid-stream, tenants apart."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from webhooks_factories import (  # type: ignore[import-not-found]
    A_LIVE,
    A_TEST,
    B_LIVE,
    Harness,
    Receiver,
    order_paid,
    receiving,
    until,
)

pytestmark = pytest.mark.integration


async def test_a_receiver_down_for_a_while_gets_every_event_once_it_is_up(
    harness: Harness,
) -> None:
    receiver = Receiver()  # not listening yet: connections are refused
    endpoint = await harness.endpoint(A_LIVE, receiver.url)
    receiver.secrets.append(endpoint["secret"])
    events = [order_paid(A_LIVE) for _ in range(5)]
    for event in events:
        await harness.publish(event)

    async def failed_twice() -> bool:
        n = await harness.fetchval(
            "SELECT count(*) FROM attempts WHERE error IS NOT NULL AND attempt >= 2"
        )
        return bool(n >= 5)

    await until(failed_twice)
    await receiver.start()
    try:
        expected = {f"evt_{e.event_id.hex}" for e in events}
        await until(lambda: receiver.ids() == expected)
        bodies = {r.webhook_id: r.json for r in receiver.verified()}
        paid = bodies[f"evt_{events[0].event_id.hex}"]
        assert paid["type"] == "order.paid"
        assert paid["id"] == f"evt_{events[0].event_id.hex}"
        assert paid["data"]["id"] == str(events[0].order_id)
        assert paid["data"]["customer"] == str(events[0].account_id)
        assert "seller_id" not in paid["data"] and "producer" not in paid
        # The receiver answers before the worker writes it down: wait for the queue.
        await until(lambda: _all_delivered(harness))
        assert len(receiver.verified()) >= 5
    finally:
        await receiver.stop()


async def _all_delivered(harness: Harness) -> bool:
    statuses = await harness.fetch("SELECT DISTINCT status FROM deliveries")
    return [r["status"] for r in statuses] == ["delivered"]


async def test_a_redelivered_bus_event_is_one_webhook_and_retries_repeat_its_id(
    harness: Harness,
) -> None:
    async with receiving(mode="fail") as receiver:
        endpoint = await harness.endpoint(A_LIVE, receiver.url)
        receiver.secrets.append(endpoint["secret"])
        event = order_paid(A_LIVE)
        # The same bus event twice, past JetStream's de-duplication (another message id).
        await harness.publish(event)
        await harness.publish(event, msg_id=str(uuid.uuid4()))
        await until(lambda: len(receiver.received) >= 3)
        receiver.mode = "ok"
        await until(lambda: receiver.verified())
        await until(lambda: _all_delivered(harness))
        await asyncio.sleep(0.5)  # nothing more arrives
        ids = Counter(r.webhook_id for r in receiver.received)
        assert list(ids) == [f"evt_{event.event_id.hex}"]
        assert len({r.body for r in receiver.received}) == 1  # the same bytes every time
        assert all(r.verified_with for r in receiver.received)
        assert await harness.fetchval("SELECT count(*) FROM deliveries") == 1
        attempts = await harness.fetchval("SELECT count(*) FROM attempts")
        assert attempts == len(receiver.received)
        assert await harness.fetchval("SELECT status FROM deliveries") == "delivered"


async def test_a_hanging_receiver_does_not_delay_another_endpoint(
    start_webhooks: Any,
) -> None:
    # Two slots per endpoint and four in all: without the per-endpoint cap the hanging
    # endpoint's backlog would take every slot for the whole attempt timeout.
    settings = {
        "max_in_flight": 4, "max_in_flight_per_endpoint": 2, "attempt_timeout_seconds": 10.0,
    }  # fmt: skip
    async with (
        start_webhooks(**settings) as h,
        receiving(mode="hang") as stuck,
        receiving() as healthy,
    ):
        slow = await h.endpoint(A_LIVE, stuck.url)
        fast = await h.endpoint(A_LIVE, healthy.url)
        stuck.secrets.append(slow["secret"])
        healthy.secrets.append(fast["secret"])
        events = [order_paid(A_LIVE) for _ in range(12)]
        started = time.monotonic()
        for event in events:
            await h.publish(event)
        await until(lambda: len(healthy.ids()) == 12, timeout=8)
        assert time.monotonic() - started < 8  # well inside one 10 s attempt timeout
        assert 1 <= len(stuck.received) <= 2  # never more than its own two slots


async def test_a_secret_rotated_mid_stream_verifies_with_either_during_the_overlap(
    harness: Harness,
) -> None:
    async with receiving() as old_only, receiving() as new_only:
        first = await harness.endpoint(A_LIVE, old_only.url)
        second = await harness.endpoint(A_LIVE, new_only.url)
        old_only.secrets.append(first["secret"])
        await harness.publish(order_paid(A_LIVE))
        await until(lambda: len(old_only.verified()) == 1)

        rotated = []
        for endpoint in (first, second):
            response = await harness.http.post(
                f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
                json={"overlap_seconds": 3},
                headers=harness.keys[A_LIVE],
            )
            assert response.status_code == 200, response.text
            rotated.append(response.json())
        new_only.secrets.append(rotated[1]["secret"])
        assert rotated[0]["secret"] != first["secret"]

        during = order_paid(A_LIVE)
        await harness.publish(during)
        await until(lambda: len(old_only.verified()) == 2 and len(new_only.verified()) == 1)
        signatures = old_only.verified()[-1].headers["webhook-signature"].split(" ")
        assert len(signatures) == 2  # both secrets sign during the overlap

        await asyncio.sleep(3.2)  # the overlap ends
        old_only.mode = new_only.mode = "ok"
        after = order_paid(A_LIVE)
        await harness.publish(after)
        await until(lambda: f"evt_{after.event_id.hex}" in new_only.ids())
        await until(
            lambda: any(r.webhook_id == f"evt_{after.event_id.hex}" for r in old_only.received)
        )
        late = [r for r in old_only.received if r.webhook_id == f"evt_{after.event_id.hex}"]
        assert late[0].verified_with == []  # the old secret no longer signs
        assert len(late[0].headers["webhook-signature"].split(" ")) == 1


async def test_tenants_never_see_each_others_events_or_endpoints(harness: Harness) -> None:
    async with receiving() as a_live, receiving() as a_test, receiving() as b_live:
        for tenant, receiver in ((A_LIVE, a_live), (A_TEST, a_test), (B_LIVE, b_live)):
            created = await harness.endpoint(tenant, receiver.url)
            receiver.secrets.append(created["secret"])
        for_a = order_paid(A_LIVE)
        for_b = order_paid(B_LIVE)
        await harness.publish(for_a)
        await harness.publish(for_b)
        await until(lambda: a_live.ids() and b_live.ids())
        await asyncio.sleep(0.5)
        assert a_live.ids() == {f"evt_{for_a.event_id.hex}"}
        assert b_live.ids() == {f"evt_{for_b.event_id.hex}"}
        assert a_test.received == []  # live events never reach a test-mode endpoint

        listed = await harness.http.get("/v1/webhook-endpoints", headers=harness.keys[B_LIVE])
        assert [e["url"] for e in listed.json()] == [b_live.url]
        # A's delivery log and replays are not B's to read or ask for.
        a_endpoint = (
            await harness.http.get("/v1/webhook-endpoints", headers=harness.keys[A_LIVE])
        ).json()[0]["id"]
        b_key = harness.keys[B_LIVE]
        for method, path, body in (
            ("GET", f"/v1/webhook-endpoints/{a_endpoint}", None),
            ("PATCH", f"/v1/webhook-endpoints/{a_endpoint}", {"enabled": False}),
            ("DELETE", f"/v1/webhook-endpoints/{a_endpoint}", None),
            ("POST", f"/v1/webhook-endpoints/{a_endpoint}/rotate-secret", {}),
            ("POST", f"/v1/webhook-endpoints/{a_endpoint}/test", None),
            ("GET", f"/v1/webhook-endpoints/{a_endpoint}/deliveries", None),
            (
                "POST",
                f"/v1/webhook-endpoints/{a_endpoint}/replay",
                {"since": "2020-01-01T00:00:00Z"},
            ),
        ):
            response = await harness.http.request(method, path, json=body, headers=b_key)
            assert response.status_code == 404, (method, path, response.text)
        # B's endpoint cannot replay A's event either.
        b_endpoint = listed.json()[0]["id"]
        response = await harness.http.post(
            f"/v1/webhook-endpoints/{b_endpoint}/replay",
            json={"event_id": f"evt_{for_a.event_id.hex}"},
            headers=b_key,
        )
        assert response.status_code == 404


async def test_an_event_larger_than_a_webhook_may_be_is_not_sent(start_webhooks: Any) -> None:
    async with start_webhooks(max_payload_bytes=1024) as h, receiving() as receiver:
        endpoint = await h.endpoint(A_LIVE, receiver.url)
        receiver.secrets.append(endpoint["secret"])
        huge = order_paid(A_LIVE, sku="x" * 2000)
        small = order_paid(A_LIVE)
        await h.publish(huge)
        await h.publish(small)
        await until(lambda: receiver.ids() == {f"evt_{small.event_id.hex}"})
        claimed = "SELECT count(*) FROM inbox WHERE event_id = $1"
        await until(lambda: h.fetchval(claimed, huge.event_id))  # consumed, not retried
        await asyncio.sleep(0.3)
        assert receiver.ids() == {f"evt_{small.event_id.hex}"}
        assert await h.fetchval("SELECT count(*) FROM events") == 1


async def test_two_replicas_deliver_each_event_once(start_webhooks: Any) -> None:
    async with start_webhooks() as first, start_webhooks(), receiving() as receiver:
        endpoint = await first.endpoint(A_LIVE, receiver.url)
        receiver.secrets.append(endpoint["secret"])
        events = [order_paid(A_LIVE) for _ in range(30)]
        await asyncio.gather(*(first.publish(e) for e in events))
        await until(lambda: len(receiver.ids()) == 30)
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 30  # none twice: each row leased by one replica


async def test_a_delivery_is_given_up_after_the_schedule_and_a_replay_sends_it_again(
    start_webhooks: Any,
) -> None:
    async with start_webhooks(retry_schedule=[0.1, 0.1]) as h, receiving(mode="fail") as receiver:
        endpoint = await h.endpoint(A_LIVE, receiver.url)
        receiver.secrets.append(endpoint["secret"])
        event = order_paid(A_LIVE)
        await h.publish(event)
        given_up = "SELECT attempts FROM deliveries WHERE status = 'failed'"
        assert await until(lambda: h.fetchval(given_up)) == 3  # the first, then two retries
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 3  # nothing after giving up
        receiver.mode = "ok"
        replayed = await h.http.post(
            f"/v1/webhook-endpoints/{endpoint['id']}/replay",
            json={"event_id": f"evt_{event.event_id.hex}"},
            headers=h.keys[A_LIVE],
        )
        assert replayed.status_code == 202
        await until(
            lambda: (
                receiver.ids() == {f"evt_{event.event_id.hex}"}
                and receiver.received[-1].verified_with
            )
        )
        await until(lambda: _all_delivered(h))


async def test_a_hanging_receiver_is_cut_off_at_the_attempt_timeout_and_retried(
    start_webhooks: Any,
) -> None:
    async with (
        start_webhooks(attempt_timeout_seconds=1.0) as h,
        receiving(mode="hang") as receiver,
    ):
        endpoint = await h.endpoint(A_LIVE, receiver.url)
        await h.publish(order_paid(A_LIVE))
        timed_out = "SELECT count(*) FROM attempts WHERE error LIKE 'timed out after 1s'"
        await until(lambda: h.fetchval(timed_out), timeout=10)
        latency = await h.fetchval("SELECT latency_ms FROM attempts ORDER BY id LIMIT 1")
        assert 900 <= latency < 3000
        await until(lambda: len(receiver.received) >= 2, timeout=10)  # retried
        assert endpoint["id"]


async def test_the_worker_is_woken_by_the_commit_not_its_poll(start_webhooks: Any) -> None:
    # Polls far apart: only the deliveries' NOTIFY (and the freed slots' wake-ups) can make
    # these arrive within seconds.
    async with start_webhooks(poll_seconds=30.0) as consumer, receiving() as receiver:
        endpoint = await consumer.endpoint(A_LIVE, receiver.url)
        receiver.secrets.append(endpoint["secret"])
        started = time.monotonic()
        events = [order_paid(A_LIVE) for _ in range(3)]
        for event in events:
            await consumer.publish(event)
        await until(lambda: len(receiver.ids()) == 3, timeout=10)
        assert time.monotonic() - started < 10


async def test_subscription_events_out_of_order_each_arrive_with_their_sequence(
    harness: Harness,
) -> None:
    from tessera.shared.events.billing import SubscriptionChanged

    async with receiving() as receiver:
        endpoint = await harness.endpoint(
            A_LIVE, receiver.url, event_types=["subscription.changed"]
        )
        receiver.secrets.append(endpoint["secret"])
        now = datetime.now(UTC)
        state: dict[str, Any] = {
            "subscription_id": "sub_1", "account_id": uuid.uuid4(), "product": "tool",
            "tier": "pro", "grants": {"seats": 1}, "interval": "month",
            "current_period_start": now, "current_period_end": now, "started_at": now,
            "seller_id": A_LIVE.seller_id, "mode": A_LIVE.mode,
        }  # fmt: skip
        later = SubscriptionChanged(**state, sequence=3, status="past_due")
        earlier = SubscriptionChanged(**state, sequence=2, status="active")
        await harness.publish(later)
        await harness.publish(earlier)
        await until(lambda: len(receiver.ids()) == 2)
        by_sequence = {
            r.json["data"]["sequence"]: r.json["data"]["status"] for r in receiver.verified()
        }
        assert by_sequence == {3: "past_due", 2: "active"}  # the receiver keeps the highest

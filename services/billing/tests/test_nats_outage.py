"""Webhooks keep being accepted while NATS is down; nothing is lost when it returns."""

from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def test_webhooks_during_a_nats_outage_are_accepted_then_delivered(
    database_url: str,
    own_nats: Any,
    infra_on: Any,
    billing_starter: Any,
    stripe_events: Any,
    eventually: Any,
) -> None:
    infra = infra_on(own_nats.url)
    billing = await billing_starter(database_url, infra)
    try:
        own_nats.stop()
        events = [stripe_events.purchase(f"outage{n}@example.com")[0] for n in range(5)]
        for event in events:
            response = await billing.deliver(event)
            assert response.status_code == 200
            assert await billing.settled(event["id"]) == "processed"
        assert await billing.value("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 5
        own_nats.start()

        async def all_paid() -> bool:
            return len(await billing.published("billing.order.paid.v1")) == 5

        await eventually(all_paid, timeout=30)
        assert len(await billing.published("billing.account.created.v1")) == 5
        assert await billing.value("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    finally:
        await billing.stop()

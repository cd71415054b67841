"""Test helpers for the platform plan (docs/sellers.md, "Platform plan"): live keys of a
non-home seller work only while its plan is active, so a test that uses one pays first,
either as auth would publish the result (a test running without auth) or as billing would
announce the payment (a test running auth). Real NATS, as everywhere in the tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import nats
from nats.js import JetStreamContext

from tessera.shared.directory.sellers import SellerBook
from tessera.shared.events.auth import SellerChanged
from tessera.shared.events.billing import SubscriptionEvent, SubscriptionGrants, SubscriptionStarted
from tessera.shared.events.envelope import Event
from tessera.shared.events.topology import SELLERS, Namespace, stream_for_subject
from tessera.shared.messaging import ensure_stream, stream_config
from tessera.shared.sellers import HOME_SELLER_ID


async def _held(books: Iterable[SellerBook], ids: list[UUID], timeout: float) -> None:
    """Wait until every book holds every seller's plan active."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not all(
        (entry := book.by_id(seller_id)) is not None and entry.plan_status == "active"
        for book in books
        for seller_id in ids
    ):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the plans of {ids} did not reach the books in {timeout}s")
        await asyncio.sleep(0.02)


async def publish_paid_sellers(
    js: JetStreamContext, ns: Namespace, seller_ids: Iterable[UUID], books: Iterable[SellerBook]
) -> None:
    """Each seller's directory record with its platform plan active, published on the
    SELLERS stream as auth would (a test running services without auth stands in for it);
    waits until every book holds them."""
    ids = list(seller_ids)
    await ensure_stream(js, stream_config(SELLERS, ns))
    for seller_id in ids:
        record = SellerChanged(
            seller_id=seller_id, mode="live", slug=f"paid-{seller_id.hex[:12]}",
            name="A paying seller", signup_policy="closed", status="active", version=1,
            plan_status="active",
        )  # fmt: skip
        await js.publish(
            ns.subject(record.publish_subject()), record.to_json(), stream=ns.stream(SELLERS)
        )
    await _held(list(books), ids, 10)


def platform_plan_event(
    paying: UUID,
    status: str = "active",
    sequence: int = 1,
    kind: type[SubscriptionEvent] = SubscriptionStarted,
    **values: Any,
) -> SubscriptionEvent:
    """An event of the home seller's live subscription to tier `platform` paid for by
    `paying`, as billing publishes it."""
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "subscription_id": f"sub_plan_{paying.hex}", "account_id": uuid4(),
        "product": "tessera", "tier": "platform", "grants": SubscriptionGrants(),
        "interval": "month", "current_period_start": now,
        "current_period_end": now + timedelta(days=30), "started_at": now,
        "seller_id": HOME_SELLER_ID, "mode": "live",
    }  # fmt: skip
    fields.update(values)
    return kind(platform_for=paying, status=status, sequence=sequence, **fields)


async def publish_events(nats_url: str, namespace: str, events: Iterable[Event]) -> None:
    """Publish events on their producer's stream, as the producer's relay would."""
    ns = Namespace(namespace)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for event in events:
            stream = ns.stream(stream_for_subject(event.subject))
            await js.publish(ns.subject(event.subject), event.to_json(), stream=stream)
    finally:
        await nc.close()


async def pay_platform_plans(
    nats_url: str, namespace: str, seller_ids: Iterable[UUID], books: Iterable[SellerBook]
) -> None:
    """Each seller's platform plan paid, as billing announces it to a running auth; waits
    until every book holds the plans active."""
    ids = list(seller_ids)
    await publish_events(nats_url, namespace, [platform_plan_event(s) for s in ids])
    await _held(list(books), ids, 20)

"""Retention: the sweep deletes log rows and events older than the horizon, in batches, and
never anything still due; a replay queueing an old event again holds it against a sweep
running at the same moment. Real receivers, real Postgres; old rows are made old by moving
their times back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from webhooks_factories import (  # type: ignore[import-not-found]
    A_LIVE,
    Harness,
    order_paid,
    receiving,
    until,
)

from tessera.webhooks.catalogue import service as catalogue
from tessera.webhooks.deliveries import queries, retention
from tessera.webhooks.deliveries.retention import Swept

pytestmark = pytest.mark.integration

DAY = 86400.0
HORIZON = 90 * DAY
PATH = "/v1/webhook-endpoints"


async def age(h: Harness, event_id: uuid.UUID, days: int) -> None:
    """The event kept, and every attempt at it, `days` ago."""
    conn = await asyncpg.connect(h.database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "UPDATE events SET created_at = created_at - make_interval(days => $2)"
                " WHERE id = $1", event_id, days,
            )  # fmt: skip
            await conn.execute(
                "UPDATE attempts SET attempted_at = attempted_at - make_interval(days => $2)"
                " WHERE event_id = $1", event_id, days,
            )  # fmt: skip
    finally:
        await conn.close()


def uuid_of(event: Any) -> uuid.UUID:
    return catalogue.event_uuid(f"evt_{event.event_id.hex}")


async def counts(h: Harness, event_id: uuid.UUID) -> tuple[int, int, int]:
    """(events, deliveries, attempts) of one event."""
    return (
        await h.fetchval("SELECT count(*) FROM events WHERE id = $1", event_id),
        await h.fetchval("SELECT count(*) FROM deliveries WHERE event_id = $1", event_id),
        await h.fetchval("SELECT count(*) FROM attempts WHERE event_id = $1", event_id),
    )


async def test_the_sweep_takes_what_is_old_and_over_and_leaves_what_is_due(
    start_webhooks: Any,
) -> None:
    async with (
        start_webhooks(retry_schedule=[3600.0]) as h,
        receiving() as good,
        receiving(mode="fail") as down,
    ):
        ok = await h.endpoint(A_LIVE, good.url)
        good.secrets.append(ok["secret"])
        old_done = order_paid(A_LIVE)
        await h.publish(old_done)
        await until(lambda: len(good.verified()) == 1)
        failing = await h.endpoint(A_LIVE, down.url)
        old_due, recent = order_paid(A_LIVE), order_paid(A_LIVE)
        for event in (old_due, recent):
            await h.publish(event)
        await until(lambda: len(good.verified()) == 3 and len(down.received) == 2)

        async def both_logged() -> bool:
            n = await h.fetchval("SELECT count(*) FROM attempts WHERE endpoint_id = $1",
                                 uuid.UUID(failing["id"]))  # fmt: skip
            return bool(n == 2)

        await until(both_logged)
        # Off, so its two deliveries stay due (pending) however long.
        off = await h.http.patch(
            f"{PATH}/{failing['id']}", json={"enabled": False}, headers=h.keys[A_LIVE]
        )
        assert off.status_code == 200
        for event in (old_done, old_due):
            await age(h, uuid_of(event), 100)
        pool = h.app.state.context.pool
        # Batches of one: the loop goes on until a batch comes back short.
        swept = await retention.sweep(pool, HORIZON, batch=1)
        after = {name: await counts(h, uuid_of(e))
                 for name, e in (("old_done", old_done), ("old_due", old_due), ("recent", recent))}  # fmt: skip
        failing_attempts = await h.fetchval(
            "SELECT count(*) FROM attempts WHERE endpoint_id = $1", uuid.UUID(failing["id"])
        )
        again = await retention.sweep(pool, HORIZON, batch=1000)
    # The old attempts of over deliveries (old_done's and old_due's at the good endpoint),
    # then old_done itself; old_due stays (a delivery still due) with its due delivery's log.
    assert swept == Swept(attempts=2, events=1)
    assert after == {"old_done": (0, 0, 0), "old_due": (1, 2, 1), "recent": (1, 2, 2)}
    assert failing_attempts == 2
    assert again == Swept(attempts=0, events=0)


async def test_a_replay_of_an_old_event_racing_the_sweep_keeps_it(start_webhooks: Any) -> None:
    async with start_webhooks() as h, receiving() as good:
        ok = await h.endpoint(A_LIVE, good.url)
        good.secrets.append(ok["secret"])
        old = order_paid(A_LIVE)
        await h.publish(old)
        await until(lambda: len(good.verified()) == 1)
        event_id = uuid_of(old)
        await age(h, event_id, 100)
        pool = h.app.state.context.pool
        # The replay's transaction queues the old event and has not committed when the
        # sweep runs: the sweep skips the event it holds.
        replay = await asyncpg.connect(h.database_url)
        try:
            tx = replay.transaction()
            await tx.start()
            assert await queries.queue_one(replay, uuid.UUID(ok["id"]), event_id)
            during = await asyncio.wait_for(retention.sweep(pool, HORIZON, batch=10), 10)
            await tx.commit()
        finally:
            await replay.close()
        # Committed, the delivery is due again: still kept, then delivered again.
        await until(lambda: len(good.verified()) == 2)
        kept = await counts(h, event_id)
    assert during.events == 0
    assert kept[0] == 1 and kept[1] == 1

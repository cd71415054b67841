"""Outbox and inbox against real Postgres and JetStream."""

import asyncio
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import nats
import pytest
from nats.js.api import StreamConfig

from tessera.shared import inbox, outbox
from tessera.shared.db.migrate import apply_migrations
from tessera.shared.events.billing import AccountCreated
from tessera.shared.outbox import OutboxRelay, OutboxRow, RelayError

pytestmark = pytest.mark.integration

NATS_URL = os.environ.get("TESSERA_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture
def no_service_migrations(tmp_path: Path) -> Path:
    """An empty service folder: only the kernel's migrations (outbox, inbox) apply."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    return folder


@pytest.fixture
async def pool(database_url: str, no_service_migrations: Path) -> Any:
    await asyncio.to_thread(apply_migrations, database_url, no_service_migrations)
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
    yield pool
    await pool.close()


def an_event(n: int = 0) -> AccountCreated:
    return AccountCreated(account_id=UUID(int=n + 1), email=f"buyer{n}@example.com")


async def add_events(pool: asyncpg.Pool, count: int) -> list[UUID]:
    events = [an_event(i) for i in range(count)]
    async with pool.acquire() as conn, conn.transaction():
        for event in events:
            await outbox.add(conn, event)
    return [e.event_id for e in events]


async def test_migrations_are_applied_once_even_when_run_concurrently(
    database_url: str, no_service_migrations: Path
) -> None:
    results = await asyncio.gather(
        *(
            asyncio.to_thread(apply_migrations, database_url, no_service_migrations)
            for _ in range(3)
        )
    )
    assert sorted(len(r) for r in results) == [0, 0, 1]


async def test_an_event_is_written_only_if_its_transaction_commits(pool: asyncpg.Pool) -> None:
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.add(conn, an_event())
            raise RuntimeError("the change failed")
    async with pool.acquire() as conn:
        assert await outbox.pending_count(conn) == 0
    await add_events(pool, 1)
    async with pool.acquire() as conn:
        assert await outbox.pending_count(conn) == 1


async def test_the_relay_publishes_each_row_once_and_marks_it(pool: asyncpg.Pool) -> None:
    ids = await add_events(pool, 5)
    seen: list[OutboxRow] = []

    async def publish(row: OutboxRow) -> None:
        seen.append(row)

    relay = OutboxRelay(pool, publish)
    assert await relay.relay_once() == 5
    assert await relay.relay_once() == 0
    assert [r.id for r in seen] == ids
    assert json.loads(seen[0].payload)["email"] == "buyer0@example.com"
    assert seen[0].subject == "billing.account.created.v1"


async def test_the_row_keeps_the_trace_context_of_its_transaction(pool: asyncpg.Pool) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("webhook") as span:
        await add_events(pool, 1)
        trace_id = format(span.get_span_context().trace_id, "032x")
    async with pool.acquire() as conn:
        headers = json.loads(await conn.fetchval("SELECT headers::text FROM outbox"))
    assert trace_id in headers["traceparent"]
    assert trace.get_current_span().get_span_context().is_valid is False


async def test_replicas_relaying_at_once_never_publish_a_row_twice(pool: asyncpg.Pool) -> None:
    await add_events(pool, 300)
    published: Counter[UUID] = Counter()

    async def slow_publish(row: OutboxRow) -> None:
        await asyncio.sleep(0.001)
        published[row.id] += 1

    relays = [OutboxRelay(pool, slow_publish, batch_size=25) for _ in range(3)]

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while n := await relay.relay_once():
            total += n
        return total

    totals = await asyncio.gather(*(drain(r) for r in relays))
    assert sum(totals) == 300
    assert len(published) == 300
    assert set(published.values()) == {1}


async def test_a_failed_publish_leaves_the_row_pending_with_its_error(pool: asyncpg.Pool) -> None:
    await add_events(pool, 2)

    async def down(row: OutboxRow) -> None:
        raise ConnectionError("nats is down")

    with pytest.raises(RelayError):
        await OutboxRelay(pool, down).relay_once()
    async with pool.acquire() as conn:
        assert await outbox.pending_count(conn) == 2
        row = await conn.fetchrow("SELECT attempts, last_error FROM outbox LIMIT 1")
    assert row["attempts"] == 1
    assert "nats is down" in row["last_error"]


async def test_the_relay_rides_out_a_nats_outage_and_catches_up(
    pool: asyncpg.Pool, own_nats: Any, eventually: Any
) -> None:
    nc = await nats.connect(own_nats.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="RELAYTEST", subjects=["billing.>"]))

    async def publish(row: OutboxRow) -> None:
        await js.publish(
            row.subject, row.payload.encode(), headers={"Nats-Msg-Id": str(row.id)}, timeout=1
        )

    relay = OutboxRelay(pool, publish, poll_interval=0.1, max_backoff=0.3)
    task = asyncio.create_task(relay.run())
    try:
        await add_events(pool, 3)

        async def stream_count() -> int:
            return (await js.stream_info("RELAYTEST")).state.messages

        await eventually(lambda: _equals(stream_count, 3))
        own_nats.stop()
        await add_events(pool, 4)
        await eventually(lambda: _not(relay_is_healthy(relay)), timeout=15)
        own_nats.start()
        await eventually(lambda: _equals(stream_count, 7), timeout=20)

        async def pending() -> int:
            async with pool.acquire() as conn:
                return await outbox.pending_count(conn)

        # Rows are marked published when the relay's transaction commits, just after the acks.
        await eventually(lambda: _equals(pending, 0))
    finally:
        task.cancel()
        await relay.close()
        await nc.close()


async def relay_is_healthy(relay: OutboxRelay) -> bool:
    return relay.healthy


async def _equals(get: Any, expected: int) -> bool:
    try:
        return bool(await get() == expected)
    except Exception:
        return False


async def _not(awaitable: Any) -> bool:
    return not await awaitable


async def test_the_inbox_claims_an_event_once_per_consumer(pool: asyncpg.Pool) -> None:
    event = an_event()

    async def claim(consumer: str) -> bool:
        async with pool.acquire() as conn, conn.transaction():
            return await inbox.claim(conn, event, consumer)

    results = await asyncio.gather(*(claim("auth.users") for _ in range(20)))
    assert results.count(True) == 1
    assert await claim("licensing.customers") is True


async def test_a_rolled_back_effect_releases_the_claim(pool: asyncpg.Pool) -> None:
    event = an_event()
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            assert await inbox.claim(conn, event, "auth.users")
            raise RuntimeError("effect failed")
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.claim(conn, event, "auth.users")


async def test_first_delivery_yields_the_claiming_transaction_once(pool: asyncpg.Pool) -> None:
    """The consumers' one helper: the effect commits with the claim; a redelivery (or a
    concurrent delivery) is handed None and applies nothing."""
    event = an_event()
    await pool.execute("CREATE TABLE IF NOT EXISTS inbox_effects (event_id uuid)")

    async def deliver() -> bool:
        async with inbox.first_delivery(pool, event, "auth.users") as conn:
            if conn is None:
                return False
            await conn.execute("INSERT INTO inbox_effects VALUES ($1)", event.event_id)
            return True

    results = await asyncio.gather(*(deliver() for _ in range(20)))
    assert results.count(True) == 1
    assert await deliver() is False
    effects = "SELECT count(*) FROM inbox_effects WHERE event_id = $1"
    assert await pool.fetchval(effects, event.event_id) == 1


async def test_first_delivery_rolls_back_the_claim_with_a_failed_effect(
    pool: asyncpg.Pool,
) -> None:
    event = an_event()
    await pool.execute("CREATE TABLE IF NOT EXISTS inbox_effects (event_id uuid)")
    with pytest.raises(RuntimeError):
        async with inbox.first_delivery(pool, event, "auth.users") as conn:
            assert conn is not None
            await conn.execute("INSERT INTO inbox_effects VALUES ($1)", event.event_id)
            raise RuntimeError("effect failed")
    effects = "SELECT count(*) FROM inbox_effects WHERE event_id = $1"
    assert await pool.fetchval(effects, event.event_id) == 0
    async with inbox.first_delivery(pool, event, "auth.users") as conn:
        assert conn is not None  # the redelivery applies it


async def test_a_keys_records_reach_its_record_stream_in_the_order_they_were_written(
    pool: asyncpg.Pool, namespace: str, jetstream_cleanup: None
) -> None:
    """APIKEYS keeps only the last message per key: a late older version must never land
    after a newer one, even when two relays publish at once and older ones publish slower."""
    from tessera.shared.events.auth import ApiKeyChanged
    from tessera.shared.events.topology import APIKEYS, Namespace
    from tessera.shared.messaging import ensure_stream, stream_config

    ns = Namespace(namespace)
    key_ids = [UUID(int=k + 1) for k in range(3)]
    async with pool.acquire() as conn, conn.transaction():
        for version in range(1, 6):
            for key_id in key_ids:
                await outbox.add(
                    conn,
                    ApiKeyChanged(
                        key_id=key_id, seller_id=UUID(int=9), key_hash="ab" * 32,
                        kind="secret", mode="live", version=version,
                        status="revoked" if version == 5 else "active",
                    ),
                )  # fmt: skip
    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream_config(APIKEYS, ns))
        order: list[tuple[str, int]] = []

        async def publish(row: OutboxRow) -> None:
            version = json.loads(row.payload)["version"]
            await asyncio.sleep((6 - version) * 0.005)  # the older, the slower
            await js.publish(
                ns.subject(row.subject), row.payload.encode(), stream=ns.stream(APIKEYS)
            )
            order.append((row.subject, version))

        relays = [OutboxRelay(pool, publish) for _ in range(2)]

        async def drain(relay: OutboxRelay) -> None:
            while True:
                await relay.relay_once()
                async with pool.acquire() as conn:
                    if await outbox.pending_count(conn) == 0:
                        return

        await asyncio.gather(*(drain(r) for r in relays))
        assert len(order) == 15
        for key_id in key_ids:
            subject = f"apikeys.{key_id}"
            assert [v for s, v in order if s == subject] == [1, 2, 3, 4, 5]
            last = await js.get_last_msg(ns.stream(APIKEYS), ns.subject(subject))
            assert json.loads(last.data or b"{}")["version"] == 5
    finally:
        await nc.close()

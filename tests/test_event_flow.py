"""Cross-service: an event leaves billing's outbox, crosses real JetStream, and is applied
exactly once by auth and by licensing — with duplicates, and across a NATS restart."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import nats
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tessera.auth.app import create_app as create_auth
from tessera.auth.settings import AuthSettings
from tessera.billing.accounts.service import find_or_create_account
from tessera.billing.app import create_app as create_billing
from tessera.billing.settings import BillingSettings
from tessera.licensing.app import create_app as create_licensing
from tessera.licensing.settings import LicensingSettings
from tessera.shared.events.billing import AccountCreated
from tessera.shared.events.topology import BILLING, Namespace
from tessera.shared.sellers import HOME_LIVE
from tessera.shared.telemetry import configure_tracing

pytestmark = pytest.mark.integration

SPANS = InMemorySpanExporter()


@pytest.fixture
async def stack(
    database_factory: Any,
    own_nats: Any,
    namespace: str,
    infra_on: Any,
    running: Any,
    stand_in_streams: Any,
) -> AsyncIterator[dict[str, Any]]:
    configure_tracing(
        "tests", extra_processors=(SimpleSpanProcessor(SPANS),), instrument_clients=True
    )
    infra = infra_on(own_nats.url)
    await stand_in_streams(own_nats.url, "WEBHOOKS")  # auth consumes it; webhooks is not run
    urls = {name: await database_factory(name) for name in ("billing", "auth", "licensing")}
    billing = create_billing(BillingSettings(database_url=urls["billing"]), infra)
    auth = create_auth(AuthSettings(database_url=urls["auth"]), infra)
    licensing = create_licensing(LicensingSettings(database_url=urls["licensing"]), infra)
    async with running(billing), running(auth), running(licensing):
        for app in (billing, auth, licensing):
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        yield {
            "billing": billing,
            "auth": auth,
            "licensing": licensing,
            "urls": urls,
            "nats": own_nats,
            "namespace": Namespace(namespace),
        }


async def create_account(stack: dict[str, Any], email: str) -> UUID:
    pool = stack["billing"].state.context.pool
    async with pool.acquire() as conn, conn.transaction():
        ref = await find_or_create_account(conn, HOME_LIVE, email, "purchase")
    return ref.id


async def count(url: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def users(stack: dict[str, Any]) -> int:
    return await count(stack["urls"]["auth"], "SELECT count(*) FROM users")


async def customers(stack: dict[str, Any]) -> int:
    return await count(stack["urls"]["licensing"], "SELECT count(*) FROM customers")


async def test_an_account_becomes_one_user_and_one_customer(
    stack: dict[str, Any], eventually: Any
) -> None:
    account_id = await create_account(stack, "Buyer@Example.com ")
    await eventually(lambda: _equals(users(stack), 1))
    await eventually(lambda: _equals(customers(stack), 1))
    row = await count(
        stack["urls"]["auth"],
        "SELECT count(*) FROM users WHERE account_id = $1 AND email = 'buyer@example.com'",
        account_id,
    )
    assert row == 1
    again = await create_account(stack, "buyer@example.com")
    assert again == account_id
    await asyncio.sleep(0.5)
    assert await users(stack) == 1


async def test_the_same_event_delivered_twice_has_one_effect(
    stack: dict[str, Any], eventually: Any
) -> None:
    await create_account(stack, "twice@example.com")
    await eventually(lambda: _equals(users(stack), 1))
    payload = await _outbox_payload(stack["urls"]["billing"])
    ns: Namespace = stack["namespace"]
    nc = await nats.connect(stack["nats"].url)
    try:
        js = nc.jetstream()
        # A new Nats-Msg-Id defeats JetStream's de-duplication: only the inbox stands between
        # this redelivery and a second user.
        for attempt in range(3):
            ack = await js.publish(
                ns.subject(AccountCreated.subject),
                payload.encode(),
                stream=ns.stream(BILLING),
                headers={"Nats-Msg-Id": f"replay-{attempt}", "content-type": "application/json"},
            )
            assert not ack.duplicate
    finally:
        await nc.close()

    async def consumed_all() -> bool:
        return await count(
            stack["urls"]["auth"], "SELECT count(*) FROM inbox"
        ) == 1 and await _acked(stack)

    await eventually(consumed_all)
    assert await users(stack) == 1
    # One user.created (the home seller's directory record is auth's other row).
    created = "SELECT count(*) FROM outbox WHERE subject = 'auth.user.created.v1'"
    assert await count(stack["urls"]["auth"], created) == 1


async def test_accounts_made_while_nats_is_down_arrive_once_after_it_returns(
    stack: dict[str, Any], eventually: Any
) -> None:
    await create_account(stack, "before@example.com")
    await eventually(lambda: _equals(users(stack), 1))
    stack["nats"].stop()
    for n in range(5):
        await create_account(stack, f"during{n}@example.com")
    transport = httpx.ASGITransport(app=stack["billing"])
    async with httpx.AsyncClient(transport=transport, base_url="http://billing") as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["nats"] == "down"
        assert ready.json()["checks"]["postgres"] == "ok"
    assert (
        await count(
            stack["urls"]["billing"], "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        )
        == 5
    )
    stack["nats"].start()
    await eventually(lambda: _equals(users(stack), 6), timeout=30)
    await eventually(lambda: _equals(customers(stack), 6), timeout=30)
    await asyncio.sleep(1.0)
    assert await users(stack) == 6
    assert await count(stack["urls"]["auth"], "SELECT count(DISTINCT email) FROM users") == 6


async def test_one_trace_follows_the_event_from_billing_to_its_consumers(
    stack: dict[str, Any], eventually: Any
) -> None:
    from opentelemetry import trace

    SPANS.clear()
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("purchase") as root:
        await create_account(stack, "traced@example.com")
        trace_id = root.get_span_context().trace_id
    await eventually(lambda: _equals(customers(stack), 1))
    await eventually(lambda: _equals(users(stack), 1))

    async def consumer_spans() -> list[str]:
        names = [
            s.name
            for s in SPANS.get_finished_spans()
            if s.context.trace_id == trace_id and s.kind == trace.SpanKind.CONSUMER
        ]
        subjects = {n.split(".", 1)[1].removesuffix(" process") for n in names}
        return names if len(names) >= 4 and "auth.user.created.v1" in subjects else []

    # auth's and licensing's consumers both continue the trace that wrote billing's outbox
    # row, and so do billing's and licensing's of the user auth made of it
    names = await eventually(consumer_spans)
    subjects = {n.split(".", 1)[1].removesuffix(" process") for n in names}
    assert subjects == {"billing.account.created.v1", "auth.user.created.v1"}, names
    relays = [
        s
        for s in SPANS.get_finished_spans()
        if s.context.trace_id == trace_id and s.name.startswith("outbox relay")
    ]
    assert relays


async def _outbox_payload(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SELECT payload::text FROM outbox LIMIT 1"))
    finally:
        await conn.close()


async def _acked(stack: dict[str, Any]) -> bool:
    ns: Namespace = stack["namespace"]
    nc = await nats.connect(stack["nats"].url)
    try:
        info = await nc.jetstream().consumer_info(
            ns.stream(BILLING), f"{ns.prefix}__auth__billing_account_created_v1"
        )
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)
    finally:
        await nc.close()


async def _equals(awaitable: Any, expected: int) -> bool:
    value = await awaitable
    return bool(value == expected)


async def test_two_replicas_of_a_consumer_apply_each_event_once(
    database_factory: Any,
    own_nats: Any,
    infra_on: Any,
    running: Any,
    eventually: Any,
    stand_in_streams: Any,
) -> None:
    infra = infra_on(own_nats.url)
    await stand_in_streams(own_nats.url, "WEBHOOKS")  # auth consumes it; webhooks is not run
    billing_url = await database_factory("billing")
    auth_url = await database_factory("auth")
    billing = create_billing(BillingSettings(database_url=billing_url), infra)
    replicas = [create_auth(AuthSettings(database_url=auth_url), infra) for _ in range(2)]
    async with running(billing), running(replicas[0]), running(replicas[1]):
        for app in (billing, *replicas):
            await asyncio.wait_for(app.state.context.messaging_ready.wait(), 30)
        pool = billing.state.context.pool
        for n in range(40):
            async with pool.acquire() as conn, conn.transaction():
                await find_or_create_account(conn, HOME_LIVE, f"replica{n}@example.com", "purchase")
        # and every one of them again, as a redelivery the de-duplication window cannot catch
        ns = Namespace(infra.namespace)
        payloads = [
            r["payload"]
            for r in await _rows(billing_url, "SELECT payload::text AS payload FROM outbox")
        ]
        nc = await nats.connect(own_nats.url)
        try:
            js = nc.jetstream()
            for i, payload in enumerate(payloads):
                await js.publish(
                    ns.subject(AccountCreated.subject), payload.encode(), stream=ns.stream(BILLING),
                    headers={"Nats-Msg-Id": f"again-{i}", "content-type": "application/json"},
                )  # fmt: skip
        finally:
            await nc.close()

        async def all_users() -> bool:
            return await count(auth_url, "SELECT count(*) FROM users") == 40

        await eventually(all_users, timeout=30)
        await eventually(lambda: _inbox_settled(auth_url, 40), timeout=30)
        await asyncio.sleep(1.0)
        assert await count(auth_url, "SELECT count(*) FROM users") == 40
        assert await count(auth_url, "SELECT count(DISTINCT email) FROM users") == 40
        assert (
            await count(
                auth_url, "SELECT count(*) FROM outbox WHERE subject = 'auth.user.created.v1'"
            )
            == 40
        )


async def _rows(url: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _inbox_settled(url: str, n: int) -> bool:
    return await count(url, "SELECT count(*) FROM inbox") == n

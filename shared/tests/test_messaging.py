"""JetStream consumers through FastStream on a real NATS server: the ack policy retries
with a delay, poison messages are dead-lettered, and consumer config changes apply."""

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import nats
import pytest
from faststream.nats import NatsRouter
from nats.js.api import DeliverPolicy

from tessera.shared.events.billing import PurchaseCompleted
from tessera.shared.events.topology import (
    AUTH,
    BILLING,
    WEBHOOKS,
    Namespace,
    Subscription,
    subscription,
)
from tessera.shared.messaging import (
    consumer_config,
    create_broker,
    declare_topology,
    ensure_consumer,
    ensure_stream,
    stream_config,
    subscriber,
)
from tessera.shared.settings import InfraSettings

pytestmark = pytest.mark.integration


def a_purchase(n: int = 1) -> PurchaseCompleted:
    return PurchaseCompleted(
        stripe_event_id=f"evt_{n}",
        checkout_session_id=f"cs_{n}",
        email="buyer@example.com",
        sku="chartgpt-lifetime",
        quantity=1,
        amount_total=19900,
        currency="usd",
    )


@pytest.fixture
def infra(own_nats: Any, namespace: str) -> InfraSettings:
    return InfraSettings(nats_url=own_nats.url, namespace=namespace, env="test")


async def publish(url: str, ns: Namespace, subject: str, payload: bytes, msg_id: str) -> Any:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        return await js.publish(
            ns.subject(subject), payload, stream=ns.stream(BILLING), headers={"Nats-Msg-Id": msg_id}
        )
    finally:
        await nc.close()


async def consumer_state(url: str, ns: Namespace, sub: Subscription) -> Any:
    nc = await nats.connect(url)
    try:
        return await nc.jetstream().consumer_info(ns.stream(sub.stream), ns.durable(sub))
    finally:
        await nc.close()


async def start_billing_consumer(infra: InfraSettings, handler: Any) -> Any:
    ns = Namespace(infra.namespace)
    broker = create_broker(infra, "billing", ns)
    router = NatsRouter()
    subscriber(router, "billing", ns, PurchaseCompleted)(handler)
    broker.include_router(router)
    connection = await broker.connect()
    # Billing also reads auth's stream: declared here as auth would (auth is not running).
    await ensure_stream(connection.jetstream(), stream_config(AUTH, ns))
    await declare_topology(connection, "billing", ns)
    await broker.start()
    return broker


async def test_a_failed_first_attempt_is_redelivered_after_a_delay(
    infra: InfraSettings, eventually: Any
) -> None:
    attempts: list[float] = []
    handled = asyncio.Event()

    async def flaky(event: PurchaseCompleted) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 1:
            raise ConnectionError("postgres blinked")
        handled.set()

    broker = await start_billing_consumer(infra, flaky)
    ns = Namespace(infra.namespace)
    try:
        await publish(
            str(infra.nats_url), ns, PurchaseCompleted.subject, a_purchase().to_json(), "m1"
        )
        await asyncio.wait_for(handled.wait(), 10)
        assert len(attempts) == 2
        first_delay = subscription("billing", PurchaseCompleted).retry_delay(1)
        assert attempts[1] - attempts[0] >= first_delay * 0.9
        sub = subscription("billing", PurchaseCompleted)

        async def settled() -> bool:
            info = await consumer_state(str(infra.nats_url), ns, sub)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await eventually(settled)
    finally:
        await broker.stop()


async def test_a_payload_that_cannot_decode_is_dead_lettered_not_retried(
    infra: InfraSettings, eventually: Any
) -> None:
    calls: list[PurchaseCompleted] = []

    async def handler(event: PurchaseCompleted) -> None:
        calls.append(event)

    broker = await start_billing_consumer(infra, handler)
    ns = Namespace(infra.namespace)
    sub = subscription("billing", PurchaseCompleted)
    try:
        await publish(
            str(infra.nats_url), ns, PurchaseCompleted.subject, b'{"not": "a purchase"}', "bad"
        )
        await publish(
            str(infra.nats_url), ns, PurchaseCompleted.subject, a_purchase(2).to_json(), "good"
        )
        await eventually(lambda: _true(len(calls) == 1))

        async def settled() -> bool:
            info = await consumer_state(str(infra.nats_url), ns, sub)
            return info.num_ack_pending == 0 and info.num_pending == 0

        await eventually(settled)
        await asyncio.sleep(1.0)
        info = await consumer_state(str(infra.nats_url), ns, sub)
        assert info.num_redelivered == 0
        assert len(calls) == 1
    finally:
        await broker.stop()


async def _true(value: bool) -> bool:
    return value


async def test_a_changed_consumer_config_is_applied_at_start(infra: InfraSettings) -> None:
    ns = Namespace(infra.namespace)
    nc = await nats.connect(str(infra.nats_url))
    try:
        js = nc.jetstream()
        await js.add_stream(stream_config(BILLING, ns))
        sub = subscription("billing", PurchaseCompleted)
        old = Subscription(
            service=sub.service,
            event=sub.event,
            stream=sub.stream,
            max_deliver=3,
            ack_wait=timedelta(seconds=5),
        )
        assert await ensure_consumer(js, ns.stream(BILLING), consumer_config(old, ns)) == "created"
        assert (
            await ensure_consumer(js, ns.stream(BILLING), consumer_config(old, ns)) == "unchanged"
        )
        assert await ensure_consumer(js, ns.stream(BILLING), consumer_config(sub, ns)) in {
            "updated",
            "recreated",
        }
        info = await js.consumer_info(ns.stream(BILLING), ns.durable(sub))
        assert info.config.max_deliver == sub.max_deliver
        assert info.config.ack_wait == sub.ack_wait.total_seconds()
    finally:
        await nc.close()


async def test_a_refused_change_recreates_the_consumer(infra: InfraSettings) -> None:
    ns = Namespace(infra.namespace)
    nc = await nats.connect(str(infra.nats_url))
    try:
        js = nc.jetstream()
        await js.add_stream(stream_config(BILLING, ns))
        sub = subscription("billing", PurchaseCompleted)
        wanted = consumer_config(sub, ns)
        stale = dataclasses.replace(wanted, deliver_policy=DeliverPolicy.NEW)
        await js.add_consumer(ns.stream(BILLING), stale)
        assert await ensure_consumer(js, ns.stream(BILLING), wanted) == "recreated"
        info = await js.consumer_info(ns.stream(BILLING), ns.durable(sub))
        assert info.config.deliver_policy == wanted.deliver_policy
    finally:
        await nc.close()


async def test_only_the_owner_declares_its_stream_and_consumers_wait_for_it(
    infra: InfraSettings,
) -> None:
    ns = Namespace(infra.namespace)
    broker = create_broker(infra, "auth", ns)
    connection = await broker.connect()
    try:
        waiting = asyncio.create_task(declare_topology(connection, "auth", ns, stream_wait=20))
        await asyncio.sleep(1.0)
        assert not waiting.done()  # auth does not create BILLING; it waits for billing to
        billing = create_broker(infra, "billing", ns)
        await declare_topology(await billing.connect(), "billing", ns)
        # Nor WEBHOOKS (the endpoint-disabled notices it mails): it waits for webhooks too.
        await asyncio.sleep(1.0)
        assert not waiting.done()
        await ensure_stream(connection.jetstream(), stream_config(WEBHOOKS, ns))  # as its owner
        await asyncio.wait_for(waiting, 10)
        js = connection.jetstream()
        names = {s.config.name for s in await js.streams_info()}
        assert ns.stream(BILLING) in names and ns.stream(WEBHOOKS) in names
        assert f"{ns.prefix.upper()}_AUTH" in names
        await billing.stop()
    finally:
        await broker.stop()


async def test_a_consumer_gives_up_with_a_clear_error_when_the_stream_never_appears(
    infra: InfraSettings,
) -> None:
    ns = Namespace(infra.namespace)
    broker = create_broker(infra, "licensing", ns)
    connection = await broker.connect()
    try:
        with pytest.raises(RuntimeError, match="BILLING does not exist"):
            await declare_topology(connection, "licensing", ns, stream_wait=0.5)
    finally:
        await broker.stop()


async def test_jetstream_drops_a_republished_id_within_the_window(infra: InfraSettings) -> None:
    ns = Namespace(infra.namespace)
    nc = await nats.connect(str(infra.nats_url))
    try:
        await nc.jetstream().add_stream(stream_config(BILLING, ns))
    finally:
        await nc.close()
    first = await publish(
        str(infra.nats_url), ns, PurchaseCompleted.subject, a_purchase().to_json(), "same-id"
    )
    second = await publish(
        str(infra.nats_url), ns, PurchaseCompleted.subject, a_purchase().to_json(), "same-id"
    )
    assert not first.duplicate
    assert second.duplicate

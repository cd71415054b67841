"""NATS JetStream plumbing: the broker, stream and consumer declaration, and the ack policy.

Three traps this module exists to avoid (each has a test):

- FastStream's default ack policy for JetStream terminates a message whose handler raised,
  so it is never redelivered. Consumers here use `AckPolicy.MANUAL` and `AckMiddleware`
  decides: ack on success, `nak` with a growing delay on failure, terminate (dead-letter)
  only a message that can never succeed or has used up its attempts.
- A durable consumer that already exists keeps its old config when the code changes it, and
  nats-py silently binds to it. `ensure_consumer` compares and updates (or recreates) it.
- Only the producer declares its stream; consumers wait for it to exist and never declare.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypeVar

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.nats import JStream, NatsBroker, NatsRouter, PullSub
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy as JsAckPolicy,
)
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError, ServerError
from pydantic import ValidationError

from tessera.shared.events.envelope import Event
from tessera.shared.events.topology import (
    Namespace,
    Stream,
    Subscription,
    streams_owned_by,
    subscription,
    subscriptions_of,
)
from tessera.shared.metrics import CONSUMER_DELIVERIES, CONSUMER_LAG, CONSUMER_REDELIVERIES
from tessera.shared.settings import InfraSettings

log = logging.getLogger("tessera.messaging")

E = TypeVar("E", bound=Event)
Handler = Callable[[E], Awaitable[None]]


def create_broker(infra: InfraSettings, service: str, namespace: Namespace) -> NatsBroker:
    """A broker that reconnects forever (an outage must never end the process's messaging)
    and carries W3C trace context in NATS headers."""
    return NatsBroker(
        str(infra.nats_url),
        name=f"tessera-{service}",
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        connect_timeout=2,
        middlewares=[NatsTelemetryMiddleware(), ack_middleware(service, namespace)],
        logger=logging.getLogger(f"tessera.{service}.broker"),
    )


def stream_config(stream: Stream, namespace: Namespace, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=namespace.stream(stream),
        subjects=[namespace.subject(f"{stream.root}.>")],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=stream.max_age.total_seconds() if stream.max_age else 0,
        duplicate_window=stream.duplicate_window.total_seconds(),
        max_msgs_per_subject=stream.max_msgs_per_subject,
        num_replicas=replicas,
    )


def consumer_config(sub: Subscription, namespace: Namespace) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=namespace.durable(sub),
        description=f"{sub.service} consumes {sub.event.subject}",
        filter_subject=namespace.subject(sub.event.subject),
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=JsAckPolicy.EXPLICIT,
        ack_wait=sub.ack_wait.total_seconds(),
        max_deliver=sub.max_deliver,
        max_ack_pending=sub.max_ack_pending,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> str:
    """Create the stream, or bring an existing one to `config`. Returns what it did."""
    assert config.name
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        return "created"
    current = info.config
    if (
        sorted(current.subjects or []) == sorted(config.subjects or [])
        and (current.max_age or 0) == (config.max_age or 0)
        and current.duplicate_window == config.duplicate_window
        and (current.max_msgs_per_subject or -1) == (config.max_msgs_per_subject or -1)
        and current.num_replicas == config.num_replicas
    ):
        return "unchanged"
    await js.update_stream(config)
    return "updated"


CONSUMER_FIELDS = (
    "filter_subject",
    "deliver_policy",
    "ack_policy",
    "ack_wait",
    "max_deliver",
    "max_ack_pending",
    "description",
)


def consumer_differences(current: ConsumerConfig, wanted: ConsumerConfig) -> list[str]:
    return [f for f in CONSUMER_FIELDS if getattr(current, f) != getattr(wanted, f)]


async def ensure_consumer(
    js: JetStreamContext, stream: str, config: ConsumerConfig
) -> Literal["created", "updated", "recreated", "unchanged"]:
    """Create the durable consumer, or make an existing one match `config`.

    An existing consumer is updated in place where the server allows it; a change the
    server refuses (e.g. deliver policy) deletes and recreates it, which replays the stream
    from the start: safe, because every consumer is idempotent through its inbox.
    """
    assert config.durable_name
    try:
        info = await js.consumer_info(stream, config.durable_name)
    except NotFoundError:
        await js.add_consumer(stream, config)
        return "created"
    changed = consumer_differences(info.config, config)
    if not changed:
        return "unchanged"
    log.warning(
        "messaging.consumer.config_changed",
        extra={"consumer": config.durable_name, "fields": changed},
    )
    try:
        await js.add_consumer(stream, config)  # same durable name: the server updates it
        return "updated"
    except (BadRequestError, ServerError):  # e.g. "deliver policy can not be updated"
        await js.delete_consumer(stream, config.durable_name)
        await js.add_consumer(stream, config)
        return "recreated"


async def wait_for_stream(js: JetStreamContext, name: str, timeout: float) -> None:
    """Consumers never declare a producer's stream; they wait for the producer to."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await js.stream_info(name)
            return
        except NotFoundError:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(
                    f"stream {name} does not exist after {timeout:.0f}s: is its producer running?"
                ) from None
            await asyncio.sleep(0.5)


async def declare_topology(
    client: Client,
    service: str,
    namespace: Namespace,
    *,
    replicas: int = 1,
    stream_wait: float = 60.0,
) -> None:
    """Declare the streams `service` owns and the durable consumers it reads from."""
    js = client.jetstream()
    for stream in streams_owned_by(service):
        outcome = await ensure_stream(js, stream_config(stream, namespace, replicas))
        log.info("messaging.stream.%s", outcome, extra={"stream": namespace.stream(stream)})
    for sub in subscriptions_of(service):
        stream_name = namespace.stream(sub.stream)
        await wait_for_stream(js, stream_name, stream_wait)
        outcome = await ensure_consumer(js, stream_name, consumer_config(sub, namespace))
        log.info("messaging.consumer.%s", outcome, extra={"consumer": namespace.durable(sub)})


def subscriber(
    router: NatsRouter,
    service: str,
    namespace: Namespace,
    event: type[E],
    *,
    batch_size: int = 16,
    max_workers: int = 4,
) -> Callable[[Handler[E]], Handler[E]]:
    """Register `func` as the handler of `service`'s durable consumer for `event`.

    The handler receives the decoded payload; it must be idempotent (claim the event in
    the inbox in the same transaction as its effect) and raise to ask for a redelivery.
    Up to `max_workers` messages are handled at once: a handler spends most of its time
    waiting for Postgres, and one at a time capped a consumer at the inverse of one
    transaction's latency. No event's meaning depends on the order of two messages of the
    same subject (each is claimed once, per event, in the inbox).
    """
    sub = subscription(service, event)

    def register(func: Handler[E]) -> Handler[E]:
        router.subscriber(
            namespace.subject(event.subject),
            stream=JStream(namespace.stream(sub.stream), declare=False),
            durable=namespace.durable(sub),
            config=consumer_config(sub, namespace),
            pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
            max_workers=max_workers,
            ack_policy=AckPolicy.MANUAL,
            title=f"{service}:{event.subject}",
            description=(func.__doc__ or "").strip() or None,
        )(func)
        return func

    return register


# A payload that does not decode will never succeed: retrying it only delays the queue.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (ValidationError, UnicodeDecodeError)


def ack_middleware(service: str, namespace: Namespace) -> Callable[..., BaseMiddleware]:
    by_durable = {namespace.durable(s): s for s in subscriptions_of(service)}

    class AckMiddleware(BaseMiddleware):
        """Ack on success; nak with a delay on failure; terminate when hopeless."""

        async def consume_scope(
            self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
        ) -> Any:
            raw = msg.raw_message
            try:
                metadata = raw.metadata
            except Exception:  # a plain NATS message (e.g. `ApiKeysUsed`): nothing to ack
                metadata = None
            sub = by_durable.get(getattr(metadata, "consumer", "") or "")
            if sub is None or metadata is None:
                return await call_next(msg)
            labels = lag_labels(sub)
            if (metadata.num_delivered or 1) > 1:
                CONSUMER_REDELIVERIES.add(1, labels)
            try:
                result = await call_next(msg)
            except Exception as error:
                outcome = await settle_failure(msg, sub, metadata.num_delivered, error)
                CONSUMER_DELIVERIES.add(1, {**labels, "outcome": outcome})
                raise
            await msg.ack()
            CONSUMER_DELIVERIES.add(1, {**labels, "outcome": "acked"})
            return result

    return AckMiddleware


def lag_labels(sub: Subscription) -> dict[str, str]:
    return {
        "messaging.consumer.group.name": sub.durable,
        "messaging.destination.name": sub.event.subject,
    }


async def sample_consumer_lag(js: JetStreamContext, service: str, namespace: Namespace) -> None:
    """Record each of `service`'s durable consumers' lag once, from JetStream's consumer info:
    the messages not yet delivered plus those delivered and not yet acked (a handler that
    hangs holds its batch un-acked, so undelivered alone would read 0)."""
    for sub in subscriptions_of(service):
        info = await js.consumer_info(namespace.stream(sub.stream), namespace.durable(sub))
        lag = (info.num_pending or 0) + (info.num_ack_pending or 0)
        CONSUMER_LAG.set(lag, lag_labels(sub))


async def measure_consumer_lag(
    client: Client, service: str, namespace: Namespace, every: float
) -> None:
    """Sample the lag every `every` seconds (run only when metrics are exported), so that a
    stalled consumer's lag keeps rising instead of freezing at its last delivery."""
    js = client.jetstream()
    while True:
        try:
            await sample_consumer_lag(js, service, namespace)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a missed sample (NATS away), not a failure
            log.debug("messaging.consumer_lag.unmeasured", extra={"error": repr(error)})
        await asyncio.sleep(every)


async def settle_failure(
    msg: StreamMessage[Any], sub: Subscription, attempt: int, error: Exception
) -> Literal["retried", "dead_lettered"]:
    subject = getattr(msg.raw_message, "subject", "?")
    context = {"consumer": sub.durable, "subject": subject, "attempt": attempt}
    if isinstance(error, PERMANENT_ERRORS) or attempt >= sub.max_deliver:
        # Terminated messages stay in the stream (limits retention) and NATS publishes a
        # MSG_TERMINATED advisory, so an operator can inspect and replay them.
        log.error("messaging.event.dead_lettered", extra={**context, "error": repr(error)})
        await msg.reject()
        return "dead_lettered"
    delay = sub.retry_delay(attempt)
    log.warning(
        "messaging.event.retry_scheduled", extra={**context, "delay": delay, "error": repr(error)}
    )
    await msg.nack(delay=delay)  # type: ignore[call-arg]  # NatsMessage.nack takes a delay
    return "retried"


def subjects_of(events: Iterable[type[Event]]) -> list[str]:
    return [e.subject for e in events]

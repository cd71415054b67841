"""The intake: webhooks consumes every bus event it has a public translation for
(catalogue/service.py) and fans each out to the tenant's endpoints, once per bus event
(inbox)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faststream.nats import NatsRouter

from tessera.shared import inbox
from tessera.shared.events.envelope import Event
from tessera.shared.messaging import subscriber
from tessera.webhooks.catalogue import service
from tessera.webhooks.context import Webhooks
from tessera.webhooks.deliveries import service as deliveries

CONSUMER = "webhooks"


async def on_event(webhooks: Webhooks, event: Event) -> int:
    """Translate, keep and queue: the inbox claim and the deliveries commit together, so a
    redelivered bus event queues nothing twice. Returns how many deliveries were queued."""
    public = service.translate(event)
    async with inbox.first_delivery(webhooks.pool, event, CONSUMER) as conn:
        if conn is None or public is None:
            return 0
        # The deliveries' insert NOTIFYs every replica's worker at commit.
        return await deliveries.fan_out(
            conn, event.tenant, public, webhooks.settings.max_payload_bytes
        )


def handler_for(webhooks: Webhooks, event_type: type[Event]) -> Callable[[Any], Awaitable[None]]:
    async def handle(event: Any) -> None:
        await on_event(webhooks, event)

    # FastStream decodes the payload into the annotated model.
    handle.__annotations__ = {"event": event_type, "return": None}
    handle.__name__ = f"on_{event_type.subject.replace('.', '_')}"
    handle.__doc__ = f"{event_type.subject} as public webhook events."
    return handle


def register(webhooks: Webhooks, router: NatsRouter) -> None:
    for event_type in service.TRANSLATIONS:
        subscriber(router, webhooks.name, webhooks.namespace, event_type)(
            handler_for(webhooks, event_type)
        )

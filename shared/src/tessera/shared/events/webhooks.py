"""Events produced by webhooks (stream WEBHOOKS)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from tessera.shared.events.envelope import Event


class WebhooksEvent(Event):
    producer: Literal["webhooks"] = "webhooks"


class EndpointDisabled(WebhooksEvent):
    """A seller's webhook endpoint was turned off by the delivery worker: every attempt
    failed for longer than webhooks' `DISABLE_AFTER_SECONDS` (docs/webhooks.md, "Disabled
    endpoints"). The envelope's seller and mode are the endpoint's tenant; auth mails the
    seller's owners."""

    subject: ClassVar[str] = "webhooks.endpoint.disabled.v1"

    endpoint_id: UUID
    url: str
    description: str = ""
    # Since when every attempt failed.
    failing_since: datetime

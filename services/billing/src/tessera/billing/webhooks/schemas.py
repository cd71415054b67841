"""What the webhook ingress answers Stripe: built here, for the fast path and the route."""

from __future__ import annotations

from pydantic import BaseModel

from tessera.billing.webhooks.service import Outcome


class WebhookAck(BaseModel):
    """`received` (applied in the background a moment later), `duplicate` or `ignored`."""

    received: bool = True
    status: str
    detail: str


def acknowledgement(outcome: Outcome) -> bytes:
    """The JSON body of the 200 that tells Stripe the delivery is taken care of."""
    return WebhookAck(status=outcome.status, detail=outcome.detail).model_dump_json().encode()

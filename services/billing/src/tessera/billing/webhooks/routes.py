"""`POST /webhooks/stripe`: what Stripe sends, and nothing else."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from tessera.billing.settings import BillingSettings
from tessera.billing.webhooks import service, signature
from tessera.billing.webhooks.stripe_objects import StripeEvent
from tessera.shared.http.context import client_ip
from tessera.shared.service import RuntimeDep
from tessera.shared.synced_limits import Rule

router = APIRouter(tags=["stripe"])


class WebhookAck(BaseModel):
    """`received` (applied in the background a moment later), `duplicate` or `ignored`."""

    received: bool = True
    status: str
    detail: str


@functools.cache
def webhook_rule(spec: str) -> Rule:
    return Rule.parse("webhook", spec)


@router.post(
    "/webhooks/stripe",
    response_model=WebhookAck,
    summary="Stripe webhook ingress",
    responses={400: {"description": "Unsigned, stale, or malformed"}, 413: {}, 429: {}},
)
async def receive_stripe_event(request: Request, runtime: RuntimeDep) -> WebhookAck:
    settings = runtime.settings
    assert isinstance(settings, BillingSettings)
    runtime.hot_path_limiter().enforce(
        (webhook_rule(settings.webhook_rate_limit), client_ip(request))
    )
    payload = await request.body()
    signature.verify(
        payload,
        request.headers.get("stripe-signature"),
        [s.get_secret_value() for s in settings.stripe_webhook_secrets],
        settings.stripe_webhook_tolerance,
    )
    try:
        event = StripeEvent.model_validate_json(payload)
    except ValidationError:
        raise signature.PayloadMalformed("The body is not a Stripe event object.") from None
    outcome = await service.receive(runtime.db(), event, payload.decode())
    return WebhookAck(status=outcome.status, detail=outcome.detail)

"""`POST /webhooks/stripe`: what Stripe sends, and nothing else."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from tessera.billing.settings import BillingSettings
from tessera.billing.stripe import signature
from tessera.billing.stripe.objects import StripeEvent
from tessera.billing.webhooks import service
from tessera.billing.webhooks.metrics import delivered
from tessera.billing.webhooks.recorder import DeliveryRecorder
from tessera.shared.http.context import client_ip
from tessera.shared.service import Runtime, RuntimeDep
from tessera.shared.synced_limits import Rule

router = APIRouter(tags=["stripe"])

PATH = "/webhooks/stripe"


class WebhookAck(BaseModel):
    """`received` (applied in the background a moment later), `duplicate` or `ignored`."""

    received: bool = True
    status: str
    detail: str


@functools.cache
def webhook_rule(spec: str) -> Rule:
    return Rule.parse("webhook", spec)


def limit_of(runtime: Runtime, ip: str) -> tuple[Rule, str]:
    """The rate-limit hit a delivery from `ip` counts."""
    settings = runtime.settings
    assert isinstance(settings, BillingSettings)
    return webhook_rule(settings.webhook_rate_limit), ip


async def ingest(
    runtime: Runtime, recorder: DeliveryRecorder, payload: bytes, stripe_signature: str | None
) -> service.Outcome:
    """Verify, parse and record one delivery (the same for the fast path and the full
    stack); raises the `SignatureProblem` that says what is wrong with it."""
    settings = runtime.settings
    assert isinstance(settings, BillingSettings)
    signature.verify(
        payload,
        stripe_signature,
        [s.get_secret_value() for s in settings.stripe_webhook_secrets],
        settings.stripe_webhook_tolerance,
    )
    try:
        event = StripeEvent.model_validate_json(payload)
    except ValidationError:
        raise signature.PayloadMalformed("The body is not a Stripe event object.") from None
    outcome = await service.receive(recorder, runtime.db(), event, payload.decode())
    delivered(outcome.status)  # once: the fast path hands on only what did not get here
    return outcome


@router.post(
    PATH,
    response_model=WebhookAck,
    summary="Stripe webhook ingress",
    responses={400: {"description": "Unsigned, stale, or malformed"}, 413: {}, 429: {}},
)
async def receive_stripe_event(request: Request, runtime: RuntimeDep) -> WebhookAck:
    runtime.hot_path_limiter().enforce(limit_of(runtime, client_ip(request)))
    payload = await request.body()
    try:
        outcome = await ingest(
            runtime, request.app.state.deliveries, payload, request.headers.get("stripe-signature")
        )
    except signature.SignatureProblem as problem:
        delivered("rejected", problem.slug)
        raise
    return WebhookAck(status=outcome.status, detail=outcome.detail)

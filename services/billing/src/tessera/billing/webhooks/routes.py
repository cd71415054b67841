"""`POST /webhooks/stripe` (the platform's events) and `POST /webhooks/stripe/connect`
(connected accounts' events): what Stripe sends, and nothing else."""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request, Response

from tessera.billing.context import Billing, BillingDep
from tessera.billing.stripe import signature
from tessera.billing.webhooks import service
from tessera.billing.webhooks.metrics import delivered
from tessera.billing.webhooks.schemas import WebhookAck, acknowledgement
from tessera.shared.http.context import client_ip
from tessera.shared.sellers import Tenant
from tessera.shared.synced_limits import Rule

router = APIRouter(tags=["stripe"])

PATH = "/webhooks/stripe"
CONNECT_PATH = "/webhooks/stripe/connect"


@functools.cache
def webhook_rule(spec: str) -> Rule:
    return Rule.parse("webhook", spec)


def limit_of(billing: Billing, ip: str) -> tuple[Rule, str]:
    """The rate-limit hit a delivery from `ip` counts."""
    return webhook_rule(billing.settings.webhook_rate_limit), ip


@router.post(
    PATH,
    response_model=WebhookAck,
    summary="Stripe webhook ingress",
    responses={400: {"description": "Unsigned, stale, or malformed"}, 413: {}, 429: {}},
)
async def receive_stripe_event(request: Request, billing: BillingDep) -> Response:
    return await _receive(request, billing, billing.stripe_tenant)


@router.post(
    CONNECT_PATH,
    response_model=WebhookAck,
    summary="Stripe Connect webhook ingress (connected accounts' events)",
    responses={400: {"description": "Unsigned, stale, or malformed"}, 413: {}, 429: {}},
)
async def receive_connect_event(request: Request, billing: BillingDep) -> Response:
    return await _receive(request, billing, None)


async def _receive(request: Request, billing: Billing, platform: Tenant | None) -> Response:
    """`platform`: the platform endpoint's tenant; None: the Connect endpoint."""
    billing.synced_limiter.enforce(limit_of(billing, client_ip(request)))
    payload = await request.body()
    try:
        outcome = await service.ingest(
            billing.settings,
            billing.deliveries,
            billing.pool,
            platform,
            payload,
            request.headers.get("stripe-signature"),
        )
    except signature.SignatureProblem as problem:
        delivered("rejected", problem.slug)
        raise
    return Response(acknowledgement(outcome), media_type="application/json")

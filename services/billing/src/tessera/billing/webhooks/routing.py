"""Whose data a verified Stripe event is: the platform endpoint's events are the tenant
billing's own Stripe account serves (`Billing.stripe_tenant`); a Connect endpoint's event
names its connected `account`, and is the tenant that has that account connected in the
event's mode (`livemode`). An event no tenant owns (an account nobody has connected, or
has disconnected; an event on the wrong endpoint) is recorded under the home seller in its
mode, `ignored` with the reason, for the operator to see, and never applied."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from tessera.billing.stripe import connections
from tessera.billing.stripe.objects import StripeEvent
from tessera.shared.sellers import HOME_SELLER_ID, Mode, Tenant

log = logging.getLogger("tessera.billing.webhooks")


@dataclass(frozen=True)
class Routed:
    tenant: Tenant
    # Why the event is recorded but never applied; None: it is the tenant's to apply.
    unrouted: str | None = None


def _unrouted(event: StripeEvent, mode: Mode, why: str) -> Routed:
    log.warning(
        "billing.webhook.unrouted",
        extra={"stripe_event": event.id, "account": event.account, "reason": why},
    )
    return Routed(Tenant(HOME_SELLER_ID, mode), f"{why}; recorded, not applied")


async def route(pool: asyncpg.Pool, platform: Tenant | None, event: StripeEvent) -> Routed:
    """`platform`: the platform endpoint's tenant; None: the Connect endpoint."""
    mode: Mode = "live" if event.livemode else "test"
    if platform is not None:
        if event.account is None:
            return Routed(platform)
        return _unrouted(
            event, mode, f"an event of connected account {event.account} on the platform endpoint"
        )
    if event.account is None:
        return _unrouted(event, mode, "an event without `account` on the Connect endpoint")
    tenant = await connections.tenant_of(pool, event.account, mode)
    if tenant is None:
        return _unrouted(event, mode, f"{event.account} is connected to no seller in {mode} mode")
    return Routed(tenant)

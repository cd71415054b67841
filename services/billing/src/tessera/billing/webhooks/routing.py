"""Whose data a verified Stripe event is: the platform endpoint's events are the tenant
billing's own Stripe account serves (`Billing.stripe_tenant`), if their `livemode` is the
platform key's; a Connect endpoint's event names its connected `account`, and is the tenant
that has that account connected in the event's mode (`livemode`).

An event of an account no seller has connected in that mode waits for one (`held`,
stripe_events/awaiting.py): Stripe sends an account's events as soon as it authorizes the
platform, before the seller has confirmed the connection. Any other event no tenant owns (a
platform event of the other Stripe mode than the platform key's, a connected account's
event on the platform endpoint, a Connect event without `account`) is recorded under the
home seller in its mode, `ignored` with the reason, for the operator to see, and never
applied."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from tessera.billing.stripe import connections
from tessera.billing.stripe.objects import StripeEvent
from tessera.billing.stripe_events.awaiting import EXPIRY, waiting_tenant
from tessera.shared.sellers import HOME_SELLER_ID, Mode, Tenant

log = logging.getLogger("tessera.billing.webhooks")


@dataclass(frozen=True)
class Routed:
    tenant: Tenant
    # Why the event is recorded but never applied; None: it is the tenant's to apply.
    unrouted: str | None = None
    # Why the event waits (for a connection of its account); None: it does not.
    waiting: str | None = None


def _unrouted(event: StripeEvent, mode: Mode, why: str) -> Routed:
    log.warning(
        "billing.webhook.unrouted",
        extra={"stripe_event": event.id, "account": event.account, "reason": why},
    )
    return Routed(Tenant(HOME_SELLER_ID, mode), f"{why}; recorded, not applied")


def _waiting(account: str, mode: Mode) -> Routed:
    return Routed(
        waiting_tenant(mode),
        waiting=f"{account} is connected to no seller in {mode} mode yet; held until one"
        f" connects it (for {EXPIRY.days} days)",
    )


async def route(
    pool: asyncpg.Pool, platform: Tenant | None, platform_mode: Mode, event: StripeEvent
) -> Routed:
    """`platform`: the platform endpoint's tenant; None: the Connect endpoint.
    `platform_mode`: the Stripe mode of the platform's key (its events' `livemode`)."""
    mode: Mode = "live" if event.livemode else "test"
    if platform is not None:
        if event.account is not None:
            return _unrouted(
                event,
                mode,
                f"an event of connected account {event.account} on the platform endpoint",
            )
        if mode != platform_mode:
            # The tenant's mode is not the point (a dev stack serves the home seller's live
            # tenant on a test key): the platform's account sends events of its key's mode.
            return _unrouted(
                event, mode, f"a {mode}-mode event on a platform with a {platform_mode}-mode key"
            )
        return Routed(platform)
    if event.account is None:
        return _unrouted(event, mode, "an event without `account` on the Connect endpoint")
    connection = await connections.of_account(pool, event.account, mode)
    if connection is None:
        return _waiting(event.account, mode)
    if event.created < int(connection.authorized_at.timestamp()):
        # Made before this connection was authorized: a late delivery from an earlier
        # connection of the account, perhaps another seller's (the rule held events follow).
        return _unrouted(
            event,
            mode,
            f"made before {event.account} authorized its current connection",
        )
    return Routed(connection.tenant)

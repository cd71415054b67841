"""Receive a verified Stripe event (record it once, answer at once) and apply it.

The ingress only records: one statement, so Stripe hears 200 in milliseconds whatever
the database is busy with. The applier (webhooks/applier.py) applies what was recorded, in
arrival order, each event in the same transaction as the outbox row it leads to.

Each allowlisted type has a handler; other types are acknowledged and recorded as
`ignored`. A refund or dispute whose purchase has not arrived yet is recorded as `held`
under its payment intent and applied, in the transaction that creates the order, when the
purchase arrives. An event that cannot be applied (an unknown SKU, a payload missing what
the handler needs) is recorded as `failed` with the reason, and an admin can replay it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast
from uuid import UUID

import asyncpg
from opentelemetry import propagate
from pydantic import ValidationError

from tessera.billing.catalog.service import UnknownSku, get_buyable
from tessera.billing.connect import service as connect
from tessera.billing.orders import service as orders
from tessera.billing.orders.service import Applied, NoOrderYet
from tessera.billing.payments import service as payments
from tessera.billing.settings import BillingSettings
from tessera.billing.stripe import connections, signature
from tessera.billing.stripe.objects import (
    Charge,
    CheckoutSession,
    Dispute,
    StripeEvent,
    expandable_id,
)
from tessera.billing.stripe_events import awaiting, queries
from tessera.billing.stripe_events.queries import Delivery
from tessera.billing.stripe_events.recorder import DeliveryRecorder
from tessera.billing.subscriptions import service as subscriptions
from tessera.billing.subscriptions.state import Logged, invoice_subscription, subscription_id_of
from tessera.billing.webhooks import routing
from tessera.billing.webhooks.metrics import delivered
from tessera.billing.webhooks.routing import Routed
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Mode, Tenant

Status = Literal["received", "processed", "duplicate", "ignored", "held", "failed"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str
    order_id: UUID | None = None
    hold_key: str | None = None


class Unusable(Exception):
    """The event is well-formed Stripe but not something billing can act on."""


Handler = Callable[[asyncpg.Connection, Tenant, str, dict[str, Any]], Awaitable[Applied]]


async def on_checkout(
    conn: asyncpg.Connection,
    tenant: Tenant,
    event_id: str,
    obj: dict[str, Any],
    outcome: str | None,
) -> Applied:
    session = CheckoutSession.model_validate(obj)
    if outcome is None:  # checkout.session.completed: paid now, or later (async methods)
        paid = session.payment_status in ("paid", "no_payment_required")
        outcome = "paid" if paid else "awaiting_payment"
    problems: list[str] = []
    if session.mode != "payment":
        problems.append(f"checkout mode {session.mode!r} is not sold here")
    if not session.email:
        problems.append("the session carries no customer email")
    sku = session.metadata.get("sku")
    item = None
    if not sku:
        problems.append("the session carries no metadata.sku")
    else:
        try:
            item = await get_buyable(conn, tenant, sku)
        except UnknownSku as error:
            problems.append(error.detail or f"there is no product {sku!r} for sale")
    if problems:
        if outcome != "paid":  # nothing was paid: nothing to hold or to lose
            raise Unusable("; ".join(problems))
        # Paid, but not something billing can match: held for review (never lost, never
        # provisioned unless an admin approves it once it matches the catalog).
        return await orders.hold_unmatched(conn, tenant, event_id, session, sku or "", problems)
    assert item is not None
    return await orders.apply_checkout(conn, tenant, event_id, session, item, outcome)


async def on_checkout_completed(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, obj: dict[str, Any]
) -> Applied:
    return await on_checkout(conn, tenant, event_id, obj, None)


@dataclass(frozen=True)
class Applying:
    """What subscription events need beside their object: when Stripe made the event (their
    order), and the seller's grace days for a past-due subscription (the SellerBook's)."""

    created: int = 0
    grace_days: subscriptions.GraceDays = subscriptions.default_grace
    # Stripe's `data.previous_attributes`, for an `*.updated` event.
    previous: dict[str, Any] | None = None
    # The connected account the event came from (its `account`, which routing matched to
    # the tenant); None: the platform's own account.
    account: str | None = None

    @classmethod
    def of(
        cls,
        payload: dict[str, Any],
        grace_days: subscriptions.GraceDays = subscriptions.default_grace,
    ) -> Applying:
        """From a recorded event's whole payload."""
        previous = payload["data"].get("previous_attributes")
        account = payload.get("account")
        return cls(
            int(payload.get("created", 0)),
            grace_days,
            previous if isinstance(previous, dict) else None,
            account if isinstance(account, str) else None,
        )


# Subscription events: logged per subscription and folded (subscriptions/state.py).
SUBSCRIPTION_TYPES = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.trial_will_end",
        "invoice.paid",
        "invoice.payment_failed",
    }
)


async def apply_subscription_event(
    conn: asyncpg.Connection,
    tenant: Tenant,
    event_id: str,
    event_type: str,
    obj: dict[str, Any],
    applying: Applying,
) -> Outcome:
    subscription_id = subscription_id_of(event_type, obj)
    if subscription_id is None:  # an invoice of no subscription (billing makes none)
        return Outcome("processed", "not about a subscription")
    try:
        if event_type == "checkout.session.completed":
            detail = await subscriptions.link_checkout(
                conn, tenant, obj, subscription_id, applying.grace_days, applying.account
            )
        else:
            event = Logged(event_id, event_type, applying.created, obj, applying.previous)
            detail = await subscriptions.apply_event(
                conn, tenant, subscription_id, event, applying.grace_days, applying.account
            )
            if event_type == "invoice.paid":  # its fees are fetched (payments/worker.py)
                await payments.invoice_paid(conn, tenant, obj, applying.created, applying.account)
    except subscriptions.NotOurs as error:
        return Outcome("failed", str(error))
    return Outcome("processed", detail)


async def on_async_succeeded(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, obj: dict[str, Any]
) -> Applied:
    return await on_checkout(conn, tenant, event_id, obj, "paid")


async def on_async_failed(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, obj: dict[str, Any]
) -> Applied:
    return await on_checkout(conn, tenant, event_id, obj, "payment_failed")


async def on_charge_succeeded(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, obj: dict[str, Any]
) -> Applied:
    return await orders.apply_charge_succeeded(conn, tenant, Charge.model_validate(obj))


async def on_charge_refunded(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, obj: dict[str, Any]
) -> Applied:
    return await orders.apply_refund(conn, tenant, event_id, Charge.model_validate(obj))


async def on_dispute_created(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, obj: dict[str, Any]
) -> Applied:
    return await orders.apply_dispute_opened(conn, tenant, event_id, Dispute.model_validate(obj))


async def on_dispute_closed(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, obj: dict[str, Any]
) -> Applied:
    return await orders.apply_dispute_closed(conn, tenant, event_id, Dispute.model_validate(obj))


async def on_deauthorized(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, obj: dict[str, Any]
) -> Applied:
    """The seller removed the platform from its Stripe account: the connection ends."""
    account, sent_at = await queries.source_of(conn, tenant, event_id)
    if account is None:
        raise Unusable("the event names no connected account")
    ended = await connect.deauthorized(conn, tenant, account, sent_at)
    return Applied(None, "disconnected" if ended else "no connection of that account to end")


# The allowlist: every other type is acknowledged and recorded as ignored.
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": on_checkout_completed,
    "checkout.session.async_payment_succeeded": on_async_succeeded,
    "checkout.session.async_payment_failed": on_async_failed,
    "charge.succeeded": on_charge_succeeded,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": on_dispute_created,
    "charge.dispute.closed": on_dispute_closed,
    "account.application.deauthorized": on_deauthorized,
}
HANDLED = frozenset(HANDLERS) | SUBSCRIPTION_TYPES
# Types only a connected account's events have (the Connect endpoint's list, not the
# platform endpoint's).
CONNECT_ONLY = frozenset({"account.application.deauthorized"})


def payment_key(obj: dict[str, Any]) -> str | None:
    """The payment (or subscription) an event's object belongs to: its events are applied
    one at a time."""
    if obj.get("object") == "subscription":
        key = obj.get("id")
    elif obj.get("object") == "invoice":
        key = invoice_subscription(obj)
    elif obj.get("mode") == "subscription":
        key = expandable_id(obj.get("subscription"))
    else:
        key = expandable_id(obj.get("payment_intent"))
    return key if isinstance(key, str) and key else None


async def apply(
    conn: asyncpg.Connection,
    tenant: Tenant,
    event_id: str,
    event_type: str,
    obj: dict[str, Any],
    applying: Applying | None = None,
) -> Outcome:
    """Apply one recorded event to the data of the tenant it was recorded for."""
    handler = HANDLERS.get(event_type)
    if event_type not in HANDLED:
        return Outcome("ignored", f"{event_type} is not an event billing acts on")
    key = payment_key(obj)
    if key is not None:
        await queries.lock_payment(conn, key)
    # A session in subscription mode that names its subscription is that subscription's
    # checkout; one that names none is matched against the catalog (and held) as before.
    if event_type in SUBSCRIPTION_TYPES or (
        obj.get("mode") == "subscription" and obj.get("subscription")
    ):
        return await apply_subscription_event(
            conn, tenant, event_id, event_type, obj, applying or Applying()
        )
    assert handler is not None
    applying = applying or Applying()
    try:
        # Every handler validates and reads before its first write, so each of these
        # refusals leaves nothing to undo (no savepoint needed on the hot path).
        applied = await invoice_charge(
            conn, tenant, event_id, event_type, obj, applying
        ) or await handler(conn, tenant, event_id, obj)
    except NoOrderYet as held:
        return Outcome("held", "waiting for its purchase", hold_key=held.hold_key)
    except ValidationError as error:
        return Outcome("failed", f"payload not understood: {error.error_count()} problem(s)")
    except (Unusable, UnknownSku) as error:
        return Outcome("failed", str(error.detail if isinstance(error, UnknownSku) else error))
    if applied.order_id is not None and event_type in CHECKOUT_PAID:
        # A paid one-time order: its fees are fetched (payments/worker.py).
        await payments.order_paid(conn, tenant, applied.order_id, applying.account)
    if applied.release_hold_key:
        await release_held(conn, tenant, applied.release_hold_key)
    return Outcome("processed", applied.detail, applied.order_id)


# The checkout events after which an order may be paid.
CHECKOUT_PAID = frozenset(
    {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
)


async def invoice_charge(
    conn: asyncpg.Connection,
    tenant: Tenant,
    event_id: str,
    event_type: str,
    obj: dict[str, Any],
    applying: Applying,
) -> Applied | None:
    """A charge event about a subscription invoice's charge (payments/): not an order's."""
    if event_type not in ("charge.succeeded", "charge.refunded"):
        return None
    charge = Charge.model_validate(obj)
    return await payments.charge_event(conn, tenant, event_id, event_type, charge, applying.created)


async def release_held(conn: asyncpg.Connection, tenant: Tenant, hold_key: str) -> None:
    """Apply, in arrival order, the events that were waiting for this payment's order (or,
    for a subscription invoice's charge, for billing to learn which charge paid it)."""
    for stored in await queries.lock_held(conn, tenant, hold_key):
        outcome = await apply(
            conn, tenant, stored.id, stored.type, stored.payload["data"]["object"],
            Applying.of(stored.payload),
        )  # fmt: skip
        await save_outcome(conn, tenant, stored.id, outcome)


async def save_outcome(
    conn: asyncpg.Connection, tenant: Tenant, event_id: str, outcome: Outcome
) -> None:
    """Store what applying the event came to (`recorder.py` records deliveries, not this)."""
    await queries.set_outcome(
        conn, tenant, event_id, outcome.status, outcome.detail, outcome.order_id, outcome.hold_key
    )


Received = Literal["received", "duplicate", "ignored", "held"]


def delivery_of(event: StripeEvent, payload: str, routed: Routed) -> Delivery:
    """What the ingress stores of a verified event, as the tenant's whose Stripe account
    sent it. A type outside the allowlist, or an event no tenant owns, is stored as
    `ignored` and never applied; an event of an account not connected yet waits for its
    connection (`held`, stripe_events/awaiting.py)."""
    status: Received = "received"
    detail = hold_key = None
    if routed.unrouted is not None:
        status, detail = "ignored", routed.unrouted
    elif event.type not in HANDLED:  # nothing to apply, now or once connected
        status, detail = "ignored", f"{event.type} is not an event billing acts on"
    elif routed.waiting is not None:
        status, detail, hold_key = "held", routed.waiting, queries.AWAITING_CONNECTION
    trace_headers: dict[str, str] = {}
    propagate.inject(trace_headers)  # the applier continues this request's trace
    return Delivery(
        event_id=event.id,
        event_type=event.type,
        livemode=event.livemode,
        created=datetime.fromtimestamp(event.created, UTC),
        payload=payload,
        status=status,
        detail=detail,
        trace_headers=trace_headers,
        tenant=routed.tenant,
        stripe_account=event.account,
        hold_key=hold_key,
    )


async def receive(
    recorder: DeliveryRecorder,
    pool: asyncpg.Pool,
    routed: Routed,
    event: StripeEvent,
    payload: str,
) -> Outcome:
    """Record a verified event once (in the recorder's next batch) and return: the applier
    (webhooks/applier.py) applies it a moment later. A repeat delivery is `duplicate`."""
    delivery = delivery_of(event, payload, routed)
    if not await recorder.record(pool, delivery):
        return Outcome("duplicate", "already received")
    status = cast(Received, delivery.status)
    if status == "held" and event.account is not None:
        # A connection that committed since routing looked takes it now (awaiting.py).
        await awaiting.recheck(pool, event.account, routed.tenant.mode)
    return Outcome(status, delivery.detail or "recorded; it is applied in the background")


async def ingest(
    settings: BillingSettings,
    recorder: DeliveryRecorder,
    pool: asyncpg.Pool,
    platform: Tenant | None,
    payload: bytes,
    stripe_signature: str | None,
) -> Outcome:
    """Verify, parse and record one delivery (the same for the fast path and the full
    stack); raises the `SignatureProblem` that says what is wrong with it. `platform`: the
    platform endpoint's tenant, whose the platform's events are; None: the Connect endpoint,
    with its own secrets, where each event's account names its tenant (routing.py)."""
    signature.verify(
        payload,
        stripe_signature,
        endpoint_secrets(settings, connect=platform is None),
        settings.stripe_webhook_tolerance,
    )
    try:
        event = StripeEvent.model_validate_json(payload)
    except ValidationError:
        raise signature.PayloadMalformed("The body is not a Stripe event object.") from None
    routed = await routing.route(pool, platform, settings.platform_mode, event)
    outcome = await receive(recorder, pool, routed, event, payload.decode())
    delivered(outcome.status)  # once: the fast path hands on only what did not get here
    return outcome


def endpoint_secrets(settings: BillingSettings, *, connect: bool) -> list[str]:
    """The signing secrets of one endpoint. Without a Connect client id the Connect endpoint
    has none (every delivery is refused): no account can be connected, and its dev default
    secret must not open a door in production."""
    if not connect:
        secrets = settings.stripe_webhook_secrets
    else:
        secrets = (
            settings.stripe_connect_webhook_secrets if settings.stripe_connect_client_id else []
        )
    return [s.get_secret_value() for s in secrets]


class NotReplayable(Problem):
    status = 409
    slug = "not-replayable"
    title = "This event is not this tenant's to apply"


class UnknownEvent(NotFound):
    slug = "unknown-event"
    title = "No such webhook event"


async def replay(
    pool: asyncpg.Pool,
    tenant: Tenant,
    event_id: str,
    platform_mode: Mode,
    grace_days: subscriptions.GraceDays = subscriptions.default_grace,
) -> Outcome:
    """Apply one of the tenant's recorded events again (after fixing the catalog, say).
    Every effect is idempotent, so replaying an event that was already processed changes
    nothing. `platform_mode`: the platform key's Stripe mode (`BillingSettings.platform_mode`):
    a platform event of the other mode is never applied."""
    async with pool.acquire() as conn, conn.transaction():
        stored = await queries.lock_one(conn, tenant, event_id)
        if stored is None:
            raise UnknownEvent(f"No webhook event {event_id!r} was received.")
        if stored.stripe_account is not None and (
            await connections.connected_account(conn, tenant) != stored.stripe_account
        ):
            # A connected account's event recorded here only to be seen (no seller had it
            # connected), or one whose seller has disconnected since: never applied here.
            raise NotReplayable("It came from a connected account this tenant has not connected.")
        if stored.stripe_account is None and stored.livemode != (platform_mode == "live"):
            raise NotReplayable(
                f"The platform's key is {platform_mode}-mode; this event is of the other mode."
            )
        outcome = await apply(
            conn, tenant, stored.id, stored.type, stored.payload["data"]["object"],
            Applying.of(stored.payload, grace_days),
        )  # fmt: skip
        await save_outcome(conn, tenant, stored.id, outcome)
    return outcome

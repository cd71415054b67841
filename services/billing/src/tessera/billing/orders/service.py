"""Order verbs: the order state machine driven by Stripe events, provisioning, and the
events each change publishes.

States move forward only (awaiting_payment -> paid | payment_failed; paid -> refunded), so
a late or repeated Stripe event can never undo a newer fact. Refunds and disputes are
recorded as adjustments and published once the order is provisioned (its account known),
in the order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from tessera.billing.accounts.service import find_or_create_account
from tessera.billing.catalog import queries as catalog_queries
from tessera.billing.catalog.schemas import CatalogItem
from tessera.billing.orders import queries
from tessera.billing.orders.queries import Adjustment, NewOrder, Order
from tessera.billing.stripe.objects import Charge, CheckoutSession, Dispute, TotalDetails
from tessera.shared import inbox, outbox
from tessera.shared.accounts import normalize_email
from tessera.shared.events.billing import (
    OrderDisputeClosed,
    OrderDisputed,
    OrderPaid,
    OrderRefunded,
    PurchaseCompleted,
    StripeRefs,
)
from tessera.shared.events.envelope import new_event_id
from tessera.shared.http.problems import Problem
from tessera.shared.sellers import Tenant

PROVISIONER = "billing.provisioner"

# The largest quantity and amount a session may state and still be stored as it came (a
# held order keeps what Stripe said; Postgres integers end at 2^31 - 1).
MAX_STORED = 2**31 - 1
MAX_QUANTITY_READ = 1_000_000


class NoOrderYet(Exception):
    """The event concerns a payment billing has no order for yet (it arrived first)."""

    def __init__(self, hold_key: str) -> None:
        super().__init__(hold_key)
        self.hold_key = hold_key


@dataclass(frozen=True)
class Applied:
    order_id: UUID | None
    detail: str
    # The order now exists for this payment intent: events held for it can be applied.
    release_hold_key: str | None = None


def stripe_refs(order: Order) -> StripeRefs:
    return StripeRefs(
        checkout_session_id=order.checkout_session_id,
        payment_intent_id=order.payment_intent_id,
        charge_id=order.charge_id,
        customer_id=order.customer_id,
    )


def parse_quantity(raw: str | None) -> int | None:
    """The session's `metadata.quantity` (1 when absent); None when it is not a number."""
    if raw is None or raw == "":
        return 1
    try:
        quantity = int(raw)
    except ValueError:
        return None
    return quantity if -MAX_QUANTITY_READ <= quantity <= MAX_QUANTITY_READ else None


def catalog_mismatch(
    session: CheckoutSession, item: CatalogItem, quantity: int | None, *, paid: bool
) -> list[str]:
    """Every way the session differs from what the catalog sells (docs/billing.md, "A paid
    checkout must match the catalog"); empty when it matches. `paid`: the session claims
    to be paid now, so its payment status is checked too."""
    reasons: list[str] = []
    if paid and session.payment_status != "paid":
        if session.payment_status != "no_payment_required":
            reasons.append(f"payment_status {session.payment_status!r} is not 'paid'")
        elif item.unit_amount != 0:
            reasons.append(
                f"payment_status 'no_payment_required', but {item.sku} costs "
                f"{item.unit_amount} {item.currency}"
            )
    if (session.currency or "").lower() != item.currency:
        reasons.append(f"currency {session.currency!r} is not the catalog's {item.currency!r}")
    raw = session.metadata.get("quantity")
    if quantity is None:
        reasons.append(f"quantity {raw!r} is not a whole number")
        return reasons
    if not 1 <= quantity <= item.max_quantity:
        reasons.append(f"quantity {quantity} is outside 1 to {item.max_quantity}")
        return reasons
    subtotal = item.unit_amount * quantity
    details = session.total_details or TotalDetails()
    discount = details.amount_discount
    if discount and not item.allow_promotion_codes:
        reasons.append(f"a discount of {discount} was taken, but {item.sku} allows none")
        discount = 0
    elif not 0 <= discount <= subtotal:
        reasons.append(f"a discount of {discount} is more than the subtotal {subtotal}")
        discount = 0
    expected = subtotal - discount
    if session.amount_total != expected:
        less = f" less a discount of {discount}" if discount else ""
        reasons.append(
            f"amount_total {session.amount_total} is not {expected} "
            f"({item.unit_amount} x {quantity}{less})"
        )
    return reasons


def stored(value: int | None) -> int:
    return min(max(value or 0, 0), MAX_STORED)


async def apply_checkout(
    conn: asyncpg.Connection,
    tenant: Tenant,
    stripe_event_id: str,
    session: CheckoutSession,
    item: CatalogItem,
    outcome: str,
) -> Applied:
    """Record a checkout session's state (`paid`, `awaiting_payment`, `payment_failed`).
    The first time an order becomes paid, `billing.purchase.completed.v1` is written. A
    session that does not match the catalog is held for an admin's review instead: the
    order is recorded with the reasons, and nothing is provisioned."""
    email = normalize_email(session.email or "")
    quantity = parse_quantity(session.metadata.get("quantity"))
    reasons = (
        []
        if outcome == "payment_failed"
        else catalog_mismatch(session, item, quantity, paid=outcome == "paid")
    )
    count = quantity if quantity is not None else 0
    order = await queries.upsert_locked(
        conn,
        tenant,
        NewOrder(
            id=new_event_id(),
            email=email,
            sku=item.sku,
            quantity=count,
            amount_total=stored(session.amount_total),
            currency=(session.currency or item.currency).lower()[:16],
            product=item.product,
            policy=item.policy,
            seats=stored(count * item.seats_per_unit),
            source="purchase",
            status="awaiting_payment",
            checkout_session_id=session.id,
            payment_intent_id=session.payment_intent,
            customer_id=session.customer,
        ),
    )
    if order.status == "held" and outcome == "payment_failed":
        # The payment a held order waited for failed: nothing is left to approve.
        await queries.set_status(conn, tenant, order.id, "payment_failed")
        return Applied(order.id, "payment failed", session.payment_intent)
    if order.status != "awaiting_payment" or (outcome == "awaiting_payment" and not reasons):
        return Applied(order.id, f"order {order.status}", session.payment_intent)
    if outcome == "payment_failed":
        await queries.set_status(conn, tenant, order.id, "payment_failed")
        return Applied(order.id, "payment failed", session.payment_intent)
    if reasons:
        reason = "; ".join(reasons)
        await queries.hold(
            conn,
            tenant,
            order.id,
            reason,
            stripe_event_id,
            session.payment_intent,
            session.customer,
        )
        return Applied(order.id, f"held for review: {reason}", session.payment_intent)
    await queries.mark_paid(conn, tenant, order.id, session.payment_intent, session.customer)
    await outbox.add(
        conn,
        PurchaseCompleted(
            stripe_event_id=stripe_event_id,
            checkout_session_id=session.id,
            order_id=order.id,
            email=email,
            sku=item.sku,
            quantity=count,
            amount_total=order.amount_total,
            currency=order.currency,
            stripe_customer_id=session.customer,
            payment_intent_id=session.payment_intent,
            seller_id=tenant.seller_id,
            mode=tenant.mode,
        ),
    )
    return Applied(order.id, "order paid", session.payment_intent)


async def hold_unmatched(
    conn: asyncpg.Connection,
    tenant: Tenant,
    stripe_event_id: str,
    session: CheckoutSession,
    sku: str,
    problems: list[str],
) -> Applied:
    """A paid session billing cannot match at all (an unknown or inactive SKU, no email, a
    mode other than `payment`): recorded as a held order with the reasons, so the payment
    is never lost and never provisioned. It has no product or policy (`''`) until an admin
    approves it, which looks the SKU up in the catalog then."""
    quantity = parse_quantity(session.metadata.get("quantity"))
    order = await queries.upsert_locked(
        conn,
        tenant,
        NewOrder(
            id=new_event_id(),
            email=normalize_email(session.email or ""),
            sku=sku[:64],
            quantity=stored(quantity),
            amount_total=stored(session.amount_total),
            currency=(session.currency or "").lower()[:16],
            product="",
            policy="",
            seats=0,
            source="purchase",
            status="awaiting_payment",
            checkout_session_id=session.id,
            payment_intent_id=session.payment_intent,
            customer_id=session.customer,
        ),
    )
    if order.status != "awaiting_payment":
        return Applied(order.id, f"order {order.status}", session.payment_intent)
    reason = "; ".join(problems)
    await queries.hold(
        conn, tenant, order.id, reason, stripe_event_id, session.payment_intent, session.customer
    )
    return Applied(order.id, f"held for review: {reason}", session.payment_intent)


class NotHeld(Problem):
    status = 409
    slug = "order-not-held"
    title = "The order is not held for review"


class Unprovisionable(Problem):
    status = 409
    slug = "order-not-provisionable"
    title = "The held order cannot be provisioned as recorded"


async def approve_held(conn: asyncpg.Connection, order: Order, actor: str, reason: str) -> None:
    """An admin approves a held order (locked by the caller): it becomes paid and takes the
    normal path (`billing.purchase.completed.v1` -> the provisioner -> order.paid), once:
    a second approval finds it no longer held."""
    if order.status != "held":
        raise NotHeld(f"Order {order.id} is {order.status}, not held; nothing was changed.")
    if order.quantity < 1 or order.checkout_session_id is None:
        raise Unprovisionable(f"Order {order.id} has no quantity to provision; reject it.")
    tenant = order.tenant
    if not order.policy:  # held because nothing matched: the catalog decides now
        item = await catalog_queries.find(conn, tenant, order.sku)
        if item is None or not item.active:
            raise Unprovisionable(
                f"Order {order.id} is for {order.sku!r}, which is not for sale; add it to the "
                "catalog first, or reject the order."
            )
        await queries.set_catalog(
            conn, tenant, order.id, item.product, item.policy, order.quantity * item.seats_per_unit
        )
    try:
        completed = PurchaseCompleted(
            stripe_event_id=order.hold_event_id or "",
            checkout_session_id=order.checkout_session_id,
            order_id=order.id,
            email=order.email,
            sku=order.sku,
            quantity=order.quantity,
            amount_total=order.amount_total,
            currency=order.currency,
            stripe_customer_id=order.customer_id,
            payment_intent_id=order.payment_intent_id,
            seller_id=tenant.seller_id,
            mode=tenant.mode,
        )
    except ValidationError as error:
        raise Unprovisionable(
            f"Order {order.id} cannot be provisioned as recorded "
            f"({error.error_count()} problem(s) with its email or currency); reject it."
        ) from None
    await queries.review(conn, tenant, order.id, "paid", actor, reason)
    await outbox.add(conn, completed)


async def reject_held(conn: asyncpg.Connection, order: Order, actor: str, reason: str) -> None:
    """An admin rejects a held order (locked by the caller): recorded, never provisioned."""
    if order.status != "held":
        raise NotHeld(f"Order {order.id} is {order.status}, not held; nothing was changed.")
    await queries.review(conn, order.tenant, order.id, "rejected", actor, reason)


async def apply_charge_succeeded(
    conn: asyncpg.Connection, tenant: Tenant, charge: Charge
) -> Applied:
    order = await queries.lock_by_payment(conn, tenant, charge.payment_intent, charge.id)
    if order is None:
        raise NoOrderYet(charge.payment_intent or charge.id)
    await queries.record_payment_refs(
        conn,
        tenant,
        order.id,
        charge.payment_intent,
        charge.id,
        charge.customer,
        charge.receipt_url,
    )
    return Applied(order.id, "payment references recorded")


async def apply_refund(
    conn: asyncpg.Connection, tenant: Tenant, stripe_event_id: str, charge: Charge
) -> Applied:
    """Record a refund (partial or full); only a full one will revoke what was granted."""
    order = await queries.lock_by_payment(conn, tenant, charge.payment_intent, charge.id)
    if order is None:
        raise NoOrderYet(charge.payment_intent or charge.id)
    await queries.record_payment_refs(
        conn,
        tenant,
        order.id,
        charge.payment_intent,
        charge.id,
        charge.customer,
        charge.receipt_url,
    )
    full = charge.fully_refunded
    grows = charge.amount_refunded > order.amount_refunded
    if not grows and not (full and order.status != "refunded"):
        return Applied(order.id, "refund already recorded")
    await queries.record_refund(conn, tenant, order.id, charge.amount_refunded, full)
    await queries.insert_adjustment(
        conn,
        tenant,
        new_event_id(),
        order.id,
        "refund",
        stripe_event_id,
        amount=max(charge.amount_refunded, order.amount_refunded),
        full_refund=full,
    )
    await flush_adjustments(conn, tenant, order.id)
    return Applied(order.id, "full refund" if full else "partial refund")


async def apply_dispute_opened(
    conn: asyncpg.Connection, tenant: Tenant, stripe_event_id: str, dispute: Dispute
) -> Applied:
    order = await queries.lock_by_payment(conn, tenant, dispute.payment_intent, dispute.charge)
    if order is None:
        raise NoOrderYet(dispute.payment_intent or dispute.charge or dispute.id)
    if not await queries.open_dispute(
        conn, tenant, dispute.id, order.id, dispute.reason, dispute.amount
    ):
        return Applied(order.id, "dispute already known")
    await queries.set_dispute_status(conn, tenant, order.id, "open")
    await queries.insert_adjustment(
        conn, tenant, new_event_id(), order.id, "dispute_opened", stripe_event_id,
        amount=dispute.amount, dispute_id=dispute.id, reason=dispute.reason,
    )  # fmt: skip
    await flush_adjustments(conn, tenant, order.id)
    return Applied(order.id, "dispute opened")


def dispute_outcome(status: str) -> str:
    # `warning_closed` ends an inquiry that never became a chargeback: the merchant keeps it.
    return "lost" if status == "lost" else "won"


async def apply_dispute_closed(
    conn: asyncpg.Connection, tenant: Tenant, stripe_event_id: str, dispute: Dispute
) -> Applied:
    order = await queries.lock_by_payment(conn, tenant, dispute.payment_intent, dispute.charge)
    if order is None:
        raise NoOrderYet(dispute.payment_intent or dispute.charge or dispute.id)
    outcome = dispute_outcome(dispute.status)
    closed = await queries.close_dispute(
        conn, tenant, dispute.id, order.id, outcome, dispute.reason, dispute.amount
    )
    if not closed:
        return Applied(order.id, "dispute already closed")
    await queries.set_dispute_status(conn, tenant, order.id, outcome)
    await queries.insert_adjustment(
        conn, tenant, new_event_id(), order.id, "dispute_closed", stripe_event_id,
        amount=dispute.amount, dispute_id=dispute.id, outcome=outcome, reason=dispute.reason,
    )  # fmt: skip
    await flush_adjustments(conn, tenant, order.id)
    return Applied(order.id, f"dispute {outcome}")


def adjustment_event(
    order: Order, adjustment: Adjustment
) -> OrderRefunded | OrderDisputed | OrderDisputeClosed:
    assert order.account_id is not None
    refs = stripe_refs(order)
    if adjustment.kind == "refund":
        return OrderRefunded(
            order_id=order.id,
            account_id=order.account_id,
            amount_refunded=adjustment.amount,
            currency=order.currency,
            full=adjustment.full_refund,
            stripe=refs,
            seller_id=order.seller_id,
            mode=order.mode,
        )
    assert adjustment.dispute_id is not None
    if adjustment.kind == "dispute_opened":
        return OrderDisputed(
            order_id=order.id,
            account_id=order.account_id,
            dispute_id=adjustment.dispute_id,
            reason=adjustment.reason,
            stripe=refs,
            seller_id=order.seller_id,
            mode=order.mode,
        )
    return OrderDisputeClosed(
        order_id=order.id,
        account_id=order.account_id,
        dispute_id=adjustment.dispute_id,
        outcome="lost" if adjustment.outcome == "lost" else "won",
        stripe=refs,
        seller_id=order.seller_id,
        mode=order.mode,
    )


async def flush_adjustments(conn: asyncpg.Connection, tenant: Tenant, order_id: UUID) -> int:
    """Publish the order's unpublished refunds and disputes, if its account is known."""
    order = await queries.get(conn, tenant, order_id)
    if order is None or order.account_id is None:
        return 0
    pending = await queries.unpublished_adjustments(conn, tenant, order_id)
    for adjustment in pending:
        await outbox.add(conn, adjustment_event(order, adjustment))
        await queries.mark_adjustment_published(conn, tenant, adjustment.id)
    return len(pending)


def order_paid(order: Order) -> OrderPaid:
    assert order.account_id is not None
    return OrderPaid(
        order_id=order.id,
        account_id=order.account_id,
        email=order.email,
        sku=order.sku,
        quantity=order.quantity,
        amount_total=order.amount_total,
        currency=order.currency,
        product=order.product,
        policy=order.policy,
        seats=order.seats,
        source="admin" if order.source == "admin" else "purchase",
        stripe=stripe_refs(order),
        seller_id=order.seller_id,
        mode=order.mode,
    )


async def provision(pool: asyncpg.Pool, event: PurchaseCompleted) -> UUID | None:
    """Apply a completed purchase once: the buyer's account exists (created and announced
    if new), the order belongs to it, `billing.order.paid.v1` is published, and any refund
    or dispute that arrived meanwhile follows, all in the event's tenant. Returns the
    account id, or None if the event was already applied."""
    tenant = event.tenant
    async with inbox.first_delivery(pool, event, PROVISIONER) as conn:
        if conn is None:
            return None
        order = await (
            queries.lock(conn, tenant, event.order_id)
            if event.order_id
            else queries.lock_by_checkout_session(conn, tenant, event.checkout_session_id)
        )
        if order is None:
            raise LookupError(f"no order for purchase {event.checkout_session_id}")
        if order.provisioned_at is not None:
            return order.account_id
        account = await find_or_create_account(conn, tenant, order.email, "purchase")
        await queries.mark_provisioned(conn, tenant, order.id, account.id)
        provisioned = await queries.get(conn, tenant, order.id)
        assert provisioned is not None
        await outbox.add(conn, order_paid(provisioned))
        await flush_adjustments(conn, tenant, order.id)
        return account.id


async def grant(
    conn: asyncpg.Connection, tenant: Tenant, email: str, item: CatalogItem, quantity: int
) -> tuple[UUID, UUID]:
    """An admin's complimentary order: account (created if new) and a paid order of amount
    0, announced with the same events as a purchase, marked `source=admin`. Runs in the
    caller's transaction. Returns (account id, order id)."""
    account = await find_or_create_account(conn, tenant, email, "admin")
    order = await queries.upsert_locked(
        conn,
        tenant,
        NewOrder(
            id=new_event_id(),
            email=normalize_email(email),
            sku=item.sku,
            quantity=quantity,
            amount_total=0,
            currency=item.currency,
            product=item.product,
            policy=item.policy,
            seats=quantity * item.seats_per_unit,
            source="admin",
            status="awaiting_payment",
            account_id=account.id,
        ),
    )
    await queries.mark_paid(conn, tenant, order.id)
    await queries.mark_provisioned(conn, tenant, order.id, account.id)
    paid = await queries.get(conn, tenant, order.id)
    assert paid is not None
    await outbox.add(conn, order_paid(paid))
    return account.id, order.id

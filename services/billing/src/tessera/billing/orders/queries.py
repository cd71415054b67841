"""SQL of `orders`, `order_adjustments` and `disputes`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from tessera.shared.sellers import Mode, Tenant

ORDER_COLUMNS = """
    id, account_id, email, sku, quantity, amount_total, currency, product, policy, seats,
    source, status, amount_refunded, dispute_status, checkout_session_id, payment_intent_id,
    charge_id, customer_id, receipt_url, created_at, paid_at, provisioned_at,
    hold_reason, hold_event_id, reviewed_by, reviewed_at, review_reason, seller_id, mode
"""

# Every statement below names the tenant's seller and mode as its last two parameters.


@dataclass(frozen=True)
class Order:
    id: UUID
    account_id: UUID | None
    email: str
    sku: str
    quantity: int
    amount_total: int
    currency: str
    product: str
    policy: str
    seats: int
    source: str
    status: str
    amount_refunded: int
    dispute_status: str | None
    checkout_session_id: str | None
    payment_intent_id: str | None
    charge_id: str | None
    customer_id: str | None
    receipt_url: str | None
    created_at: datetime
    paid_at: datetime | None
    provisioned_at: datetime | None
    seller_id: UUID
    mode: Mode
    hold_reason: str | None = None
    hold_event_id: str | None = None
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_reason: str | None = None

    @property
    def tenant(self) -> Tenant:
        return Tenant(self.seller_id, self.mode)


def to_order(row: asyncpg.Record | None) -> Order | None:
    return Order(**dict(row)) if row else None


@dataclass(frozen=True)
class NewOrder:
    id: UUID
    email: str
    sku: str
    quantity: int
    amount_total: int
    currency: str
    product: str
    policy: str
    seats: int
    source: str
    status: str
    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    customer_id: str | None = None
    account_id: UUID | None = None


async def upsert_locked(conn: asyncpg.Connection, tenant: Tenant, order: NewOrder) -> Order:
    """The order of `order.checkout_session_id`, inserted if new, locked either way: one
    round trip (`DO UPDATE` with a no-op takes the row lock and returns the stored row).
    An order without a checkout session (an admin grant) is always inserted."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO orders (id, email, sku, quantity, amount_total, currency, product, policy,
                            seats, source, status, checkout_session_id, payment_intent_id,
                            customer_id, account_id, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
        ON CONFLICT (seller_id, mode, checkout_session_id)
            DO UPDATE SET checkout_session_id = EXCLUDED.checkout_session_id
        RETURNING {ORDER_COLUMNS}
        """,  # noqa: S608 - ORDER_COLUMNS is a constant
        order.id,
        order.email,
        order.sku,
        order.quantity,
        order.amount_total,
        order.currency,
        order.product,
        order.policy,
        order.seats,
        order.source,
        order.status,
        order.checkout_session_id,
        order.payment_intent_id,
        order.customer_id,
        order.account_id,
        tenant.seller_id,
        tenant.mode,
    )
    return Order(**dict(row))


async def find_by_checkout_session_of_any_tenant(
    conn: asyncpg.Connection | asyncpg.Pool, session_id: str
) -> Order | None:
    """The order of a Checkout Session, whichever seller's it is: Stripe's session ids are
    unique across accounts (the success page knows only the id). Oldest first, so the answer
    is fixed even if two tenants ever held the same id."""
    return to_order(
        await conn.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders"  # noqa: S608
            " WHERE checkout_session_id = $1 ORDER BY created_at, id LIMIT 1",
            session_id,
        )
    )


async def lock_by_checkout_session(
    conn: asyncpg.Connection, tenant: Tenant, session_id: str
) -> Order | None:
    return to_order(
        await conn.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders"  # noqa: S608
            " WHERE checkout_session_id = $1 AND seller_id = $2 AND mode = $3 FOR UPDATE",
            session_id,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def lock_by_payment(
    conn: asyncpg.Connection, tenant: Tenant, payment_intent_id: str | None, charge_id: str | None
) -> Order | None:
    return to_order(
        await conn.fetchrow(
            f"""
            SELECT {ORDER_COLUMNS} FROM orders
             WHERE seller_id = $3 AND mode = $4
               AND (($1::text IS NOT NULL AND payment_intent_id = $1)
                    OR ($2::text IS NOT NULL AND charge_id = $2))
             ORDER BY created_at LIMIT 1
               FOR UPDATE
            """,  # noqa: S608
            payment_intent_id,
            charge_id,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def lock(conn: asyncpg.Connection, tenant: Tenant, order_id: UUID) -> Order | None:
    return to_order(
        await conn.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders"  # noqa: S608
            " WHERE id = $1 AND seller_id = $2 AND mode = $3 FOR UPDATE",
            order_id,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def get(conn: asyncpg.Connection, tenant: Tenant, order_id: UUID) -> Order | None:
    return to_order(
        await conn.fetchrow(
            f"SELECT {ORDER_COLUMNS} FROM orders"  # noqa: S608
            " WHERE id = $1 AND seller_id = $2 AND mode = $3",
            order_id,
            tenant.seller_id,
            tenant.mode,
        )
    )


async def mark_paid(
    conn: asyncpg.Connection,
    tenant: Tenant,
    order_id: UUID,
    payment_intent_id: str | None = None,
    customer_id: str | None = None,
) -> None:
    await conn.execute(
        """
        UPDATE orders SET status = 'paid', paid_at = clock_timestamp(),
                          payment_intent_id = COALESCE(payment_intent_id, $2),
                          customer_id = COALESCE(customer_id, $3)
         WHERE id = $1 AND seller_id = $4 AND mode = $5
        """,
        order_id,
        payment_intent_id,
        customer_id,
        tenant.seller_id,
        tenant.mode,
    )


async def set_status(conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, status: str) -> None:
    await conn.execute(
        "UPDATE orders SET status = $2 WHERE id = $1 AND seller_id = $3 AND mode = $4",
        order_id,
        status,
        tenant.seller_id,
        tenant.mode,
    )


async def record_payment_refs(
    conn: asyncpg.Connection,
    tenant: Tenant,
    order_id: UUID,
    payment_intent_id: str | None,
    charge_id: str | None,
    customer_id: str | None,
    receipt_url: str | None,
) -> None:
    await conn.execute(
        """
        UPDATE orders SET payment_intent_id = COALESCE(payment_intent_id, $2),
                          charge_id = COALESCE($3, charge_id),
                          customer_id = COALESCE(customer_id, $4),
                          receipt_url = COALESCE($5, receipt_url)
         WHERE id = $1 AND seller_id = $6 AND mode = $7
        """,
        order_id,
        payment_intent_id,
        charge_id,
        customer_id,
        receipt_url,
        tenant.seller_id,
        tenant.mode,
    )


async def record_refund(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, amount_refunded: int, full: bool
) -> None:
    await conn.execute(
        """
        UPDATE orders SET amount_refunded = GREATEST(amount_refunded, $2),
                          status = CASE WHEN $3 AND status <> 'rejected'
                                        THEN 'refunded' ELSE status END
         WHERE id = $1 AND seller_id = $4 AND mode = $5
        """,
        order_id,
        amount_refunded,
        full,
        tenant.seller_id,
        tenant.mode,
    )


async def hold(
    conn: asyncpg.Connection,
    tenant: Tenant,
    order_id: UUID,
    reason: str,
    stripe_event_id: str,
    payment_intent_id: str | None,
    customer_id: str | None,
) -> None:
    """Hold the order for an admin's review: recorded, never provisioned until approved."""
    await conn.execute(
        """
        UPDATE orders SET status = 'held', hold_reason = $2, hold_event_id = $3,
                          payment_intent_id = COALESCE(payment_intent_id, $4),
                          customer_id = COALESCE(customer_id, $5)
         WHERE id = $1 AND seller_id = $6 AND mode = $7
        """,
        order_id,
        reason,
        stripe_event_id,
        payment_intent_id,
        customer_id,
        tenant.seller_id,
        tenant.mode,
    )


async def review(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, status: str, actor: str, reason: str
) -> None:
    """An admin's decision on a held order: `paid` (approved) or `rejected`."""
    await conn.execute(
        """
        UPDATE orders SET status = $2, reviewed_by = $3, review_reason = $4,
                          reviewed_at = clock_timestamp(),
                          paid_at = CASE WHEN $2 = 'paid' THEN clock_timestamp() ELSE paid_at END
         WHERE id = $1 AND seller_id = $5 AND mode = $6
        """,
        order_id,
        status,
        actor,
        reason,
        tenant.seller_id,
        tenant.mode,
    )


async def list_held(
    conn: asyncpg.Connection, tenant: Tenant, status: str | None, limit: int, offset: int
) -> list[Order]:
    """The tenant's orders that were held for review (whatever became of them), newest
    first."""
    rows = await conn.fetch(
        f"""
        SELECT {ORDER_COLUMNS} FROM orders
         WHERE seller_id = $4 AND mode = $5
           AND hold_reason IS NOT NULL AND ($1::text IS NULL OR status = $1)
         ORDER BY created_at DESC
         LIMIT $2 OFFSET $3
        """,  # noqa: S608
        status,
        limit,
        offset,
        tenant.seller_id,
        tenant.mode,
    )
    return [Order(**dict(r)) for r in rows]


async def set_dispute_status(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, status: str
) -> None:
    await conn.execute(
        "UPDATE orders SET dispute_status = $2 WHERE id = $1 AND seller_id = $3 AND mode = $4",
        order_id,
        status,
        tenant.seller_id,
        tenant.mode,
    )


async def mark_provisioned(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID, account_id: UUID
) -> None:
    await conn.execute(
        "UPDATE orders SET account_id = $2, provisioned_at = clock_timestamp()"
        " WHERE id = $1 AND seller_id = $3 AND mode = $4",
        order_id,
        account_id,
        tenant.seller_id,
        tenant.mode,
    )


async def list_for_account(
    conn: asyncpg.Connection, tenant: Tenant, account_id: UUID
) -> list[Order]:
    rows = await conn.fetch(
        f"SELECT {ORDER_COLUMNS} FROM orders"  # noqa: S608
        " WHERE account_id = $1 AND seller_id = $2 AND mode = $3 ORDER BY created_at DESC",
        account_id,
        tenant.seller_id,
        tenant.mode,
    )
    return [Order(**dict(r)) for r in rows]


async def search(
    conn: asyncpg.Connection, tenant: Tenant, query: str | None, limit: int, offset: int
) -> list[Order]:
    """The tenant's orders matching an email fragment, an order id, or a Stripe id (exact)."""
    rows = await conn.fetch(
        f"""
        SELECT {ORDER_COLUMNS} FROM orders
         WHERE seller_id = $4 AND mode = $5
           AND ($1::text IS NULL
            OR email LIKE '%' || lower($1) || '%'
            OR id::text = $1
            OR account_id::text = $1
            OR checkout_session_id = $1 OR payment_intent_id = $1
            OR charge_id = $1 OR customer_id = $1)
         ORDER BY created_at DESC
         LIMIT $2 OFFSET $3
        """,  # noqa: S608
        query,
        limit,
        offset,
        tenant.seller_id,
        tenant.mode,
    )
    return [Order(**dict(r)) for r in rows]


# --- adjustments -------------------------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    id: UUID
    order_id: UUID
    kind: str
    stripe_event_id: str
    amount: int
    full_refund: bool
    dispute_id: str | None
    outcome: str | None
    reason: str | None


async def insert_adjustment(
    conn: asyncpg.Connection,
    tenant: Tenant,
    adjustment_id: UUID,
    order_id: UUID,
    kind: str,
    stripe_event_id: str,
    *,
    amount: int = 0,
    full_refund: bool = False,
    dispute_id: str | None = None,
    outcome: str | None = None,
    reason: str | None = None,
) -> bool:
    inserted = await conn.fetchval(
        """
        INSERT INTO order_adjustments (id, order_id, kind, stripe_event_id, amount, full_refund,
                                       dispute_id, outcome, reason, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (stripe_event_id) DO NOTHING
        RETURNING true
        """,
        adjustment_id,
        order_id,
        kind,
        stripe_event_id,
        amount,
        full_refund,
        dispute_id,
        outcome,
        reason,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(inserted)


async def unpublished_adjustments(
    conn: asyncpg.Connection, tenant: Tenant, order_id: UUID
) -> list[Adjustment]:
    rows = await conn.fetch(
        """
        SELECT id, order_id, kind, stripe_event_id, amount, full_refund, dispute_id, outcome, reason
          FROM order_adjustments
         WHERE order_id = $1 AND seller_id = $2 AND mode = $3 AND published_at IS NULL
         ORDER BY created_at, id
           FOR UPDATE
        """,
        order_id,
        tenant.seller_id,
        tenant.mode,
    )
    return [Adjustment(**dict(r)) for r in rows]


async def mark_adjustment_published(
    conn: asyncpg.Connection, tenant: Tenant, adjustment_id: UUID
) -> None:
    await conn.execute(
        "UPDATE order_adjustments SET published_at = clock_timestamp()"
        " WHERE id = $1 AND seller_id = $2 AND mode = $3",
        adjustment_id,
        tenant.seller_id,
        tenant.mode,
    )


# --- disputes ----------------------------------------------------------------------------


async def open_dispute(
    conn: asyncpg.Connection,
    tenant: Tenant,
    dispute_id: str,
    order_id: UUID,
    reason: str | None,
    amount: int,
) -> bool:
    """Record an open dispute; False if the dispute is already known (open or closed)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO disputes (id, order_id, status, reason, amount, seller_id, mode)
        VALUES ($1, $2, 'open', $3, $4, $5, $6)
        ON CONFLICT (seller_id, mode, id) DO NOTHING RETURNING true
        """,
        dispute_id,
        order_id,
        reason,
        amount,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(inserted)


async def close_dispute(
    conn: asyncpg.Connection,
    tenant: Tenant,
    dispute_id: str,
    order_id: UUID,
    outcome: str,
    reason: str | None,
    amount: int,
) -> bool:
    """Close the dispute (creating it closed if its opening never arrived); False if it
    was already closed."""
    changed = await conn.fetchval(
        """
        INSERT INTO disputes (id, order_id, status, reason, amount, closed_at, seller_id, mode)
        VALUES ($1, $2, $3, $4, $5, clock_timestamp(), $6, $7)
        ON CONFLICT (seller_id, mode, id)
            DO UPDATE SET status = EXCLUDED.status, closed_at = EXCLUDED.closed_at
            WHERE disputes.status = 'open'
        RETURNING true
        """,
        dispute_id,
        order_id,
        outcome,
        reason,
        amount,
        tenant.seller_id,
        tenant.mode,
    )
    return bool(changed)


async def set_catalog(
    conn: asyncpg.Connection,
    tenant: Tenant,
    order_id: UUID,
    product: str,
    policy: str,
    seats: int,
) -> None:
    """Give an unmatched held order what the catalog sells under its SKU (on approval)."""
    await conn.execute(
        "UPDATE orders SET product = $2, policy = $3, seats = $4"
        " WHERE id = $1 AND seller_id = $5 AND mode = $6",
        order_id,
        product,
        policy,
        seats,
        tenant.seller_id,
        tenant.mode,
    )

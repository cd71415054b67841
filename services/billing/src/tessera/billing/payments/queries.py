"""SQL over `payments`, `payment_refunds` and `payment_balance` (migration billing_0011)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from tessera.shared.sellers import Tenant

COLUMNS = (
    "seller_id, mode, source, kind, stripe_account, currency, amount, payment_intent_id,"
    " charge_id, amount_refunded, attempts"
)


@dataclass(frozen=True)
class Payment:
    tenant: Tenant
    source: str
    kind: str
    stripe_account: str | None
    currency: str
    amount: int
    payment_intent_id: str | None
    charge_id: str | None
    amount_refunded: int
    attempts: int


def to_payment(row: asyncpg.Record) -> Payment:
    values = dict(row)
    tenant = Tenant(values.pop("seller_id"), values.pop("mode"))
    return Payment(tenant=tenant, **values)


@dataclass(frozen=True)
class NewPayment:
    source: str
    kind: str
    stripe_account: str | None
    currency: str
    amount: int
    paid_at: datetime
    payment_intent_id: str | None = None


async def add(conn: asyncpg.Connection, tenant: Tenant, new: NewPayment) -> None:
    """Record a payment once (a repeated event changes nothing)."""
    await conn.execute(
        """
        INSERT INTO payments (seller_id, mode, source, kind, stripe_account, currency, amount,
                              paid_at, payment_intent_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (seller_id, mode, source) DO NOTHING
        """,
        tenant.seller_id,
        tenant.mode,
        new.source,
        new.kind,
        new.stripe_account,
        new.currency,
        new.amount,
        new.paid_at,
        new.payment_intent_id,
    )


async def find_by_charge(
    conn: asyncpg.Connection, tenant: Tenant, payment_intent: str | None, charge: str
) -> Payment | None:
    """The payment a charge (or its payment intent) paid, once billing knows it."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM payments"  # noqa: S608 - constant columns
        " WHERE seller_id = $1 AND mode = $2"
        "   AND (charge_id = $3 OR (payment_intent_id IS NOT NULL AND payment_intent_id = $4))"
        " LIMIT 1",
        tenant.seller_id,
        tenant.mode,
        charge,
        payment_intent,
    )
    return to_payment(row) if row else None


async def note_refunded(
    conn: asyncpg.Connection, tenant: Tenant, source: str, amount_refunded: int
) -> None:
    """Stripe says `amount_refunded` of the payment's charge is refunded: if that is more
    than billing knew, its refunds' balance transactions are fetched (again) at once."""
    await conn.execute(
        """
        UPDATE payments
           SET amount_refunded = $4, state = 'pending', attempts = 0,
               next_attempt_at = now(), updated_at = now()
         WHERE seller_id = $1 AND mode = $2 AND source = $3 AND amount_refunded < $4
        """,
        tenant.seller_id,
        tenant.mode,
        source,
        amount_refunded,
    )


async def add_refund(
    conn: asyncpg.Connection,
    tenant: Tenant,
    event_id: str,
    source: str,
    amount_refunded: int,
    created: datetime,
) -> bool:
    """One `charge.refunded` of a subscription invoice's charge; False: already recorded."""
    done = await conn.execute(
        """
        INSERT INTO payment_refunds (seller_id, mode, event_id, source, amount_refunded, created)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (seller_id, mode, event_id) DO NOTHING
        """,
        tenant.seller_id,
        tenant.mode,
        event_id,
        source,
        amount_refunded,
        created,
    )
    return bool(done != "INSERT 0 0")


# ---------------------------------------------------------------- the worker's


async def claim(conn: asyncpg.Connection, limit: int, lease_seconds: float) -> list[Payment]:
    """Due payments, each leased while its Stripe calls are in flight (another replica
    leaves it; taken again if this one dies)."""
    rows = await conn.fetch(
        f"""
        WITH due AS (
            SELECT seller_id, mode, source FROM payments
             WHERE state = 'pending' AND next_attempt_at <= clock_timestamp()
               AND (leased_until IS NULL OR leased_until <= clock_timestamp())
             ORDER BY next_attempt_at
             LIMIT $1 FOR UPDATE SKIP LOCKED
        )
        UPDATE payments p
           SET leased_until = clock_timestamp() + make_interval(secs => $2)
          FROM due
         WHERE p.seller_id = due.seller_id AND p.mode = due.mode AND p.source = due.source
        RETURNING {", ".join(f"p.{c.strip()}" for c in COLUMNS.split(","))}
        """,  # noqa: S608 - constant columns
        limit,
        lease_seconds,
    )
    return [to_payment(r) for r in rows]


@dataclass(frozen=True)
class BalanceEntry:
    """A balance transaction of the payment's charge or of one of its refunds."""

    id: str
    object_id: str
    type: str
    created: datetime
    currency: str
    amount: int
    fee: int


async def record_fetched(
    conn: asyncpg.Connection,
    payment: Payment,
    payment_intent: str | None,
    charge: str,
    entries: list[BalanceEntry],
    refunds: tuple[int, int],
    retry_in: float,
) -> None:
    """What Stripe said: the charge, the balance transactions, and (`refunds`) how much of
    the charge is refunded and how much of that the fetched refunds cover. Known when they
    cover all that is refunded, by Stripe's word or an event's (a refund that came
    meanwhile, or one without a balance transaction yet, leaves it pending: fetched
    again in `retry_in` seconds)."""
    tenant = payment.tenant
    await conn.executemany(
        """
        INSERT INTO payment_balance (seller_id, mode, id, source, object_id, type, created,
                                     currency, amount, fee)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (seller_id, mode, id) DO NOTHING
        """,
        [
            (
                tenant.seller_id,
                tenant.mode,
                e.id,
                payment.source,
                e.object_id,
                e.type,
                e.created,
                e.currency,
                e.amount,
                e.fee,
            )
            for e in entries
        ],
    )
    await conn.execute(
        """
        WITH now_refunded AS (
            SELECT greatest(amount_refunded, $6) AS total FROM payments
             WHERE seller_id = $1 AND mode = $2 AND source = $3 FOR UPDATE
        )
        UPDATE payments
           SET payment_intent_id = coalesce($4, payment_intent_id), charge_id = $5,
               refunds_fetched = $7,
               amount_refunded = now_refunded.total,
               state = CASE WHEN now_refunded.total <= $7 THEN 'known' ELSE 'pending' END,
               attempts = CASE WHEN now_refunded.total <= $7 THEN 0 ELSE attempts + 1 END,
               next_attempt_at = clock_timestamp() + CASE WHEN now_refunded.total <= $7
                   THEN interval '0' ELSE make_interval(secs => $8) END,
               error = CASE WHEN now_refunded.total <= $7 THEN NULL
                            ELSE 'a refund has no balance transaction yet' END,
               leased_until = NULL, updated_at = now()
          FROM now_refunded
         WHERE seller_id = $1 AND mode = $2 AND source = $3
        """,
        tenant.seller_id,
        tenant.mode,
        payment.source,
        payment_intent,
        charge,
        refunds[0],
        refunds[1],
        retry_in,
    )


async def retry_later(conn: asyncpg.Connection, payment: Payment, error: str, delay: float) -> None:
    await conn.execute(
        """
        UPDATE payments
           SET attempts = attempts + 1, error = $4, leased_until = NULL,
               next_attempt_at = clock_timestamp() + make_interval(secs => $5),
               updated_at = now()
         WHERE seller_id = $1 AND mode = $2 AND source = $3
        """,
        payment.tenant.seller_id,
        payment.tenant.mode,
        payment.source,
        error[:500],
        delay,
    )


async def unavailable(conn: asyncpg.Connection, payment: Payment, reason: str) -> None:
    """Stripe has no balance transaction billing can reach for it: its fee stays unknown."""
    await conn.execute(
        """
        UPDATE payments
           SET state = 'unavailable', error = $4, leased_until = NULL, updated_at = now()
         WHERE seller_id = $1 AND mode = $2 AND source = $3
        """,
        payment.tenant.seller_id,
        payment.tenant.mode,
        payment.source,
        reason[:500],
    )

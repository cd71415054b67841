"""Order verbs: billing's facts in, license statuses out (through the outbox). Every fact
is recorded, and every license issued or changed, in the tenant the event names."""

from __future__ import annotations

import logging
from uuid import UUID

import asyncpg

from tessera.licensing.customers import queries as customers
from tessera.licensing.licenses import queries as license_queries
from tessera.licensing.licenses import service as licenses
from tessera.licensing.orders import queries
from tessera.shared import inbox
from tessera.shared.events.billing import (
    OrderDisputeClosed,
    OrderDisputed,
    OrderPaid,
    OrderRefunded,
)
from tessera.shared.keys import Sealer
from tessera.shared.sellers import Tenant

log = logging.getLogger("tessera.licensing.orders")

CONSUMER = "licensing.orders"


def status_from(facts: asyncpg.Record) -> tuple[licenses.Status, str | None]:
    """What an order's licenses should be, given everything billing has said about it."""
    if facts["refunded"]:
        return "revoked", "refunded"
    if facts["lost"]:
        return "revoked", "dispute_lost"
    if facts["open_dispute"]:
        return "suspended", "disputed"
    return "active", None


async def on_paid(pool: asyncpg.Pool, sealer: Sealer, event: OrderPaid) -> list[UUID]:
    """Issue one license per seat. An unknown product/policy holds the order (kept, logged,
    retryable with `tessera-licensing orders retry-held`) instead of failing the event."""
    tenant = event.tenant
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return []
        await queries.record_paid(conn, tenant, event.order_id, event.account_id)
        await customers.remember(conn, tenant, event.account_id, event.email)
        return await _issue_for(conn, sealer, event)


async def _issue_for(conn: asyncpg.Connection, sealer: Sealer, event: OrderPaid) -> list[UUID]:
    tenant = event.tenant
    policy = await license_queries.find_policy(conn, tenant, event.policy)
    if policy is None or policy["product_code"] != event.product:
        held = f"unknown product/policy {event.product}/{event.policy}"
        await queries.hold(conn, tenant, event.order_id, held, event.model_dump_json())
        log.error("licensing.order.held", extra={"order_id": str(event.order_id), "reason": held})
        return []
    await queries.release(conn, tenant, event.order_id)
    status, reason = status_from(await queries.facts(conn, tenant, event.order_id))
    grant = licenses.Grant(
        account_id=event.account_id,
        email=str(event.email),
        product=event.product,
        policy=event.policy,
        seats=event.seats,
        source="admin" if event.source == "admin" else "purchase",
        order_id=event.order_id,
    )
    return await licenses.issue(conn, tenant, sealer, grant, policy, status, reason)


async def retry_held(pool: asyncpg.Pool, tenant: Tenant, sealer: Sealer) -> dict[UUID, int]:
    """Re-apply the tenant's held orders (after the missing product or policy was added).
    Returns licenses issued per order; orders still unknown stay held."""
    async with pool.acquire() as conn:
        held = await queries.held_orders(conn, tenant)
    issued: dict[UUID, int] = {}
    for row in held:
        # Kept as it came, so it names the tenant it was held in.
        event = OrderPaid.model_validate_json(row["held_event"])
        if event.tenant != tenant:
            continue
        async with pool.acquire() as conn, conn.transaction():
            await queries.record_paid(conn, tenant, event.order_id, event.account_id)
            issued[event.order_id] = len(await _issue_for(conn, sealer, event))
    return issued


async def _reconcile(conn: asyncpg.Connection, tenant: Tenant, order_id: UUID) -> None:
    """Bring the order's licenses to the status its facts give. Only a suspension made for a
    dispute is lifted by one; an admin's suspension and any revocation stay."""
    status, reason = status_from(await queries.facts(conn, tenant, order_id))
    for row in await license_queries.lock_order_licenses(conn, tenant, order_id):
        current = row["status"]
        if current == "revoked" or current == status:
            continue
        if status == "active" and row["status_reason"] != "disputed":
            continue
        if status == "suspended" and current != "active":
            continue
        await licenses.change_status(conn, row, status, reason or "dispute_won")


async def on_refunded(pool: asyncpg.Pool, event: OrderRefunded) -> None:
    """A full refund revokes what the order granted; a partial one changes nothing."""
    tenant = event.tenant
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return
        if not event.full:
            await queries.touch(conn, tenant, event.order_id, event.account_id)
            return
        await queries.record_refunded(conn, tenant, event.order_id, event.account_id)
        await _reconcile(conn, tenant, event.order_id)


async def on_disputed(pool: asyncpg.Pool, event: OrderDisputed) -> None:
    """Suspend the order's licenses while the dispute is open."""
    tenant = event.tenant
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return
        await queries.touch(conn, tenant, event.order_id, event.account_id)
        await queries.record_dispute_opened(conn, tenant, event.order_id, event.dispute_id)
        await _reconcile(conn, tenant, event.order_id)


async def on_dispute_closed(pool: asyncpg.Pool, event: OrderDisputeClosed) -> None:
    """Won: reinstate (unless another dispute is still open); lost: revoke."""
    tenant = event.tenant
    async with inbox.first_delivery(pool, event, CONSUMER) as conn:
        if conn is None:
            return
        await queries.touch(conn, tenant, event.order_id, event.account_id)
        await queries.record_dispute_closed(
            conn, tenant, event.order_id, event.dispute_id, event.outcome
        )
        await _reconcile(conn, tenant, event.order_id)

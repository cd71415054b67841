"""Admin verbs; each one that changes something is audited in the same transaction. Each
acts on the tenant its caller gives (the operator's routes and CLI: the home seller's live
data)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any
from uuid import UUID

import asyncpg

from tessera.billing.accounts.service import find_or_create_account
from tessera.billing.admin import queries
from tessera.billing.admin.schemas import (
    HeldOrderOut,
    RevenueRow,
    RevenueSummary,
    SeedAccount,
    SeededAccount,
)
from tessera.billing.audit import queries as audit
from tessera.billing.catalog.service import get_buyable
from tessera.billing.orders import queries as order_queries
from tessera.billing.orders import service as orders
from tessera.billing.payments import service as payments
from tessera.billing.stripe_events import queries as stripe_events
from tessera.billing.subscriptions.service import GraceDays, default_grace
from tessera.billing.webhooks import service as webhooks
from tessera.billing.webhooks.service import Outcome
from tessera.shared.http.problems import NotFound
from tessera.shared.sellers import Mode, Tenant


class UnknownHeldOrder(NotFound):
    slug = "unknown-held-order"
    title = "No such held order"


async def seed_account(
    pool: asyncpg.Pool, tenant: Tenant, body: SeedAccount, actor: str, ip: str | None
) -> SeededAccount:
    """Create (or find) an account by email, optionally with a complimentary order."""
    async with pool.acquire() as conn, conn.transaction():
        if body.sku:
            item = await get_buyable(conn, tenant, body.sku)
            account_id, order_id = await orders.grant(
                conn, tenant, str(body.email), item, body.quantity
            )
        else:
            account_id = (await find_or_create_account(conn, tenant, str(body.email), "admin")).id
            order_id = None
        await audit.record(
            conn,
            tenant,
            actor,
            "account.seed" if order_id is None else "order.grant",
            str(account_id),
            {"email": str(body.email), "sku": body.sku, "quantity": body.quantity,
             "order_id": str(order_id) if order_id else None, "note": body.note},
            ip,
        )  # fmt: skip
    return SeededAccount(account_id=account_id, order_id=order_id)


async def replay_event(
    pool: asyncpg.Pool,
    tenant: Tenant,
    event_id: str,
    actor: str,
    ip: str | None,
    platform_mode: Mode,
    grace_days: GraceDays = default_grace,
) -> Outcome:
    outcome = await webhooks.replay(pool, tenant, event_id, platform_mode, grace_days)
    async with pool.acquire() as conn:
        await audit.record(
            conn, tenant, actor, "webhook.replay", event_id,
            {"status": outcome.status, "detail": outcome.detail}, ip,
        )  # fmt: skip
    return outcome


async def get_held(pool: asyncpg.Pool, tenant: Tenant, order_id: UUID) -> HeldOrderOut:
    async with pool.acquire() as conn:
        order = await order_queries.get(conn, tenant, order_id)
    if order is None or order.hold_reason is None:
        raise UnknownHeldOrder(f"No order {order_id} was held for review.")
    return HeldOrderOut.of_held(order)


async def review_held(
    pool: asyncpg.Pool,
    tenant: Tenant,
    order_id: UUID,
    decision: str,
    reason: str,
    actor: str,
    ip: str | None,
) -> HeldOrderOut:
    """Approve (provisions through the normal path, once) or reject a held order, audited
    in the same transaction. The order's row lock makes a second or concurrent decision
    find it no longer held (409)."""
    async with pool.acquire() as conn, conn.transaction():
        order = await order_queries.lock(conn, tenant, order_id)
        if order is None or order.hold_reason is None:
            raise UnknownHeldOrder(f"No order {order_id} was held for review.")
        if decision == "approve":
            await orders.approve_held(conn, order, actor, reason)
            # Paid now: its Stripe fees are fetched, on the account its checkout came from.
            held_on, _ = await stripe_events.source_of(conn, tenant, order.hold_event_id or "")
            await payments.order_paid(conn, tenant, order.id, held_on)
        else:
            await orders.reject_held(conn, order, actor, reason)
        await audit.record(
            conn, tenant, actor, f"order.{decision}", str(order_id),
            {"reason": reason, "hold_reason": order.hold_reason, "email": order.email,
             "amount_total": order.amount_total, "currency": order.currency,
             "quantity": order.quantity},
            ip,
        )  # fmt: skip
        reviewed = await order_queries.get(conn, tenant, order_id)
    assert reviewed is not None
    return HeldOrderOut.of_held(reviewed)


async def revenue(pool: asyncpg.Pool, tenant: Tenant, start: date, end: date) -> RevenueSummary:
    async with pool.acquire() as conn:
        records = await queries.revenue_by_day_and_sku(conn, tenant, start, end)
    rows = [
        RevenueRow(
            day=r["day"], sku=r["sku"], currency=r["currency"], orders=r["orders"],
            gross=r["gross"], refunds=r["refunds"], disputes_lost=r["disputes_lost"],
            net=r["gross"] - r["refunds"] - r["disputes_lost"],
        )
        for r in records
    ]  # fmt: skip
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        t = totals.setdefault(
            row.currency, {"gross": 0, "refunds": 0, "disputes_lost": 0, "net": 0}
        )
        t["gross"] += row.gross
        t["refunds"] += row.refunds
        t["disputes_lost"] += row.disputes_lost
        t["net"] += row.net
    return RevenueSummary(start=start, end=end, currency_totals=totals, rows=rows)


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        # A cell starting with = + - @ would run as a formula in a spreadsheet.
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in "=+-@" else v for v in row])
    return out.getvalue()


async def export_orders(pool: asyncpg.Pool, tenant: Tenant) -> str:
    async with pool.acquire() as conn:
        records = await queries.all_orders(conn, tenant)
    header = list(records[0].keys()) if records else ["id"]
    return csv_text(header, ([r[k] for k in header] for r in records))


async def export_accounts(pool: asyncpg.Pool, tenant: Tenant) -> str:
    async with pool.acquire() as conn:
        records = await queries.all_accounts(conn, tenant)
    header = ["id", "email", "source", "created_at", "orders"]
    return csv_text(header, ([r[k] for k in header] for r in records))


def account_subject(account_id: UUID) -> str:
    return str(account_id)

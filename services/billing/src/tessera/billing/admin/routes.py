"""`/v1/admin/*`: the admin role only (others get 404). The admin role is the operator's,
so every route acts on the home seller's live data (`OPERATOR_TENANT`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tessera.billing.accounts import queries as accounts
from tessera.billing.admin import service
from tessera.billing.admin.schemas import (
    AccountDetail,
    AccountOut,
    AuditEntry,
    HeldOrderOut,
    ReplayResult,
    RevenueSummary,
    Review,
    SeedAccount,
    SeededAccount,
)
from tessera.billing.audit import queries as audit
from tessera.billing.context import OPERATOR_TENANT, BillingDep
from tessera.billing.orders import queries as orders
from tessera.billing.orders.schemas import AdminOrderOut
from tessera.billing.stripe_events import queries as webhook_events
from tessera.billing.stripe_events.queries import EventSummary
from tessera.shared.http.context import client_ip
from tessera.shared.http.params import IsoDate
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.tokens import AdminDep, Principal

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=100_000)]
Search = Annotated[str | None, Query(min_length=1, max_length=200)]


class InvalidRange(Problem):
    status = 422
    slug = "invalid-range"
    title = "Invalid date range"


def actor(principal: Principal) -> str:
    return f"admin:{principal.user_id}"


def ip(request: Request) -> str:
    """The address the audit records: the kernel's one rule, as every service's audit."""
    return client_ip(request)


async def limit_admin(billing: BillingDep, principal: Principal) -> None:
    await billing.limiter.enforce("600/minute", "admin", str(principal.user_id))


@router.get("/orders", summary="Search orders by email, order, account or Stripe id")
async def search_orders(
    admin: AdminDep, billing: BillingDep, q: Search = None, limit: Limit = 50, offset: Offset = 0
) -> list[AdminOrderOut]:
    await limit_admin(billing, admin)
    async with billing.pool.acquire() as conn:
        found = await orders.search(conn, OPERATOR_TENANT, q.strip() if q else None, limit, offset)
    return [AdminOrderOut.of(o) for o in found]


@router.get("/held-orders", summary="Orders held for review (not matching the catalog)")
async def list_held_orders(
    admin: AdminDep,
    billing: BillingDep,
    status: Annotated[
        str | None, Query(pattern="^(held|paid|rejected|refunded|payment_failed)$")
    ] = "held",
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[HeldOrderOut]:
    """Held orders, newest first: by default those still waiting for a decision; `status`
    `paid` lists the approved ones, `rejected` the rejected ones."""
    await limit_admin(billing, admin)
    async with billing.pool.acquire() as conn:
        found = await orders.list_held(conn, OPERATOR_TENANT, status, limit, offset)
    return [HeldOrderOut.of_held(o) for o in found]


@router.get("/held-orders/{order_id}", summary="One held order, with why it was held")
async def held_order(order_id: UUID, admin: AdminDep, billing: BillingDep) -> HeldOrderOut:
    await limit_admin(billing, admin)
    return await service.get_held(billing.pool, OPERATOR_TENANT, order_id)


@router.post(
    "/held-orders/{order_id}/approve",
    summary="Approve a held order: provisioned through the normal path, once",
    responses={409: {"description": "Not held (already decided), or not provisionable"}},
)
async def approve_held_order(
    order_id: UUID, body: Review, admin: AdminDep, request: Request, billing: BillingDep
) -> HeldOrderOut:
    await limit_admin(billing, admin)
    return await service.review_held(
        billing.pool,
        OPERATOR_TENANT,
        order_id,
        "approve",
        body.reason.strip(),
        actor(admin),
        ip(request),
    )


@router.post(
    "/held-orders/{order_id}/reject",
    summary="Reject a held order: recorded and audited, never provisioned",
    responses={409: {"description": "Not held (already decided)"}},
)
async def reject_held_order(
    order_id: UUID, body: Review, admin: AdminDep, request: Request, billing: BillingDep
) -> HeldOrderOut:
    await limit_admin(billing, admin)
    return await service.review_held(
        billing.pool,
        OPERATOR_TENANT,
        order_id,
        "reject",
        body.reason.strip(),
        actor(admin),
        ip(request),
    )


@router.get("/accounts", summary="Search accounts by email, account, order or Stripe id")
async def search_accounts(
    admin: AdminDep, billing: BillingDep, q: Search = None, limit: Limit = 50, offset: Offset = 0
) -> list[AccountOut]:
    await limit_admin(billing, admin)
    async with billing.pool.acquire() as conn:
        rows = await accounts.search(conn, OPERATOR_TENANT, q.strip() if q else None, limit, offset)
    return [AccountOut(**dict(r)) for r in rows]


@router.get("/accounts/{account_id}", summary="One account: its orders and audit trail")
async def account_detail(account_id: UUID, admin: AdminDep, billing: BillingDep) -> AccountDetail:
    await limit_admin(billing, admin)
    async with billing.pool.acquire() as conn:
        row = await accounts.get(conn, OPERATOR_TENANT, account_id)
        if row is None:
            raise NotFound("No such account.")
        account_orders = await orders.list_for_account(conn, OPERATOR_TENANT, account_id)
        trail = await audit.for_subject(conn, OPERATOR_TENANT, str(account_id))
    return AccountDetail(
        account=AccountOut(**dict(row), orders=len(account_orders)),
        orders=[AdminOrderOut.of(o) for o in account_orders],
        audit=[AuditEntry(**t) for t in trail],
    )


@router.post(
    "/accounts", status_code=201, summary="Seed an account, optionally with a complimentary order"
)
async def seed_account(
    body: SeedAccount, admin: AdminDep, request: Request, billing: BillingDep
) -> SeededAccount:
    await limit_admin(billing, admin)
    return await service.seed_account(
        billing.pool, OPERATOR_TENANT, body, actor(admin), ip(request)
    )


@router.get("/webhook-events", summary="Stripe events received, newest first, with their state")
async def list_webhook_events(
    admin: AdminDep,
    billing: BillingDep,
    status: Annotated[str | None, Query(pattern="^(processed|ignored|held|failed)$")] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[EventSummary]:
    await limit_admin(billing, admin)
    async with billing.pool.acquire() as conn:
        return await webhook_events.search(conn, OPERATOR_TENANT, status, type, limit, offset)


@router.post("/webhook-events/{event_id}/replay", summary="Apply a recorded Stripe event again")
async def replay_webhook_event(
    event_id: str,
    admin: AdminDep,
    request: Request,
    billing: BillingDep,
) -> ReplayResult:
    await limit_admin(billing, admin)
    outcome = await service.replay_event(
        billing.pool, OPERATOR_TENANT, event_id, actor(admin), ip(request),
        billing.settings.platform_mode, billing.grace_days,
    )  # fmt: skip
    return ReplayResult(id=event_id, status=outcome.status, detail=outcome.detail)


@router.get("/revenue", summary="Gross, refunds, disputes and net by day and SKU")
async def revenue(
    admin: AdminDep,
    billing: BillingDep,
    start: IsoDate | None = None,
    end: IsoDate | None = None,
) -> RevenueSummary:
    await limit_admin(billing, admin)
    today = datetime.now(UTC).date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end or (end - start).days > 3660:
        raise InvalidRange("`start` must not be after `end`, and the range at most ten years.")
    return await service.revenue(billing.pool, OPERATOR_TENANT, start, end)


def csv_response(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.get("/exports/orders.csv", summary="Every order, as CSV")
async def export_orders(admin: AdminDep, billing: BillingDep) -> Response:
    await limit_admin(billing, admin)
    return csv_response(await service.export_orders(billing.pool, OPERATOR_TENANT), "orders.csv")


@router.get("/exports/accounts.csv", summary="Every account, as CSV")
async def export_accounts(admin: AdminDep, billing: BillingDep) -> Response:
    await limit_admin(billing, admin)
    text = await service.export_accounts(billing.pool, OPERATOR_TENANT)
    return csv_response(text, "accounts.csv")

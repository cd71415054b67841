"""The customer's own orders (access token from auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tessera.billing.context import BillingDep
from tessera.billing.orders import queries
from tessera.billing.orders.schemas import BillingPortalLink, OrderOut
from tessera.shared.http.problems import Problem
from tessera.shared.tokens import PrincipalDep

router = APIRouter(prefix="/v1/me", tags=["customer"])


class NoBillingPortal(Problem):
    status = 409
    slug = "billing-portal-unavailable"
    title = "No billing portal for this account"


@router.get("/orders", summary="The signed-in customer's orders, newest first")
async def my_orders(
    principal: PrincipalDep, request: Request, billing: BillingDep
) -> list[OrderOut]:
    await billing.limiter.enforce("120/minute", "me", str(principal.account_id))
    async with billing.pool.acquire() as conn:
        orders = await queries.list_for_account(conn, principal.tenant, principal.account_id)
    return [OrderOut.of(o) for o in orders]


@router.post("/billing-portal", summary="A Stripe Customer Portal session for the customer")
async def billing_portal(
    principal: PrincipalDep, request: Request, billing: BillingDep
) -> BillingPortalLink:
    await billing.limiter.enforce("10/minute", "portal", str(principal.account_id))
    gateway = billing.stripe
    if gateway is None:
        raise NoBillingPortal(
            "Stripe is not configured (test mode): receipts are in the order list."
        )
    async with billing.pool.acquire() as conn:
        orders = await queries.list_for_account(conn, principal.tenant, principal.account_id)
    customer = next((o.customer_id for o in orders if o.customer_id), None)
    if customer is None:
        raise NoBillingPortal("This account has no Stripe customer (no card purchase yet).")
    url = await gateway.create_portal_session(customer, str(billing.settings.portal_url))
    return BillingPortalLink(url=url)

"""The customer's own orders (access token from auth), and a customer's orders as its
seller reads them with a secret key."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from tessera.billing.accounts import queries as accounts
from tessera.billing.context import BillingDep
from tessera.billing.orders import queries
from tessera.billing.orders.schemas import BillingPortalLink, OrderOut
from tessera.billing.stripe.accounts import StripeAccount
from tessera.billing.subscriptions import service as subscriptions
from tessera.shared.api_keys import SecretSellerDep
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Tenant
from tessera.shared.tokens import PrincipalDep

router = APIRouter(prefix="/v1/me", tags=["customer"])
seller_router = APIRouter(prefix="/v1", tags=["seller"])


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
    # A subscriber's portal is in the seller's own Stripe account (where it subscribed).
    url = await subscriptions.portal(
        billing.pool, billing.accounts, principal.tenant, principal.account_id,
        str(billing.settings.portal_url),
    )  # fmt: skip
    if url is not None:
        return BillingPortalLink(url=url)
    async with billing.pool.acquire() as conn:
        orders = await queries.list_for_account(conn, principal.tenant, principal.account_id)
        # The seller's customers are on the seller's Stripe account (Connect).
        on = await billing.accounts.account_for(conn, principal.tenant)
    customer = next((o.customer_id for o in orders if o.customer_id), None)
    if customer is None:
        raise NoBillingPortal("This account has no Stripe customer (no card purchase yet).")
    if not isinstance(on, StripeAccount):
        raise NoBillingPortal("The seller's Stripe account is not connected.")
    url = await gateway.create_portal_session(customer, str(billing.settings.portal_url), on)
    return BillingPortalLink(url=url)


@seller_router.get(
    "/customers/{customer_id}/orders", summary="A customer's orders, newest first (secret key)"
)
async def customer_orders(
    customer_id: UUID, seller: SecretSellerDep, billing: BillingDep
) -> list[OrderOut]:
    """The tenant is the key's seller and mode: another seller's (or the other mode's)
    customer is a 404, as one that does not exist."""
    billing.synced_limiter.enforce((billing.per_seller_key, str(seller.key_id)))
    tenant = Tenant(seller.seller_id, seller.mode)
    async with billing.pool.acquire() as conn:
        if await accounts.get(conn, tenant, customer_id) is None:
            raise NotFound("No such customer.")
        orders = await queries.list_for_account(conn, tenant, customer_id)
    return [OrderOut.of(o) for o in orders]

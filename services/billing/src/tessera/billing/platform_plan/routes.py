"""A seller buys and reads its platform plan with its own secret key, live or test (a seller
without a plan has only working test keys). The seller comes from the key, never from
input; the plan is a subscription in the home seller's live tenant to tier `platform`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, EmailStr

from tessera.billing.context import BillingDep
from tessera.billing.subscriptions import service as subscriptions
from tessera.billing.subscriptions.schemas import Strict, SubscriptionCheckoutCreated
from tessera.shared.api_keys.dependencies import PlanFreeSecretSellerDep
from tessera.shared.api_keys.sessions import require_owner
from tessera.shared.http.context import client_ip
from tessera.shared.http.problems import Problem
from tessera.shared.sellers import HOME_LIVE, HOME_SELLER_ID, PLATFORM_TIER

router = APIRouter(prefix="/v1/platform", tags=["seller"])


class HomeNeedsNoPlan(Problem):
    status = 409
    slug = "home-seller-needs-no-plan"
    title = "The home seller needs no platform plan"


class PlanAlreadyInForce(Problem):
    status = 409
    slug = "platform-plan-in-force"
    title = "The seller's platform plan is already in force"


class PlanCheckoutRequest(Strict):
    interval: Literal["month", "year"] = "month"
    # Where the seller's invoices go (the home seller's customer, in its live tenant).
    email: EmailStr | None = None


class PlanOut(BaseModel):
    status: Literal["none", "active", "past_due", "ended"]
    grace_until: datetime | None
    in_force: bool


@router.post(
    "/subscription/checkout",
    status_code=201,
    summary="Start a checkout for the seller's platform plan",
    responses={
        409: {
            "description": "The home seller, a plan already in force, or the platform has"
            " no Stripe account"
        },
        403: {"description": "A developer's dashboard session: buying the plan is an owner's"},
    },
)
async def plan_checkout(
    body: PlanCheckoutRequest,
    request: Request,
    billing: BillingDep,
    seller: PlanFreeSecretSellerDep,
) -> SubscriptionCheckoutCreated:
    require_owner(seller)  # it spends the seller's money (docs/sellers.md)
    if seller.seller_id == HOME_SELLER_ID:
        raise HomeNeedsNoPlan("The home seller's keys work without a plan.")
    entry = billing.sellers.by_id(seller.seller_id)
    if entry is not None and entry.plan_in_force(datetime.now(UTC).timestamp()):
        # A second plan would add nothing but a second charge (auth counts the best of them).
        raise PlanAlreadyInForce("Change or cancel the plan you have instead.")
    await billing.limiter.enforce(
        billing.settings.checkout_rate_limit, "checkout", client_ip(request)
    )
    billing.synced_limiter.enforce((billing.per_seller_key, str(seller.key_id)))
    link = await subscriptions.start_checkout(
        billing.pool, billing.accounts, billing.settings, HOME_LIVE, PLATFORM_TIER,
        body.interval, str(body.email) if body.email else None, paying_seller=seller.seller_id,
    )  # fmt: skip
    return SubscriptionCheckoutCreated(id=link.id, url=link.url)


@router.get("/subscription", summary="The seller's platform plan, as the directory holds it")
async def plan_status(billing: BillingDep, seller: PlanFreeSecretSellerDep) -> PlanOut:
    billing.synced_limiter.enforce((billing.per_seller_key, str(seller.key_id)))
    entry = billing.sellers.by_id(seller.seller_id)
    if entry is None:
        return PlanOut(status="none", grace_until=None, in_force=False)
    grace = entry.plan_grace_until
    return PlanOut(
        status=entry.plan_status,
        grace_until=datetime.fromtimestamp(grace, UTC) if grace is not None else None,
        in_force=entry.plan_in_force(datetime.now(UTC).timestamp()),
    )

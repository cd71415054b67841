"""The usage API: with the seller's secret key (server side) or a customer's access token
for that seller (client side; its own usage only). Every answer about a meter carries the
IETF RateLimit fields (docs/usage.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from tessera.licensing.context import LicensingDep
from tessera.licensing.seller_api.routes import SellerKey, tenant
from tessera.licensing.usage import service
from tessera.licensing.usage.schemas import (
    CheckOut,
    CheckRequest,
    CustomerUsageOut,
    PlanIn,
    PlanOut,
    RecordOut,
    RecordRequest,
    RevertOut,
    RevertRequest,
)
from tessera.shared.api_keys.dependencies import current_secret_seller
from tessera.shared.api_keys.format import PREFIXES
from tessera.shared.http.problems import Problem
from tessera.shared.sellers import Tenant
from tessera.shared.tokens import Forbidden, bearer_token

router = APIRouter(prefix="/v1", tags=["usage"])

KEY_PREFIXES = tuple(PREFIXES)


class CustomerRequired(Problem):
    status = 422
    slug = "customer-required"
    title = "Name the customer"


@dataclass(frozen=True, slots=True)
class UsageAuth:
    tenant: Tenant
    # The access token's account: the one customer it may act for. None: a secret key.
    account: UUID | None


async def usage_auth(request: Request, licensing: LicensingDep) -> UsageAuth:
    """A secret key (a publishable one is 403) or a customer's access token, counted
    against the caller's budget (per key id, or per account)."""
    token = bearer_token(request)
    if token.startswith(KEY_PREFIXES):
        seller = await current_secret_seller(request)
        auth, ident = UsageAuth(tenant(seller), None), f"key:{seller.key_id}"
    else:
        principal = await licensing.token_verifier.verify(token)
        auth, ident = (
            UsageAuth(principal.tenant, principal.account_id),
            f"acc:{principal.account_id}",
        )
    licensing.synced_limiter.enforce((licensing.per_usage_caller, ident))
    return auth


UsageAuthDep = Annotated[UsageAuth, Depends(usage_auth)]


def caller(licensing: LicensingDep, auth: UsageAuth, customer: UUID | None) -> service.Caller:
    """The customer acted for: the one named (with a secret key), the token's own."""
    if auth.account is None:
        if customer is None:
            raise CustomerRequired("With a secret key, `customer` names the customer.")
        acting = customer
    elif customer is not None and customer != auth.account:
        raise Forbidden("A customer's token records and reads only its own usage.")
    else:
        acting = auth.account
    # A space never occurs in a key (printable ASCII without it): a token's space and the
    # seller's can never meet.
    scope = "" if auth.account is None else f"token {auth.account} "
    entry = licensing.sellers.by_id(auth.tenant.seller_id)
    if entry is None:  # not in the directory (yet): the defaults
        return service.Caller(auth.tenant, acting, licensing.synced_limiter, None, key_scope=scope)
    settings = entry.settings
    return service.Caller(
        auth.tenant, acting, licensing.synced_limiter, settings.upgrade_url,
        tuple(settings.usage_thresholds), key_scope=scope,
    )  # fmt: skip


def seller_only(auth: UsageAuth) -> Tenant:
    if auth.account is not None:
        # A revert undoes counted usage: the seller's call, for its failed downstream work.
        raise Forbidden("Only the seller's secret key reverts usage.")
    return auth.tenant


@router.post("/usage", summary="Record usage of a metered feature (within its limit, once per key)")
async def record(
    body: RecordRequest, response: Response, licensing: LicensingDep, auth: UsageAuthDep
) -> RecordOut:
    who = caller(licensing, auth, body.customer)
    out, headers = await service.record(licensing.pool, who, body, licensing.usage_clock())
    response.headers.update(headers)
    return out


@router.post("/usage/check", summary="Whether an amount would be within the limit (counts nothing)")
async def check(
    body: CheckRequest, response: Response, licensing: LicensingDep, auth: UsageAuthDep
) -> CheckOut:
    who = caller(licensing, auth, body.customer)
    out, headers = await service.check(
        licensing.pool, who, body.feature, body.amount, licensing.usage_clock()
    )
    response.headers.update(headers)
    return out


@router.get("/customers/{customer_id}/usage", summary="A customer's usage of each metered feature")
async def of_customer(
    customer_id: UUID, response: Response, licensing: LicensingDep, auth: UsageAuthDep
) -> CustomerUsageOut:
    who = caller(licensing, auth, customer_id)
    out, headers = await service.of_customer(licensing.pool, who, licensing.usage_clock())
    response.headers.update(headers)
    return out


@router.post("/usage/{record_id}/revert", summary="Take a recorded amount back (idempotent)")
async def revert(record_id: UUID, licensing: LicensingDep, auth: UsageAuthDep) -> RevertOut:
    return await service.revert(
        licensing.pool, seller_only(auth), licensing.usage_clock(), record_id=record_id
    )


@router.post("/usage/revert", summary="Take back the amount recorded with an idempotency key")
async def revert_by_key(
    body: RevertRequest, licensing: LicensingDep, auth: UsageAuthDep
) -> RevertOut:
    return await service.revert(
        licensing.pool, seller_only(auth), licensing.usage_clock(),
        idempotency_key=body.idempotency_key,
    )  # fmt: skip


@router.put(
    "/customers/{customer_id}/usage-plan",
    summary="Assign a customer a tier of your own (a free tier), metered per calendar month",
)
async def assign_plan(
    customer_id: UUID, body: PlanIn, licensing: LicensingDep, seller: SellerKey
) -> PlanOut:
    return await service.assign_plan(
        licensing.pool, tenant(seller), customer_id, body, licensing.usage_clock()
    )


@router.delete(
    "/customers/{customer_id}/usage-plan", status_code=204, summary="Remove the assigned tier"
)
async def remove_plan(customer_id: UUID, licensing: LicensingDep, seller: SellerKey) -> Response:
    await service.remove_plan(licensing.pool, tenant(seller), customer_id)
    return Response(status_code=204)

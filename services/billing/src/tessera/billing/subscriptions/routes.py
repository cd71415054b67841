"""Subscriptions over HTTP: checkout in subscription mode (publishable or secret key), the
seller API that reads and changes a customer's subscriptions (secret key), and the Customer
Portal. The tenant is always the key's seller and mode: another tenant's subscription or
customer is a 404, as one that does not exist."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Path, Request

from tessera.billing.accounts import queries as accounts
from tessera.billing.catalog.routes import KeyTenant, SecretTenant
from tessera.billing.context import BillingDep
from tessera.billing.stripe import return_urls
from tessera.billing.subscriptions import service
from tessera.billing.subscriptions.schemas import (
    SUBSCRIPTION_ID,
    CancelRequest,
    ChangeRequest,
    PortalLink,
    SubscriptionCheckoutCreated,
    SubscriptionCheckoutRequest,
    SubscriptionOut,
)
from tessera.shared.api_keys import SellerDep
from tessera.shared.http.context import client_ip
from tessera.shared.http.problems import NotFound, Problem
from tessera.shared.sellers import Tenant

router = APIRouter(prefix="/v1", tags=["seller"])

SubscriptionPath = Annotated[str, Path(pattern=SUBSCRIPTION_ID, max_length=255)]
IdempotencyKey = Annotated[
    str | None, Header(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")
]
CHANGE_ANSWER = (
    "Stripe accepted the request; the subscription as billing knows it now. Its state "
    "changes when Stripe's event arrives (a moment later)."
)


class NoSubscriptionCustomer(Problem):
    status = 409
    slug = "billing-portal-unavailable"
    title = "No billing portal for this customer"


@router.post(
    "/checkout/subscriptions",
    status_code=201,
    summary="Start a checkout for a tier (subscription mode)",
    responses={
        403: {"description": "success_url or cancel_url with a publishable key"},
        409: {"description": "The seller has no Stripe account, or the price is not in Stripe yet"},
        422: {"description": "A bad body, or a return URL that is not one (invalid-return-url)"},
    },
)
async def create_checkout(
    body: SubscriptionCheckoutRequest,
    request: Request,
    billing: BillingDep,
    tenant: KeyTenant,
    seller: SellerDep,  # KeyTenant's own (FastAPI resolves it once): is it a secret key?
) -> SubscriptionCheckoutCreated:
    # Counted per address as one-time checkout is (a publishable key is public), and
    # against the key's own budget (KeyTenant).
    await billing.limiter.enforce(
        billing.settings.checkout_rate_limit, "checkout", client_ip(request)
    )
    return_to = return_urls.chosen(
        billing.settings, body.success_url, body.cancel_url,
        secret_key=seller.is_secret, mode=tenant.mode,
    )  # fmt: skip
    link = await service.start_checkout(
        billing.pool, billing.accounts, billing.settings, tenant, body.tier, body.interval,
        str(body.email) if body.email else None, return_to=return_to,
    )  # fmt: skip
    return SubscriptionCheckoutCreated(id=link.id, url=link.url)


async def _customer(billing: BillingDep, tenant: Tenant, customer_id: UUID) -> None:
    async with billing.pool.acquire() as conn:
        if await accounts.get(conn, tenant, customer_id) is None:
            raise NotFound("No such customer.")


@router.get("/customers/{customer_id}/subscriptions", summary="A customer's subscriptions")
async def customer_subscriptions(
    customer_id: UUID, billing: BillingDep, tenant: SecretTenant
) -> list[SubscriptionOut]:
    await _customer(billing, tenant, customer_id)
    rows = await service.of_customer(billing.pool, tenant, customer_id)
    return [SubscriptionOut.of(r) for r in rows]


@router.post(
    "/customers/{customer_id}/billing-portal",
    summary="A Stripe Customer Portal session for a customer with a subscription",
)
async def customer_portal(
    customer_id: UUID, billing: BillingDep, tenant: SecretTenant
) -> PortalLink:
    await _customer(billing, tenant, customer_id)
    url = await service.portal(
        billing.pool, billing.accounts, tenant, customer_id, str(billing.settings.portal_url)
    )
    if url is None:
        raise NoSubscriptionCustomer("This customer has no subscription.")
    return PortalLink(url=url)


@router.get("/subscriptions/{subscription_id}", summary="One subscription")
async def get_subscription(
    subscription_id: SubscriptionPath, billing: BillingDep, tenant: SecretTenant
) -> SubscriptionOut:
    return SubscriptionOut.of(await service.get(billing.pool, tenant, subscription_id))


@router.post(
    "/subscriptions/{subscription_id}/cancel",
    status_code=202,
    summary="Cancel at the period's end (resumable) or now",
    response_description=CHANGE_ANSWER,
)
async def cancel_subscription(
    subscription_id: SubscriptionPath,
    body: CancelRequest,
    billing: BillingDep,
    tenant: SecretTenant,
    idempotency_key: IdempotencyKey = None,
) -> SubscriptionOut:
    row = await service.cancel(
        billing.pool, billing.accounts, tenant, subscription_id, body.at_period_end,
        idempotency_key,
    )  # fmt: skip
    return SubscriptionOut.of(row)


@router.post(
    "/subscriptions/{subscription_id}/resume",
    status_code=202,
    summary="Take back a cancellation at the period's end",
    response_description=CHANGE_ANSWER,
)
async def resume_subscription(
    subscription_id: SubscriptionPath,
    billing: BillingDep,
    tenant: SecretTenant,
    idempotency_key: IdempotencyKey = None,
) -> SubscriptionOut:
    row = await service.resume(
        billing.pool, billing.accounts, tenant, subscription_id, idempotency_key
    )
    return SubscriptionOut.of(row)


@router.post(
    "/subscriptions/{subscription_id}",
    status_code=202,
    summary="Change tier or interval (upgrade or downgrade, prorated by Stripe)",
    response_description=CHANGE_ANSWER,
)
async def change_subscription(
    subscription_id: SubscriptionPath,
    body: ChangeRequest,
    billing: BillingDep,
    tenant: SecretTenant,
    idempotency_key: IdempotencyKey = None,
) -> SubscriptionOut:
    row = await service.change(
        billing.pool, billing.accounts, tenant, subscription_id, body, idempotency_key
    )
    return SubscriptionOut.of(row)

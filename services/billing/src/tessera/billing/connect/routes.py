"""Connect's routes: the seller's (secret key) start, read and end a connection; Stripe's
OAuth callback (a browser redirect: public, the `state` says whose it is)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from tessera.billing.catalog.routes import SecretTenant
from tessera.billing.connect import service
from tessera.billing.connect.schemas import ConnectStart, ConnectStarted, StripeConnection
from tessera.billing.context import BillingDep
from tessera.shared.http.context import client_ip

seller_router = APIRouter(prefix="/v1/stripe", tags=["seller"])
router = APIRouter(prefix="/v1/stripe", tags=["stripe"])


@seller_router.post(
    "/connect",
    status_code=201,
    summary="Start connecting the seller's Stripe account (the URL to send its developer to)",
    responses={409: {"description": "Connected already, or Connect unavailable in this mode"}},
)
async def start_connect(
    billing: BillingDep, tenant: SecretTenant, body: ConnectStart | None = None
) -> ConnectStarted:
    return await service.start(billing.pool, billing.accounts, billing.settings, tenant)


@router.get(
    "/connect/callback",
    summary="Stripe's OAuth redirect: finishes the connection its `state` started",
    responses={400: {"description": "Unknown, used or expired state; denied; bad code"}},
)
async def connect_callback(
    request: Request,
    billing: BillingDep,
    state: Annotated[str, Query(min_length=16, max_length=128)],
    code: Annotated[str | None, Query(max_length=256)] = None,
    error: Annotated[str | None, Query(max_length=100)] = None,
    error_description: Annotated[str | None, Query(max_length=500)] = None,
) -> StripeConnection:
    await billing.limiter.enforce(
        billing.settings.api_rate_limit, "stripe-connect-callback", client_ip(request)
    )
    return await service.finish(
        billing.pool, billing.accounts, billing.settings, state, code, error
    )


@seller_router.get("/connection", summary="The seller's connected Stripe account, if any")
async def get_connection(billing: BillingDep, tenant: SecretTenant) -> StripeConnection:
    return await service.connection(billing.pool, tenant)


@seller_router.delete(
    "/connection",
    status_code=204,
    summary="Disconnect the seller's Stripe account (deauthorizes the platform on it)",
    responses={404: {"description": "No Stripe account is connected"}},
)
async def delete_connection(billing: BillingDep, tenant: SecretTenant) -> Response:
    await service.disconnect(billing.pool, billing.accounts, billing.settings, tenant)
    return Response(status_code=204)
